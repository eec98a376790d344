"""``align(cfg)``: an SFT checkpoint + next-item records -> a post-trained checkpoint (DPO, S-DPO, GRPO).

Written on the shared training machinery rather than trl's ``DPOTrainer``: the negatives come from
grec's SID-constrained beam search and catalog, the responses are SID strings laid out exactly as
``grec train`` lays them out (its prompt cut, causal or seq2seq alike), and the run keeps grec's
conventions (best/ by validation NDCG, exact resume, only rank 0 writes). What trl contributes is
the loss, whose few lines live in ``grec.training.preference``. GRPO's rollouts are grec's own
SID-constrained beam (``grec.training.grpo``), which trl's ``GRPOTrainer`` (text sampling through
``generate``) cannot produce.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
from contextlib import nullcontext
from pathlib import Path

import torch

from grec.align.config import AlignConfig
from grec.align.negatives import NegativeSampler, collab_similarity, training_popularity, user_items
from grec.base.distributed import barrier, rank, release_processes, world_size
from grec.base.errors import GrecError
from grec.base.io import read_jsonl, write_jsonl
from grec.base.records import load_records
from grec.base.sid import SidMap
from grec.base.sid.tokens import sid_token_ids
from grec.decoding.ranker import Ranker
from grec.lm.checkpoint import check_checkpoint, load_trained
from grec.lm.loading import apply_lora, record_base_model
from grec.lm.serving_files import copy_serving_files
from grec.training.arguments import training_arguments
from grec.training.artifacts import RunArtifacts
from grec.training.grpo import grpo_trainer_class, response_layout
from grec.training.loop import check_run_folder, run_trainer
from grec.training.loss import keeps_logits_by_mask
from grec.training.preference import (
    PreferenceCollator,
    disable_dropout,
    fitted_prompts,
    preference_example,
    preference_trainer_class,
    sequence_logps,
    sid_responses,
)
from grec.training.scoring import SidNdcg

logger = logging.getLogger("grec")
PAIRS = "pairs.jsonl"


def load_policy(cfg: AlignConfig):
    """(model, tokenizer, seq2seq, sid_map, arguments) of the starting checkpoint, ready to train.

    A LoRA checkpoint is merged into its base, saved once as ``<output_dir>/base`` (the aligned
    adapters' base model), and given a fresh adapter: disabling that adapter gives back the starting
    model exactly, with no second copy in memory.
    """
    sft = check_checkpoint(cfg.checkpoint)
    model, tokenizer, seq2seq = load_trained(cfg.checkpoint)
    sid_map = SidMap.load(cfg.checkpoint)
    arguments = {"model_type": sft.get("model_type", "auto"), "base_model": sft.get("base_model")}
    if hasattr(model, "merge_and_unload"):
        targets = cfg.lora_target_modules or sorted(next(iter(model.peft_config.values())).target_modules)
        model = model.merge_and_unload()
        base = (Path(cfg.output_dir) / "base").resolve()
        if rank() == 0 and not (base / "config.json").is_file():
            staged = base.with_name(".base.tmp")
            shutil.rmtree(staged, ignore_errors=True)
            model.save_pretrained(staged)
            tokenizer.save_pretrained(staged)
            os.replace(staged, base)
        barrier()
        ids = sid_token_ids(tokenizer, sid_map)
        token_ids = sorted({int(i) for level in ids.level_ids for i in level if i >= 0})
        model = apply_lora(model, seq2seq, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, targets, token_ids)
        record_base_model(model, str(base))
        arguments["base_model"] = str(base)
    disable_dropout(model)
    return model, tokenizer, seq2seq, sid_map, arguments


def reference_model(model):
    """The frozen starting model: the policy with its fresh adapter switched off (LoRA), else itself
    before its first step (the reference is computed before training starts)."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext()


def check_targets(records: list[dict], sid_map: SidMap) -> None:
    """Every record answers its target's SID: the chosen response is the target item."""
    for number, record in enumerate(records):
        if record["output"] != sid_map.sid_string(str(record["target"])):
            raise GrecError(
                f"--train_data_path: record {number} answers {record['output']!r}, not its target's SID "
                f"{sid_map.sid_string(str(record['target']))}; align needs next-item SID records "
                f"(grec records --tasks seqrec --style sid) built with the checkpoint's sid_map.json"
            )


@torch.no_grad()
def build_pairs(
    cfg: AlignConfig, model, tokenizer, seq2seq: bool, sid_map: SidMap, records, val_records, by_mask: bool = False
) -> list[dict]:
    """Each record's negatives and the reference log-probabilities of its chosen and negative responses
    (``by_mask``: see ``sequence_logps``)."""
    check_targets(records, sid_map)
    model.eval()
    device = next(model.parameters()).device
    ranker = Ranker(model, tokenizer, sid_map, seq2seq, cfg.hard_beams, cfg.hard_beams, cfg.cutoff_len, device=device)
    sampler = NegativeSampler(
        cfg.counts,
        list(sid_map.item_ids),
        training_popularity(records),
        user_items(records, val_records or []),
        ranker,
        cfg.seed,
    )
    with reference_model(model):
        negatives = sampler.draw(records, cfg.micro_batch_size)
        responses = sid_responses(tokenizer, sid_map, [[str(r["target"]), *n] for r, n in zip(records, negatives)])
        prompts = fitted_prompts(records, tokenizer, seq2seq, cfg.cutoff_len, responses)
        collator, refs, step = PreferenceCollator(tokenizer.pad_token_id), [], cfg.micro_batch_size
        for start in range(0, len(records), step):
            batch = collator(
                [
                    preference_example(p, r, seq2seq)
                    for p, r in zip(prompts[start : start + step], responses[start : start + step])
                ]
            )
            batch = {k: v.to(device) for k, v in batch.items() if k != "ref"}
            refs += sequence_logps(model, batch, seq2seq, by_mask).view(-1, 1 + cfg.num_negatives).tolist()
    return [
        {
            "user_id": r.get("user_id"),
            "target": str(r["target"]),
            "negatives": n,
            "prompt": p,
            "responses": rs,
            "ref": ref,
        }
        for r, n, p, rs, ref in zip(records, negatives, prompts, responses, refs)
    ]


def grpo_reference(model, seq2seq: bool, by_mask: bool):
    """``reference(batch)``: the starting model's log-probabilities, from the policy with its adapter off
    (LoRA) or from a frozen copy made before the first step (full fine-tuning: a second copy in memory)."""
    if hasattr(model, "disable_adapter"):

        def reference(batch):
            with model.disable_adapter():
                return sequence_logps(model, batch, seq2seq, by_mask)

        return reference
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    return lambda batch: sequence_logps(frozen, batch, seq2seq, by_mask)


def _grpo_trainer(cfg: AlignConfig, model, tokenizer, seq2seq, sid_map, records, by_mask: bool, **kwargs):
    from datasets import Dataset

    device = next(model.parameters()).device
    ranker = Ranker(
        model, tokenizer, sid_map, seq2seq, cfg.num_generations, cfg.num_generations, cfg.cutoff_len, device=device
    )
    fields = ("instruction", "input", "output", "history", "target", "user_id", "template", "prompt")
    rows = [{k: r[k] for k in fields if k in r} for r in records]
    return grpo_trainer_class()(
        model=model,
        train_dataset=Dataset.from_list(rows),
        data_collator=lambda features: {"records": features},
        processing_class=tokenizer,
        ranker=ranker,
        rollout=cfg.rollout,
        temperature=cfg.temperature,
        layout=response_layout(tokenizer, sid_map, seq2seq, cfg.cutoff_len),
        reference=grpo_reference(model, seq2seq, by_mask),
        reward=cfg.reward,
        collab=collab_similarity(records) if cfg.reward == "collab" else None,
        clip=cfg.clip,
        kl_coef=cfg.kl_coef,
        seq2seq=seq2seq,
        by_mask=by_mask,
        **kwargs,
    )


def _preference_trainer(cfg: AlignConfig, model, tokenizer, seq2seq, sid_map, records, val_records, by_mask, **kwargs):
    from datasets import Dataset

    pairs_file = Path(cfg.output_dir) / PAIRS
    if rank() == 0 and not pairs_file.is_file():  # a resumed run trains on the very same pairs
        write_jsonl(pairs_file, build_pairs(cfg, model, tokenizer, seq2seq, sid_map, records, val_records, by_mask))
    barrier()
    pairs = [row for _, row in read_jsonl(pairs_file)]
    train_set = Dataset.from_list([preference_example(p["prompt"], p["responses"], seq2seq, p["ref"]) for p in pairs])
    return preference_trainer_class()(
        model=model,
        train_dataset=train_set,
        data_collator=PreferenceCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        method=cfg.method,
        beta=cfg.beta,
        sft_weight=cfg.sft_weight,
        seq2seq=seq2seq,
        by_mask=by_mask,
        **kwargs,
    )


def align(cfg: AlignConfig) -> dict:
    """Post-train per ``cfg``; return the final training_state.json content."""
    world = world_size()
    cfg.accumulation_steps(world)
    check_run_folder(cfg)
    records = load_records(cfg.train_data_path, cfg.sample, cfg.seed)
    val_records = load_records([cfg.val_data_path], cfg.val_sample, cfg.seed) if cfg.val_data_path else None
    torch.manual_seed(cfg.seed)
    model, tokenizer, seq2seq, sid_map, arguments = load_policy(cfg)
    steps = max(1, len(records) // cfg.batch_size)
    args = training_arguments(cfg, world, cfg.micro_batch_size, cfg.micro_batch_size, steps, False)

    def save_extra(folder: Path) -> None:
        tokenizer.save_pretrained(folder)
        sid_map.save(folder)
        copy_serving_files(Path(cfg.checkpoint), folder)

    scorer = SidNdcg(cfg, val_records, tokenizer, sid_map, seq2seq) if val_records else None
    artifacts = RunArtifacts(cfg, save_extra, scorer, arguments)
    # causal models that take a boolean logits_to_keep compute only the logits of response tokens
    common = dict(args=args, callbacks=[artifacts], by_mask=keeps_logits_by_mask(model) and not seq2seq)
    if cfg.method == "grpo":
        trainer = _grpo_trainer(cfg, model, tokenizer, seq2seq, sid_map, records, **common)
    else:
        trainer = _preference_trainer(cfg, model, tokenizer, seq2seq, sid_map, records, val_records, **common)
    state = run_trainer(trainer, artifacts, cfg.resume_from_checkpoint, cfg.output_dir, cfg.keep_cpu_memory)
    release_processes()
    return state
