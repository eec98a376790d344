"""``infer(cfg)``: a trained checkpoint + test records -> ranked catalog items per record."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from grec.base.distributed import barrier, release_processes, world_size
from grec.base.distributed import rank as process_rank
from grec.base.errors import GrecError
from grec.base.files import TRAINING_STATE
from grec.base.io import read_json, read_jsonl, write_json, write_jsonl, write_records
from grec.base.progress import progress
from grec.base.records import load_records
from grec.base.sid import SidMap
from grec.decoding.fusion import fusion_grid
from grec.decoding.ranker import Ranker
from grec.decoding.titles import TitleRanker
from grec.infer.config import InferConfig
from grec.lm.checkpoint import load_trained
from grec.lm.cpu_memory import kept_freed_memory

logger = logging.getLogger("grec")


def _check_base_model(cfg: InferConfig) -> None:
    if cfg.base_model is None:
        return
    recorded = read_json(Path(cfg.checkpoint) / TRAINING_STATE)["arguments"]["base_model"]
    if Path(recorded).resolve() != Path(cfg.base_model).resolve() and recorded != cfg.base_model:
        raise GrecError(f"--base_model {cfg.base_model} differs from the checkpoint's base model {recorded}")


def _check_records_match(records: list[dict], sid_map: SidMap, path: str) -> None:
    """Records written with another SID map spell their targets differently: refuse them."""
    for number, record in enumerate(records[:1000]):
        target = str(record.get("target"))
        if target in sid_map and record["output"] != sid_map.sid_string(target):
            raise GrecError(
                f"{path}: record {number} spells item {target} as {record['output']} but the checkpoint's SID map "
                f"says {sid_map.sid_string(target)}; rebuild the records with the checkpoint's sid_map.json"
            )


def _shard(records: list[dict]) -> tuple[list[dict], int, int]:
    """This process's contiguous share of the records under ``accelerate launch`` / torchrun."""
    world, rank = world_size(), process_rank()
    per = -(-len(records) // world)
    return records[rank * per : (rank + 1) * per], rank, world


def _merge_shards(path: Path, world: int) -> list[dict]:
    merged = []
    for rank in range(world):
        shard = path.with_name(f".{path.name}.shard{rank}")
        merged.extend(record for _, record in read_jsonl(shard))
        shard.unlink()
    return merged


def build_ranker(
    cfg: InferConfig, model, tokenizer, seq2seq: bool, sid_map: SidMap | None, titles: dict | None
) -> tuple[Ranker | TitleRanker, dict | None]:
    """The SID ranker, or in title mode the title ranker, with its fusion weights tuned on validation
    if asked: then also the tuning (the chosen weights and each grid pair's NDCG@10), else None."""
    if cfg.mode == "sid":
        ranker = Ranker(
            model,
            tokenizer,
            sid_map,
            seq2seq,
            cfg.num_beams,
            cfg.num_return_sequences,
            cfg.cutoff_len,
            cfg.method,
            cfg.device,
        )
        if ranker.beams < cfg.num_beams:
            logger.info("infer: --num_beams %d clamped to the catalog size %d", cfg.num_beams, ranker.beams)
        return ranker, None
    cf = None
    if cfg.cf_model is not None:  # scipy.sparse is loaded only when a collaborative model is used
        from grec.models.itemknn import ItemKNN

        cf = ItemKNN.load(cfg.cf_model)
    ci = None
    if cfg.ci_score is not None:
        scores = read_json(cfg.ci_score)
        ci = np.array([float(scores.get(item, 0.0)) for item in titles])
    ranker = TitleRanker(
        model,
        tokenizer,
        titles,
        seq2seq,
        cfg.num_beams,
        cfg.num_return_sequences,
        cfg.constrained,
        cfg.encoder,
        ci,
        cfg.ci_gamma,
        cfg.cutoff_len,
        cfg.device,
        cf,
        cfg.cf_delta,
    )
    if not cfg.tune_gamma:
        return ranker, None
    valid = load_records([cfg.val_data_path], cfg.val_sample)
    deltas = cfg.delta_grid if cfg.cf_model else None
    gammas = cfg.gamma_grid if cfg.ci_score else [0.0]
    tried = ranker.tune(valid, fusion_grid(gammas, deltas), cfg.batch_size, cfg.exclude_history)
    logger.info(
        "infer: gamma %s, delta %s chosen on %d validation records (NDCG@10 per (gamma, delta): %s)",
        ranker.gamma,
        ranker.delta,
        len(valid),
        {pair: round(ndcg, 4) for pair, ndcg in tried.items()},
    )
    tuning = {
        "gamma": _weight(ranker.gamma),
        "delta": _weight(ranker.delta),
        "validation_records": len(valid),
        "exclude_history": cfg.exclude_history,
        "valid_ndcg@10": [
            {"gamma": _weight(g), "delta": _weight(d), "ndcg@10": round(v, 6)} for (g, d), v in tried.items()
        ],
    }
    return ranker, tuning


def rank_records(cfg: InferConfig, ranker, records: list[dict], sid_map: SidMap | None, titles: dict | None) -> float:
    """Add each record's ranked items (and their SIDs and scores, or titles) in place; return the seconds taken."""
    started = time.time()
    bar = progress(total=len(records), desc="infer: rank items", unit="user")
    for start in range(0, len(records), cfg.batch_size):
        batch = records[start : start + cfg.batch_size]
        for k, (record, (items, scores)) in enumerate(zip(batch, ranker.rank(batch, cfg.exclude_history))):
            record["predict"] = items
            record["exclude_history"] = cfg.exclude_history  # evaluate marks tables that mix the two protocols
            if titles is not None:
                record["predict_titles"] = [titles[item] for item in items]
                if not cfg.constrained:  # grounded: the free title the items were grounded from
                    record["generated_title"] = ranker.last_generated[k]
            else:
                record["predict_scores"] = [round(s, 6) for s in scores]
                record["predict_sids"] = [sid_map.sid_string(item) for item in items]
        bar.update(len(batch))
    bar.close()
    return time.time() - started


def infer(cfg: InferConfig) -> dict:
    """Rank items for every record; write the result file; return a summary.

    Under ``accelerate launch`` each process ranks a contiguous shard of the records and rank 0
    merges the shards, in order, into the one result file.
    """
    import torch

    _check_base_model(cfg)
    sid_map, titles = None, None
    if cfg.mode == "title":
        titles = {str(r["item_id"]): r["title"] for _, r in read_jsonl(cfg.items)}
        catalog = set(titles)
    else:
        sid_map = SidMap.load(cfg.checkpoint)
        if cfg.sid is not None:
            sid_map.check_same(SidMap.load(cfg.sid), cfg.checkpoint)
        catalog = sid_map
    records = load_records([cfg.test_data_path])
    if cfg.sample > 0:
        records = records[: cfg.sample]
    if cfg.mode == "sid":
        _check_records_match(records, sid_map, cfg.test_data_path)
    total = len(records)
    records, rank, world = _shard(records)
    unknown = sum(1 for r in records if str(r.get("target")) not in catalog)
    if unknown:
        logger.warning(
            "infer: %d of %d records have a target outside the checkpoint's catalog; they count as misses",
            unknown,
            len(records),
        )
    model, tokenizer, seq2seq = load_trained(cfg.checkpoint)
    model = model.to(cfg.device).eval()
    with kept_freed_memory(cfg.keep_cpu_memory and torch.device(cfg.device).type == "cpu"):
        ranker, tuning = build_ranker(cfg, model, tokenizer, seq2seq, sid_map, titles)
        seconds = rank_records(cfg, ranker, records, sid_map, titles)
    out = Path(cfg.result_json_data)
    if world > 1:
        write_jsonl(out.with_name(f".{out.name}.shard{rank}"), records)
        barrier()
        if rank == 0:
            records = _merge_shards(out, world)
    if rank == 0:
        write_records(out, records)
        if tuning is not None:  # the chosen fusion stays beside the rankings it produced
            write_json(fusion_path(out), tuning)
    release_processes()
    return {
        "records": total,
        "seconds": round(seconds, 2),
        "users_per_second": total / max(seconds, 1e-9),
        "unknown_targets": unknown,
        "num_beams": ranker.beams,
        "gamma": getattr(ranker, "gamma", None),
        "delta": getattr(ranker, "delta", None),
    }


def _weight(value: float) -> float | str:
    """A fusion weight for JSON: inf (that ingredient alone) as the string "inf"."""
    return "inf" if np.isinf(value) else float(value)


def fusion_path(result: Path) -> Path:
    """Where --tune_gamma's choice and its validation scores go: beside the result file."""
    return result.with_name(f"{result.stem}.fusion.json")
