"""The index stage: items.jsonl -> embeddings -> codes -> one-to-one semantic IDs, written atomically."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from grec.base import fields
from grec.base.catalog import fingerprint
from grec.base.errors import GrecError
from grec.base.files import SETTINGS, SID_MAP
from grec.base.folders import StagedDir
from grec.base.io import read_json, read_jsonl, save_npy, save_npz, stage_is_current, write_json
from grec.base.registry import QUANTIZERS
from grec.base.sid import SidMap
from grec.base.version import __version__
from grec.index.collab import sequence_agreement
from grec.index.collisions import collision_stats, dedup_level, dedup_sinkhorn
from grec.index.config import IndexConfig
from grec.index.plots import plot_index
from grec.index.report import level_report

logger = logging.getLogger("grec")

OUTPUTS = (
    "item_ids.json",
    "embeddings.npy",
    "sid_codes.npy",
    SID_MAP,
    "quantizer.npz",
    "report.json",
    SETTINGS,
)
MARKER = SETTINGS


def read_items(data: str | Path) -> tuple[list[str], list[str]]:
    """Item ids and texts of ``<data>/items.jsonl``; an empty file is an error."""
    path = Path(data) / "items.jsonl"
    ids, texts = [], []
    for number, record in read_jsonl(path):
        if "item_id" not in record or "text" not in record:
            raise GrecError(f"{path}:{number}: an item needs 'item_id' and 'text' fields")
        ids.append(str(record["item_id"]))
        texts.append(str(record["text"]))
    if not ids:
        raise GrecError(f"{path}: no items; run grec prepare again")
    return ids, texts


def _read_npy(path: str) -> np.ndarray:
    """A .npy array, memory-mapped; anything else (pickled objects, a cut-short or foreign file) is refused."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise GrecError(f"{path}: file not found (given as --embeddings)") from None
    except (ValueError, OSError, EOFError) as err:
        raise GrecError(f"{path}: not a whole .npy array of numbers ({err}); save it with numpy.save") from None


def load_embeddings(cfg: IndexConfig, texts: list[str], rows: np.ndarray | None = None) -> np.ndarray:
    """``--embeddings`` (checked) or the encoder's output for ``texts`` (``rows`` selects a subset)."""
    if cfg.embeddings is not None:
        x = _read_npy(cfg.embeddings)
        if x.ndim != 2:
            raise GrecError(
                f"{cfg.embeddings}: a {x.ndim}-D array of shape {x.shape}; expected items x dimensions (2-D)"
            )
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise GrecError(f"{cfg.embeddings}: holds {x.dtype} values; expected numbers (float32 or float64)")
        if len(x) != len(texts):
            raise GrecError(
                f"{cfg.embeddings}: {x.shape[0] if x.ndim else 0} rows but {len(texts)} items in "
                f"{Path(cfg.data) / 'items.jsonl'}; rows must follow items.jsonl order"
            )
        x = np.array(x if rows is None else x[rows], dtype=np.float32)
    else:
        from grec.lm.encoder import embed_texts

        chosen = texts if rows is None else [texts[k] for k in rows]
        x = embed_texts(
            chosen, cfg.encoder, cfg.pooling, cfg.batch_size, cfg.max_length, cfg.device, cfg.cache_embeddings
        )
    bad = ~np.isfinite(x.sum(1))  # NaN and inf survive a row sum; a finite row that overflows is checked below
    bad[bad] = ~np.isfinite(x[bad]).all(1)
    if bad.any():
        source = cfg.embeddings or "the encoder output"
        raise GrecError(f"{source}: row {int(np.flatnonzero(bad)[0])} holds NaN or inf ({int(bad.sum())} rows in all)")
    if len(x) > 1 and x.shape[1] and not np.ptp(x, axis=0).any():
        source = cfg.embeddings or "the encoder output"
        raise GrecError(
            f"{source}: all {len(x)} rows are the same vector ({'zeros' if not x.any() else 'constant'}), so they say "
            f"nothing to tell items apart; give embeddings that differ per item"
        )
    return x


def item_vectors(cfg: IndexConfig, item_ids: list[str], texts: list[str], rows: np.ndarray | None = None) -> np.ndarray:
    """Text (or ``--embeddings``) vectors, mixed with co-occurrence vectors when ``--collab_weight`` > 0."""
    x = load_embeddings(cfg, texts, rows)
    if cfg.collab_weight > 0:
        from grec.index.collab import cooccurrence_embeddings, mix

        collab = cooccurrence_embeddings(cfg.data, item_ids, cfg.collab_dim, seed=cfg.seed)
        x = mix(x, collab if rows is None else collab[rows], cfg.collab_weight)
    return x


def make_quantizer(cfg: IndexConfig):
    """The quantizer ``--method`` names, from ``grec.base.registry.QUANTIZERS`` (IndexConfig imported them)."""
    return QUANTIZERS.get(cfg.method).from_config(cfg)


def uses_embeddings(cfg: IndexConfig) -> bool:
    """Random and sequential IDs ignore item text: no encoder run unless --embeddings is given."""
    return make_quantizer(cfg).uses_embeddings or cfg.embeddings is not None


def outputs(cfg: IndexConfig) -> tuple[str, ...]:
    return OUTPUTS if uses_embeddings(cfg) else tuple(n for n in OUTPUTS if n != "embeddings.npy")


def item_rows(cfg: IndexConfig, item_ids: list[str], texts: list[str], rows: np.ndarray | None = None) -> np.ndarray:
    """What the quantizer reads, one row per item: its vectors, or zero columns for the text-free methods."""
    if uses_embeddings(cfg):
        return item_vectors(cfg, item_ids, texts, rows)
    return np.empty((len(item_ids) if rows is None else len(rows), 0), dtype=np.float32)


def resolve(cfg: IndexConfig, codes: np.ndarray, residual, quantizer, known: np.ndarray | None = None) -> np.ndarray:
    """One-to-one codes. ``known`` (update): final codes of existing rows, -1 rows for new items."""
    costs = None
    if residual is not None:

        def costs(rows: np.ndarray) -> np.ndarray:
            return quantizer.last_level_costs(residual[rows], codes[rows, -1])

    if cfg.dedup == "level":
        extra = None if known is None else known[:, -1]
        if known is not None:
            codes = np.where(extra[:, None] >= 0, known[:, :-1], codes)
        return dedup_level(codes, extra)
    fixed = None
    if known is not None:
        fixed = known[:, 0] >= 0
        codes = np.where(fixed[:, None], known, codes)
    return dedup_sinkhorn(codes, cfg.codebook_size, costs, fixed)


def check_capacity(cfg: IndexConfig, n_items: int) -> None:
    """Refuse a code space too small for the catalog (``--dedup level`` always has room)."""
    if (cfg.dedup == "sinkhorn" or cfg.method == "sequential") and cfg.codebook_size**cfg.levels < n_items:
        raise GrecError(
            f"{n_items} items do not fit in {cfg.codebook_size}^{cfg.levels} = {cfg.codebook_size**cfg.levels} "
            f"semantic IDs; raise --levels or --codebook_size, or use --dedup level"
        )
    if cfg.codebook_size > n_items:
        logger.warning(
            "index: --codebook_size %d is more than the %d items: at most %d codes of a level can be used and the "
            "levels below the first carry little; a codebook near %d (the square root of the item count) shares "
            "codes between similar items",
            cfg.codebook_size,
            n_items,
            n_items,
            max(2, round(n_items**0.5)),
        )


def recorded_settings(cfg: IndexConfig) -> dict:
    settings = fields.recorded_settings(cfg)
    settings["data"] = str(Path(cfg.data).resolve())
    return settings


def new_index(cfg: IndexConfig) -> dict:
    """Build semantic IDs for every item of ``cfg.data``; return the report written to ``report.json``."""
    out = Path(cfg.out)
    settings = recorded_settings(cfg)
    if stage_is_current(out, settings, outputs(cfg), cfg.overwrite, MARKER):
        logger.info("%s already holds semantic IDs with these settings; nothing to do (pass --overwrite to redo)", out)
        return read_json(out / "report.json")
    started = time.time()
    item_ids, texts = read_items(cfg.data)
    check_capacity(cfg, len(item_ids))
    x = item_rows(cfg, item_ids, texts)
    quantizer = make_quantizer(cfg)
    codes, residual = quantizer.fit(x)
    before = collision_stats(codes)
    final = resolve(cfg, codes, residual, quantizer)
    sid_map = SidMap(item_ids, final)
    report = {
        "method": cfg.method,
        "levels": cfg.levels,
        "codebook_size": cfg.codebook_size,
        "balanced": cfg.balanced,
        "dedup": cfg.dedup,
        "seed": cfg.seed,
        "items": len(item_ids),
        "embedding_dim": int(x.shape[1]) or None,
        "sid_length": int(final.shape[1]),
        "collisions_before": before,
        "collisions_after": collision_stats(final),
        "per_level": level_report(final, level_sizes(cfg, final)),
        "sequence_agreement": sequence_agreement(cfg.data, item_ids, final),
        **quantizer.quality(x, residual),
    }
    with StagedDir(out, MARKER) as tmp:
        save_npz(tmp / "quantizer.npz", method=np.array(cfg.method), **quantizer.state())
        report["seconds"] = round(time.time() - started, 2)
        write_index_files(tmp, sid_map, x, report)
        marker = {"grec_version": __version__, "settings": settings, "catalog": fingerprint(item_ids, texts)}
        write_json(tmp / MARKER, marker)
    return report


def write_index_files(folder: Path, sid_map: SidMap, x: np.ndarray, report: dict) -> None:
    """item_ids.json, embeddings.npy (when the method read item text), sid_codes.npy, sid_map.json, report.json
    and index.png."""
    write_json(folder / "item_ids.json", sid_map.item_ids)
    if x.shape[1]:
        save_npy(folder / "embeddings.npy", x)
    save_npy(folder / "sid_codes.npy", sid_map.codes)
    sid_map.save(folder)
    write_json(folder / "report.json", report)
    plot_index(sid_map.codes, report, folder / "index.png")


def level_sizes(cfg: IndexConfig, final: np.ndarray) -> list[int]:
    """Codebook size per output level: the configured size, or wider where a level was widened."""
    used = (final.max(0) + 1).tolist()
    sizes = [max(cfg.codebook_size, u) for u in used[: cfg.levels]]
    return sizes + used[cfg.levels :]
