"""Semantic-ID maps in LC-Rec's and MiniOneRec's files, both ways.

Both projects write ``{name}.index.json`` (``{"0": ["<a_236>", "<b_231>", "<c_226>"], ...}``, keyed by
their own item numbers) beside ``{name}.item.json`` (``{"0": {"title": ..., "description": ...}}``);
MiniOneRec adds ``{name}.info.txt`` (``<a_236><b_231><c_226>\\ttitle\\tnumber`` per line).

``grec index --import_file NAME.index.json`` turns such a map into a grec SID folder for ``--data``:
an item is matched by its key when the key is a grec item id, else by the ``item_id`` field grec's
own export writes into item.json, else by its title; items sharing a semantic ID (MiniOneRec's
shipped Industrial map has 16 such) get a last code that tells them apart, as ``--dedup level`` does.
``grec index --export_format lcrec|minionerec`` writes a grec SID folder in those layouts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from grec.base.catalog import fingerprint
from grec.base.errors import GrecError
from grec.base.files import SID_MAP
from grec.base.folders import StagedDir
from grec.base.io import atomic_open, read_json, read_jsonl, stage_is_current, write_json
from grec.base.sid import SidMap, level_name
from grec.base.sid.sidmap import TOKEN
from grec.base.version import __version__
from grec.index.collisions import collision_stats, dedup_level
from grec.index.config import IndexConfig
from grec.index.report import level_report
from grec.index.stage import MARKER, read_items, write_index_files

logger = logging.getLogger("grec")
FORMATS = ("lcrec", "minionerec")


def _codes(path: Path, key: str, tokens) -> list[int]:
    if not isinstance(tokens, list) or not tokens:
        raise GrecError(f'{path}: item {key!r}: expected a list of SID tokens such as ["<a_1>", "<b_2>"]')
    codes = []
    for level, text in enumerate(tokens):
        match = TOKEN.match(str(text))
        if match is None or match.group(1) != level_name(level):
            raise GrecError(f"{path}: item {key!r}: token {text!r} is not <{level_name(level)}_N>, level {level + 1}")
        codes.append(int(match.group(2)))
    return codes


def _grec_ids(path: Path, keys: list[str], item_ids: list[str], titles: list[str]) -> list[str]:
    """The grec item id of each key of an imported map (by id, by item.json's item_id, or by title)."""
    known = set(item_ids)
    if all(key in known for key in keys):
        return keys
    items_file = path.with_name(path.name.replace(".index.json", ".item.json"))
    if not items_file.is_file():
        raise GrecError(
            f"{path}: its keys are not item ids of --data, and there is no {items_file.name} beside it to match "
            f"items by title"
        )
    described = read_json(items_file)
    by_title: dict[str, list[str]] = {}
    for item, title in zip(item_ids, titles):
        by_title.setdefault(title, []).append(item)
    out = []
    for key in keys:
        row = described.get(key) or {}
        if str(row.get("item_id")) in known:
            out.append(str(row["item_id"]))
            continue
        matches = by_title.get(str(row.get("title", "")).strip(), [])
        if len(matches) != 1:
            why = "no item" if not matches else f"{len(matches)} items"
            raise GrecError(f"{items_file}: item {key!r} (title {row.get('title')!r}) matches {why} of --data by title")
        out.append(matches[0])
    return out


def import_index(cfg: IndexConfig) -> dict:
    """Write a grec SID folder at ``cfg.out`` from an LC-Rec / MiniOneRec index.json; return its report."""
    path = Path(cfg.import_file)
    settings = {"method": "import", "import_file": str(path.resolve()), "data": str(Path(cfg.data).resolve())}
    if stage_is_current(Path(cfg.out), settings, (SID_MAP, "report.json"), cfg.overwrite, MARKER):
        logger.info("%s already holds the semantic IDs imported from %s; nothing to do", cfg.out, path)
        return read_json(Path(cfg.out) / "report.json")
    mapping = read_json(path)
    if not isinstance(mapping, dict) or not mapping:
        raise GrecError(f"{path}: expected a JSON object of item -> SID tokens (LC-Rec / MiniOneRec index.json)")
    item_ids, texts = read_items(cfg.data)
    titles = [row.get("title", "") for _, row in read_jsonl(Path(cfg.data) / "items.jsonl")]
    keys = list(mapping)
    rows = [_codes(path, key, mapping[key]) for key in keys]
    if len({len(r) for r in rows}) != 1:
        raise GrecError(f"{path}: items have SIDs of different lengths; every item needs the same number of tokens")
    ids = _grec_ids(path, keys, item_ids, titles)
    missing = sorted(set(item_ids) - set(ids))
    if missing:
        raise GrecError(f"{path}: {len(missing)} items of {cfg.data} have no SID there (first: {missing[0]!r})")
    order = {item: k for k, item in enumerate(ids)}
    codes = np.array([rows[order[item]] for item in item_ids], dtype=np.int64)
    before = collision_stats(codes)
    final = dedup_level(codes) if before["collision_rate"] > 0 else codes
    sid_map = SidMap(item_ids, final)
    report = {
        "method": "import",
        "source": str(path.resolve()),
        "items": len(item_ids),
        "sid_length": int(final.shape[1]),
        "collisions_before": before,
        "collisions_after": collision_stats(final),
        "per_level": level_report(final, sid_map.level_sizes()),
    }
    with StagedDir(Path(cfg.out), MARKER) as tmp:
        write_index_files(tmp, sid_map, np.empty((len(item_ids), 0), dtype=np.float32), report)
        write_json(
            tmp / MARKER, {"grec_version": __version__, "settings": settings, "catalog": fingerprint(item_ids, texts)}
        )
    logger.info(
        "index: imported %d semantic IDs from %s (%d items shared one before)",
        len(item_ids),
        path,
        before["items_in_collisions"],
    )
    return report


def export_index(cfg: IndexConfig) -> Path:
    """Write ``cfg.out``'s SID map in ``cfg.export_format``'s layout into ``<out>/<format>/``; return that folder."""
    sid_map = SidMap.load(cfg.out)
    rows = {str(r["item_id"]): r for _, r in read_jsonl(Path(cfg.data) / "items.jsonl")}
    name = Path(cfg.data).resolve().name
    folder = Path(cfg.out) / cfg.export_format
    folder.mkdir(parents=True, exist_ok=True)
    index = {str(k): sid_map.tokens_of(item) for k, item in enumerate(sid_map.item_ids)}
    items = {
        str(k): {
            "title": rows.get(item, {}).get("title", ""),
            "description": rows.get(item, {}).get("text", ""),
            "item_id": item,
        }
        for k, item in enumerate(sid_map.item_ids)
    }
    write_json(folder / f"{name}.index.json", index)
    write_json(folder / f"{name}.item.json", items)
    if cfg.export_format == "minionerec":
        with atomic_open(folder / f"{name}.info.txt") as handle:
            for k, item in enumerate(sid_map.item_ids):
                title = " ".join(items[str(k)]["title"].split())
                handle.write(f"{sid_map.sid_string(item)}\t{title}\t{k}\n")
    logger.info("index: %s layout of %s -> %s", cfg.export_format, cfg.out, folder)
    return folder


__all__ = ["FORMATS", "export_index", "import_index"]
