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

from grec.cpu_memory import kept_freed_memory
from grec.distributed import rank, release_processes, world_size
from grec.errors import GrecError
from grec.io import read_json, read_jsonl
from grec.sid import SidMap, add_sid_tokens
from grec.train.artifacts import RunArtifacts
from grec.train.config import TrainConfig
from grec.train.cpu_dropout import cpu_dropout
from grec.train.data import load_records, tokenize_records
from grec.train.export import load_trained
from grec.train.loss import LabelledPositions, causal_trainer_class, keeps_logits_by_mask, labelled_token_loss
from grec.train.model import apply_lora, build_from_config, load_model, resolve_base_model
from grec.train.scoring import SidNdcg

logger = logging.getLogger("grec")
SID_TOKEN = re.compile(r"<[a-z]_\d+>")


def _titles(sid_folder: str) -> dict[str, str]:
    """Item titles for ``--init text``, from the prepared folder the SID folder was built from."""
    data = read_json(Path(sid_folder) / "settings.json")["settings"]["data"]
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


def latest_complete_checkpoint(output_dir: str) -> str | None:
    """The newest checkpoint-N whose trainer_state.json (the Trainer writes it last) is whole.

    A run killed while saving leaves a checkpoint without it, or with it cut short; such folders
    are skipped, so resuming picks up the previous whole checkpoint.
    """
    import json

    steps = {
        int(p.name.split("-")[1]): p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[1].isdigit()
    }
    for candidate in (steps[k] for k in sorted(steps, reverse=True)):
        try:
            json.loads((candidate / "trainer_state.json").read_text())
            return str(candidate)
        except (OSError, ValueError):
            logger.warning("train: skipping %s: it was not saved completely", candidate)
    return None


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
        model, tokenizer, seq2seq = build_from_config(cfg.from_scratch, resolve_base_model(cfg.base_model, True),
                                                      cfg.model_type)  # fmt: skip
    elif (Path(cfg.base_model) / "adapter_config.json").is_file():  # a grec LoRA checkpoint: continue from it merged
        model, tokenizer, seq2seq = load_trained(cfg.base_model)
        model = model.merge_and_unload()
    else:
        model, tokenizer, seq2seq = load_model(resolve_base_model(cfg.base_model), cfg.model_type)
    sid_map, token_ids = None, []
    if cfg.sid:
        sid_map = SidMap.load(cfg.sid)
        titles = _titles(cfg.sid) if cfg.init == "text" else None
        ids = add_sid_tokens(tokenizer, sid_map, model, cfg.init, titles)
        token_ids = sorted({int(i) for level in ids.level_ids for i in level if i >= 0})
    return model, tokenizer, seq2seq, sid_map, token_ids


def training_arguments(cfg: TrainConfig, world: int, steps_per_epoch: int, validate: bool):
    """The Trainer's arguments: global batch = --batch_size whatever the process count; CPU runs use gloo."""
    import torch
    from transformers import TrainingArguments

    cpu = not torch.cuda.is_available()
    return TrainingArguments(
        output_dir=cfg.output_dir, per_device_train_batch_size=cfg.micro_batch_size,
        per_device_eval_batch_size=cfg.micro_batch_size, gradient_accumulation_steps=cfg.accumulation_steps(world),
        num_train_epochs=cfg.num_epochs, learning_rate=cfg.learning_rate, warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler, weight_decay=cfg.weight_decay,
        logging_steps=min(cfg.logging_steps, steps_per_epoch), eval_strategy="epoch" if validate else "no",
        save_strategy="epoch", seed=cfg.seed, data_seed=cfg.seed,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        bf16=cfg.bf16, fp16=cfg.fp16, deepspeed=cfg.deepspeed,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to], remove_unused_columns=False,
        disable_tqdm=False, dataloader_pin_memory=not cpu, use_cpu=cpu,
        ddp_backend="gloo" if world > 1 and cpu else None,
    )  # fmt: skip


def train(cfg: TrainConfig) -> dict:
    """Fine-tune per ``cfg``; return the final training_state.json content."""
    import torch
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer

    world = world_size()
    cfg.accumulation_steps(world)  # refuse uneven batch splits before any heavy work
    resume = cfg.resume_from_checkpoint
    if resume not in (None, "auto") and not Path(resume).is_dir():
        raise GrecError(f"{resume}: checkpoint folder not found (given as --resume_from_checkpoint)")
    if cfg.debug_port and rank() == 0:
        _wait_for_debugger(cfg.debug_port)
    train_records = load_records(cfg.train_data_path, cfg.sample, cfg.seed)
    val_records = load_records([cfg.val_data_path], cfg.val_sample, cfg.seed) if cfg.val_data_path else None
    torch.manual_seed(cfg.seed)
    model, tokenizer, seq2seq, sid_map, token_ids = load_for_training(cfg)
    _check_sid_tokens(train_records, tokenizer)
    if cfg.finetune == "lora":
        model = apply_lora(model, seq2seq, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_target_modules,
                           token_ids)  # fmt: skip
    train_set, _ = tokenize_records(train_records, tokenizer, seq2seq, cfg.cutoff_len, cfg.train_on_inputs)
    val_set = tokenize_records(val_records, tokenizer, seq2seq, cfg.cutoff_len)[0] if val_records else None
    args = training_arguments(cfg, world, max(1, len(train_set) // cfg.batch_size), val_set is not None)

    def save_extra(folder: Path) -> None:
        tokenizer.save_pretrained(folder)
        if sid_map is not None:
            sid_map.save(folder)

    scorer = SidNdcg(cfg, val_records, tokenizer, sid_map, seq2seq) if cfg.eval_metric == "ndcg" else None
    artifacts = RunArtifacts(cfg, save_extra, scorer)
    collator, loss_func = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100), None
    trainer_class = Trainer
    if not seq2seq and keeps_logits_by_mask(model):  # skip work on the prompt: docs in grec/train/loss.py
        collator, loss_func, trainer_class = LabelledPositions(collator), labelled_token_loss, causal_trainer_class()
    trainer = trainer_class(
        model=model, args=args, train_dataset=Dataset.from_list(train_set),
        eval_dataset=Dataset.from_list(val_set) if val_set else None, data_collator=collator,
        processing_class=tokenizer, callbacks=[artifacts], compute_loss_func=loss_func,
    )  # fmt: skip
    with cpu_dropout(model) if not torch.cuda.is_available() else nullcontext() as swapped:
        if swapped:
            logger.info("train: dropout masks drawn by grec.train.cpu_dropout (CPU)")
        state = run_trainer(trainer, artifacts, resume, cfg.output_dir, cfg.keep_cpu_memory)
    release_processes()
    return state


def run_trainer(trainer, artifacts: RunArtifacts, resume: str | None, output_dir: str,
                keep_cpu_memory: bool = True) -> dict:  # fmt: skip
    """Train (resuming from a checkpoint, or with "auto" the newest whole one); return training_state.json.

    On a CPU, freed memory stays in the process while training unless ``keep_cpu_memory`` is false
    (grec/cpu_memory.py).
    """
    artifacts.trainer = trainer
    if resume == "auto":
        resume = latest_complete_checkpoint(output_dir)
        logger.info("resuming from %s", resume or "scratch (no complete checkpoint in --output_dir)")
    with kept_freed_memory(keep_cpu_memory and trainer.args.device.type == "cpu"):
        trainer.train(resume_from_checkpoint=resume)
    return read_json(Path(output_dir) / "training_state.json")
