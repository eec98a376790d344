"""The prepare stage: read a source, split it (leave-one-out or temporal), write the splits atomically."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from grec.base import fields
from grec.base.errors import GrecError
from grec.base.files import SETTINGS
from grec.base.folders import StagedDir, publishes
from grec.base.io import read_json, stage_is_current, write_json, write_jsonl
from grec.base.version import __version__
from grec.prepare.config import PrepareConfig
from grec.prepare.datasets import DATASETS
from grec.prepare.log import RawLog
from grec.prepare.plots import plot_stats
from grec.prepare.sequences import Sequences, build_sequences, natural_key
from grec.prepare.splits import NAMES, Split, leave_one_out, temporal

logger = logging.getLogger("grec")

OUTPUTS = ("items.jsonl", "train.jsonl", "valid.jsonl", "test.jsonl", "stats.json", "stats.png", SETTINGS)
MARKER = SETTINGS


def read_source(cfg: PrepareConfig) -> RawLog:
    """Read the raw log of the config's data set (grec.prepare.datasets)."""
    return DATASETS[cfg.dataset].read(cfg)


def make_split(cfg: PrepareConfig, seqs: Sequences) -> Split:
    """The ``--split`` protocol's targets (grec.prepare.splits)."""
    if cfg.split == "temporal":
        split = temporal(seqs, cfg.ratios, cfg.train_windows, cfg.unseen_items)
        if not split.counts()["test"]:
            raise GrecError(
                f"--split temporal: no test events left after the cut at {split.info['valid_end']} "
                f"({split.info['dropped']}); raise the test share of --ratios or keep --unseen_items"
            )
        return split
    return leave_one_out(seqs, cfg.train_windows)


def recorded_settings(cfg: PrepareConfig) -> dict:
    """The settings that determine the output, as stored in ``settings.json``."""
    settings = fields.recorded_settings(cfg)
    for flag in ("source", "reviews", "meta", "interactions", "items"):
        if settings[flag] is not None:
            settings[flag] = str(Path(settings[flag]).resolve())
    return settings


def compute_stats(cfg: PrepareConfig, seqs: Sequences, counts: dict[str, int], raw: RawLog) -> dict:
    """Dataset statistics for ``stats.json``."""
    lengths = np.array([len(s) for s in seqs.sequences])
    n_items = len({item for seq in seqs.sequences for item in seq})
    n_inter = int(lengths.sum())
    first = _number(min(t[0] for t in seqs.times))
    last = _number(max(t[-1] for t in seqs.times))
    return {
        "dataset": cfg.dataset,
        "users": len(seqs.users),
        "items": n_items,
        "interactions": n_inter,
        "density": n_inter / (len(seqs.users) * n_items),
        "sequence_length": {
            "min": int(lengths.min()),
            "median": float(np.median(lengths)),
            "mean": float(lengths.mean()),
            "max": int(lengths.max()),
        },
        "examples": counts,
        "time_range": [first, last],
        "read": {
            "interactions": int(len(raw.users)),
            "users": len(raw.user_ids),
            "items_with_metadata": len(raw.catalog),
        },
        "removed": dict(sorted(seqs.removed.items())),
        "kcore_rounds": seqs.kcore_rounds,
    }


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


@publishes()
def prepare(cfg: PrepareConfig) -> dict:
    """Run the prepare stage; return the stats written to ``stats.json``."""
    out = Path(cfg.out)
    settings = recorded_settings(cfg)
    if stage_is_current(out, settings, OUTPUTS, cfg.overwrite, MARKER):
        logger.info("%s is already prepared with these settings; nothing to do (pass --overwrite to redo)", out)
        return read_json(out / "stats.json")
    started = time.time()
    raw = read_source(cfg)
    logger.info("read %d interactions from %s", len(raw.users), ", ".join(str(p) for p in raw.inputs))
    split = raw.given or make_split(
        cfg,
        build_sequences(
            raw,
            cfg.min_user_inter,
            cfg.min_item_inter,
            cfg.dedup,
            cfg.sample_users,
            cfg.seed,
            cfg.start,
            cfg.end,
            cfg.min_rating,
        ),
    )
    seqs = split.seqs
    used = {item for seq in seqs.sequences for item in seq}
    items = [raw.catalog[i] for i in sorted(used, key=natural_key)]
    with StagedDir(out, MARKER) as tmp:
        write_jsonl(tmp / "items.jsonl", items)
        for name in NAMES[1:]:
            write_jsonl(tmp / f"{name}.jsonl", split.records(name, cfg.max_history))
        compact = cfg.train_format == "sequences"
        rows = split.train_sequences() if compact else split.records("train", cfg.max_history)
        lines = write_jsonl(tmp / "train.jsonl", rows)
        counts = split.counts() | ({"train_lines": lines} if compact else {})
        stats = compute_stats(cfg, seqs, counts, raw)
        stats["split"] = {"protocol": split.protocol, "tags": {n: split.tag(n) for n in NAMES[1:]}, **split.info}
        write_json(tmp / "stats.json", stats)
        plot_stats(
            seqs.sequences, tmp / "stats.png", f"{cfg.dataset}: {stats['users']:,} users, {stats['items']:,} items"
        )
        write_json(
            tmp / MARKER,
            {
                "grec_version": __version__,
                "settings": settings,
                "split": {"protocol": split.protocol, "tags": stats["split"]["tags"]},
                "seconds": round(time.time() - started, 2),
            },
        )
    return stats
