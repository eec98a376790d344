"""``train(cfg)``: records + base model -> a fine-tuned recommender, with the Hugging Face Trainer.

Under ``accelerate launch`` (or torchrun) the Trainer runs data-parallel over the configured
processes, and under DeepSpeed with ``--deepspeed``; gradient accumulation is derived so the
global batch is ``--batch_size`` whatever the process count.
"""

from __future__ import annotations

import logging
import re
from contextlib import nullcontext
from pathlib import Path

from grec.base.distributed import rank, release_processes, world_size
from grec.base.errors import GrecError
from grec.base.files import SETTINGS, SID_MAP
from grec.base.io import read_json, read_jsonl
from grec.base.records import load_records
from grec.base.sid import SidMap, add_sid_tokens
from grec.lm.checkpoint import load_trained
from grec.lm.cpu_dropout import cpu_dropout
from grec.lm.loading import apply_lora, build_from_config, load_model, record_base_model, resolve_base_model
from grec.lm.serving_files import records_settings, write_serving_files
from grec.train.config import TrainConfig
from grec.train.data import file_names, tokenize_records, validation_sets
from grec.training.arguments import training_arguments
from grec.training.artifacts import RunArtifacts
from grec.training.loop import check_run_folder, run_trainer
from grec.training.loss import LabelledPositions, causal_trainer_class, keeps_logits_by_mask, labelled_token_loss
from grec.training.scoring import SidNdcg

logger = logging.getLogger("grec")
SID_TOKEN = re.compile(r"<[a-z]_\d+>")


def _titles(sid_folder: str) -> dict[str, str]:
    """Item titles for ``--init text`` and ``spread``, from the prepared folder the SID folder was built from."""
    data = read_json(Path(sid_folder) / SETTINGS)["settings"]["data"]
    return {r["item_id"]: r["title"] for _, r in read_jsonl(Path(data) / "items.jsonl")}


def _check_sid_tokens(records: list[dict], tokenizer) -> None:
    vocab = tokenizer.get_vocab()
    for record in records[:1000]:
        for text in (record["input"], record["output"]):
            for token in SID_TOKEN.findall(text):
                if token not in vocab:
                    raise GrecError(
                        f"records use the semantic-ID token {token} that the tokenizer lacks; "
                        f"pass --sid with the folder the records were built from"
                    )


def _check_sid_catalog(sid_map: SidMap | None, sid: str | None, settings: dict | None) -> None:
    """The --sid map must be the one the records were written with (grec records' settings.json names it):
    another map spells other items with the same tokens, and a checkpoint's catalog would lack titles."""
    if sid_map is None or not settings:
        return
    theirs = Path(settings.get("sid") or "")
    if settings.get("sid") and (theirs / SID_MAP).is_file() and theirs.resolve() != Path(sid).resolve():
        if SidMap.load(theirs) != sid_map:
            raise GrecError(
                f"--sid {sid}: not the SID map the training records were written with ({theirs}); the same "
                f"tokens would mean other items. Pass --sid {theirs}, or rebuild the records with --sid {sid}"
            )
    items = Path(settings.get("data") or "") / "items.jsonl"
    if items.is_file():
        known = set(sid_map.item_ids)
        missing = [str(r["item_id"]) for _, r in read_jsonl(items) if str(r["item_id"]) not in known]
        if missing:
            raise GrecError(
                f"--sid {sid}: built for another catalog: {len(missing)} items of {items} have no SID (e.g. "
                f"{missing[0]!r}); index that catalog (grec index --data {items.parent}) and pass its folder"
            )


def _wait_for_debugger(port: int) -> None:
    try:
        import debugpy
    except ImportError:
        raise GrecError("--debug_port needs debugpy: pip install debugpy") from None
    debugpy.listen(("0.0.0.0", port))
    logger.info("waiting for a debugger on port %d", port)
    debugpy.wait_for_client()


def load_for_training(cfg: TrainConfig):
    """(model, tokenizer, seq2seq, sid_map, SID token ids) ready for LoRA or full fine-tuning."""
    if cfg.from_scratch:
        model, tokenizer, seq2seq = build_from_config(
            cfg.from_scratch, resolve_base_model(cfg.base_model, True), cfg.model_type
        )
    elif (Path(cfg.base_model) / "adapter_config.json").is_file():  # a grec LoRA checkpoint: continue from it merged
        model, tokenizer, seq2seq = load_trained(cfg.base_model)
        model = model.merge_and_unload()
    else:
        model, tokenizer, seq2seq = load_model(
            resolve_base_model(cfg.base_model),
            cfg.model_type,
            attn_implementation=cfg.attn_implementation,
            load_in_4bit=cfg.load_in_4bit,
        )
        if cfg.load_in_4bit:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    sid_map, token_ids = None, []
    if cfg.sid:
        sid_map = SidMap.load(cfg.sid)
        titles = _titles(cfg.sid) if cfg.init != "mean" else None
        ids = add_sid_tokens(tokenizer, sid_map, model, cfg.init, titles)
        token_ids = sorted({int(i) for level in ids.level_ids for i in level if i >= 0})
    return model, tokenizer, seq2seq, sid_map, token_ids


def train(cfg: TrainConfig) -> dict:
    """Fine-tune per ``cfg``; return the final training_state.json content."""
    import torch
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer

    world = world_size()
    cfg.accumulation_steps(world)  # refuse uneven batch splits before any heavy work
    check_run_folder(cfg)
    resume = cfg.resume_from_checkpoint
    if cfg.debug_port and rank() == 0:
        _wait_for_debugger(cfg.debug_port)
    train_records = load_records(cfg.train_data_path, cfg.sample, cfg.seed)
    val_files = {
        name: load_records([path], cfg.val_sample, cfg.seed)
        for name, path in zip(file_names(cfg.val_data_path or []), cfg.val_data_path or [])
    }
    val_records = [record for records in val_files.values() for record in records] or None
    torch.manual_seed(cfg.seed)
    prompt_settings = records_settings(cfg.train_data_path)
    model, tokenizer, seq2seq, sid_map, token_ids = load_for_training(cfg)
    _check_sid_catalog(sid_map, cfg.sid, prompt_settings)
    _check_sid_tokens(train_records, tokenizer)
    if cfg.finetune == "lora":
        model = apply_lora(
            model, seq2seq, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_target_modules, token_ids
        )
        if cfg.base_model_id or not (Path(cfg.base_model) / "adapter_config.json").is_file():
            record_base_model(model, cfg.base_model_id or resolve_base_model(cfg.base_model))
    train_set, _ = tokenize_records(train_records, tokenizer, seq2seq, cfg.cutoff_len, cfg.train_on_inputs)
    val_set = validation_sets(val_files, tokenizer, seq2seq, cfg.cutoff_len) if val_files else None
    args = training_arguments(
        cfg,
        world,
        cfg.micro_batch_size,
        cfg.micro_batch_size,
        max(1, len(train_set) // cfg.batch_size),
        val_set is not None,
        fp16=cfg.fp16,
        deepspeed=cfg.deepspeed,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
    )

    def save_extra(folder: Path) -> None:
        tokenizer.save_pretrained(folder)
        if sid_map is not None:
            sid_map.save(folder)
        write_serving_files(folder, prompt_settings)

    scorer = SidNdcg(cfg, val_records, tokenizer, sid_map, seq2seq) if cfg.eval_metric == "ndcg" else None
    artifacts = RunArtifacts(cfg, save_extra, scorer)
    collator, loss_func = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100), None
    trainer_class = Trainer
    if not seq2seq and keeps_logits_by_mask(model):  # skip work on the prompt: docs in grec/training/loss.py
        collator, loss_func, trainer_class = LabelledPositions(collator), labelled_token_loss, causal_trainer_class()
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_set),
        eval_dataset=val_set,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[artifacts],
        compute_loss_func=loss_func,
    )
    with cpu_dropout(model) if not torch.cuda.is_available() else nullcontext() as swapped:
        if swapped:
            logger.info("train: dropout masks drawn by grec.lm.cpu_dropout (CPU)")
        state = run_trainer(trainer, artifacts, resume, cfg.output_dir, cfg.keep_cpu_memory)
    release_processes()
    return state
