"""``infer(cfg)``: a trained checkpoint + test records -> ranked catalog items per record."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch

from grec.decoding import SidIndex, sid_beam_search
from grec.decoding.hf import hf_constrained_generate
from grec.errors import GrecError
from grec.infer.config import InferConfig
from grec.io import atomic_open, read_json
from grec.progress import progress
from grec.records import prompt
from grec.sid import SidMap
from grec.sid.tokens import sid_token_ids
from grec.train.data import load_records
from grec.train.export import load_trained

logger = logging.getLogger("grec")


def _check_base_model(cfg: InferConfig) -> None:
    if cfg.base_model is None:
        return
    recorded = read_json(Path(cfg.checkpoint) / "training_state.json")["arguments"]["base_model"]
    if Path(recorded).resolve() != Path(cfg.base_model).resolve() and recorded != cfg.base_model:
        raise GrecError(f"--base_model {cfg.base_model} differs from the checkpoint's base model {recorded}")


def _prompts(records: list[dict], tokenizer, cutoff_len: int, seq2seq: bool, device):
    ids = [t[-cutoff_len:] for t in tokenizer([prompt(r) for r in records], add_special_tokens=False)["input_ids"]]
    width = max(map(len, ids))
    pad = tokenizer.pad_token_id
    if seq2seq:  # encoder inputs pad on the right
        rows = [t + [pad] * (width - len(t)) for t in ids]
        masks = [[1] * len(t) + [0] * (width - len(t)) for t in ids]
    else:  # causal prompts pad on the left so every prompt ends where generation starts
        rows = [[pad] * (width - len(t)) + t for t in ids]
        masks = [[0] * (width - len(t)) + [1] * len(t) for t in ids]
    return torch.tensor(rows, device=device), torch.tensor(masks, device=device)


def _shard(records: list[dict]) -> tuple[list[dict], int, int]:
    """This process's contiguous share of the records under ``accelerate launch`` / torchrun."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    per = -(-len(records) // world)
    return records[rank * per : (rank + 1) * per], rank, world


def _merge_shards(path: Path, world: int) -> list[dict]:
    merged = []
    for rank in range(world):
        shard = path.with_name(f".{path.name}.shard{rank}")
        merged.extend(json.loads(shard.read_text(encoding="utf-8")))
        shard.unlink()
    return merged


def infer(cfg: InferConfig) -> dict:
    """Rank items for every record; write the result file; return a summary.

    Under ``accelerate launch`` each process ranks a contiguous shard of the records and rank 0
    merges the shards, in order, into the one result file.
    """
    _check_base_model(cfg)
    sid_map = SidMap.load(cfg.checkpoint)
    if cfg.sid is not None:
        sid_map.check_same(SidMap.load(cfg.sid), cfg.checkpoint)
    records = load_records([cfg.test_data_path])
    if cfg.sample > 0:
        records = records[: cfg.sample]
    total = len(records)
    records, rank, world = _shard(records)
    unknown = sum(1 for r in records if str(r.get("target")) not in sid_map)
    if unknown:
        logger.warning("infer: %d of %d records have a target outside the checkpoint's catalog; they count as misses",
                       unknown, len(records))  # fmt: skip
    model, tokenizer, seq2seq = load_trained(cfg.checkpoint)
    model = model.to(cfg.device).eval()
    tokens = sid_token_ids(tokenizer, sid_map)
    index = SidIndex.build(sid_map, tokens, cfg.device)
    beams = min(cfg.num_beams, len(sid_map))
    if beams < cfg.num_beams:
        logger.info("infer: --num_beams %d clamped to the catalog size %d", cfg.num_beams, beams)
    returned = min(cfg.num_return_sequences, beams)
    row_of = {item: k for k, item in enumerate(index.item_ids)}
    started = time.time()
    bar = progress(total=len(records), desc="infer: rank items", unit="user")
    for start in range(0, len(records), cfg.batch_size):
        batch = records[start : start + cfg.batch_size]
        ids, mask = _prompts(batch, tokenizer, cfg.cutoff_len, seq2seq, cfg.device)
        exclude = [[row_of[i] for i in r.get("history", []) if i in row_of] for r in batch] if cfg.exclude_history else None
        if cfg.method == "hf":
            if exclude:
                raise GrecError("--exclude_history needs --method vectorised")
            rows, scores = hf_constrained_generate(model, ids, mask, index, beams, returned, tokenizer.eos_token_id,
                                                   tokenizer.pad_token_id, seq2seq)  # fmt: skip
            rows, scores = torch.as_tensor(rows), scores.cpu()
        else:
            result = sid_beam_search(model, ids, mask, index, beams, returned, seq2seq, exclude)
            rows, scores = result.items.cpu(), result.scores.cpu()
        for record, row, score in zip(batch, rows.tolist(), scores.tolist()):
            kept = [(r, s) for r, s in zip(row, score) if r >= 0]
            record["predict"] = [index.item_ids[r] for r, _ in kept]
            record["predict_scores"] = [round(float(s), 6) for _, s in kept]
            record["predict_sids"] = [sid_map.sid_string(index.item_ids[r]) for r, _ in kept]
        bar.update(len(batch))
    bar.close()
    seconds = time.time() - started
    out = Path(cfg.result_json_data)
    if world > 1:
        from accelerate import PartialState

        state = PartialState()
        with atomic_open(out.with_name(f".{out.name}.shard{rank}")) as handle:
            json.dump(records, handle, ensure_ascii=False)
        state.wait_for_everyone()
        if rank == 0:
            records = _merge_shards(out, world)
    if rank == 0:
        with atomic_open(out) as handle:
            json.dump(records, handle, ensure_ascii=False, indent=1)
    return {"records": total, "seconds": round(seconds, 2), "users_per_second": total / max(seconds, 1e-9),
            "unknown_targets": unknown, "num_beams": beams}  # fmt: skip
