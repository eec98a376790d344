"""``grec index --update``: codes for new catalog items, every existing item's code unchanged."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from grec.base.catalog import fingerprint
from grec.base.errors import GrecError
from grec.base.folders import StagedDir
from grec.base.io import read_json, write_json
from grec.base.sid import SidMap
from grec.index.collisions import collision_stats
from grec.index.config import IndexConfig
from grec.index.report import level_report
from grec.index.stage import (
    MARKER,
    check_capacity,
    item_rows,
    level_sizes,
    make_quantizer,
    read_items,
    resolve,
    write_index_files,
)

logger = logging.getLogger("grec")


def load_quantizer(cfg: IndexConfig, path: Path):
    """The fitted quantiser saved in ``quantizer.npz``."""
    with np.load(path) as saved:
        state = {k: saved[k] for k in saved.files if k != "method"}
    quantizer = make_quantizer(cfg)
    quantizer.load_state(state)
    return quantizer


def update_index(cfg: IndexConfig) -> dict:
    """Add the items of ``cfg.data`` that ``cfg.out`` lacks, with the quantiser and settings stored there."""
    out = Path(cfg.out)
    if not (out / MARKER).is_file():
        raise GrecError(f"{out}: no finished index to update; run grec index without --update first")
    started = time.time()
    recorded = read_json(out / MARKER)["settings"]
    stored = IndexConfig(
        **{**recorded, "data": cfg.data, "out": cfg.out, "embeddings": cfg.embeddings, "device": cfg.device}
    )
    old_ids = read_json(out / "item_ids.json")
    old_codes = np.load(out / "sid_codes.npy")
    old_x = np.load(out / "embeddings.npy") if (out / "embeddings.npy").is_file() else None
    item_ids, texts = read_items(cfg.data)
    known_ids = set(old_ids)
    new_rows = np.array([k for k, item in enumerate(item_ids) if item not in known_ids], dtype=np.int64)
    missing = len(known_ids - set(item_ids))
    report = read_json(out / "report.json")
    if not len(new_rows):
        logger.info("%s: no new items in %s; nothing to do", out, Path(cfg.data) / "items.jsonl")
        return report
    check_capacity(stored, len(old_ids) + len(new_rows))
    x_new = item_rows(stored, item_ids, texts, new_rows)
    old_x = old_x if old_x is not None else np.empty((len(old_ids), 0), dtype=np.float32)
    if x_new.shape[1] != old_x.shape[1]:
        raise GrecError(
            f"new embeddings have {x_new.shape[1]} dimensions but the index was built with {old_x.shape[1]}"
        )
    x_all = np.concatenate([old_x, x_new])
    quantizer = load_quantizer(stored, out / "quantizer.npz")
    codes, residual = quantizer.encode(x_all)
    known = np.concatenate([old_codes, np.full((len(new_rows), old_codes.shape[1]), -1, dtype=np.int64)])
    final = resolve(stored, codes, residual, quantizer, known)
    if not np.array_equal(final[: len(old_ids)], old_codes):
        raise GrecError("internal error: the update changed existing codes; the index was left as it was")
    all_ids = old_ids + [item_ids[k] for k in new_rows]
    sid_map = SidMap(all_ids, final)
    report.update(
        {
            "items": len(all_ids),
            "collisions_after": collision_stats(final),
            "per_level": level_report(final, level_sizes(stored, final)),
            "sid_length": int(final.shape[1]),
        }
    )
    report.setdefault("updates", []).append(
        {
            "data": str(Path(cfg.data).resolve()),
            "added_items": int(len(new_rows)),
            "items_before": len(old_ids),
            "indexed_items_missing_from_data": missing,
            "new_item_collisions_before": collision_stats(codes[len(old_ids) :]) if len(new_rows) > 1 else None,
            "seconds": round(time.time() - started, 2),
        }
    )
    with StagedDir(out, MARKER) as tmp:
        write_index_files(tmp, sid_map, x_all, report)
        write_json(tmp / MARKER, {**read_json(out / MARKER), "catalog": fingerprint(item_ids, texts)})
    logger.info("index: added %d items to %s (%d before; every existing code kept)", len(new_rows), out, len(old_ids))
    return report
