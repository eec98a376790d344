"""The records stage: prepared splits (+ semantic IDs) -> instruction records for LLM training."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np

from grec.base import fields
from grec.base.catalog import fingerprint
from grec.base.errors import GrecError
from grec.base.files import SETTINGS
from grec.base.folders import StagedDir, publishes
from grec.base.io import read_json, read_jsonl, stage_is_current, write_json, write_json_rows
from grec.base.sequences import read_split, sequence_chunks, training_windows, user_training_sequences
from grec.base.sid import SidMap
from grec.base.templates import fill, history_record, item_text, quote
from grec.base.version import __version__
from grec.records.config import HISTORY_TASKS, RecordsConfig

logger = logging.getLogger("grec")
OUTPUTS = ("train.json", "valid.json", "test.json", SETTINGS)
MARKER = SETTINGS


def _writer(cfg: RecordsConfig, titles: dict[str, str], sid_map: SidMap | None):
    def render(item: str) -> str:
        return sid_map.sid_string(item) if cfg.style == "sid" else quote(titles[item])

    separator = "" if cfg.prompt == "plain" else ", "
    marks = {"prompt": "plain"} if cfg.prompt == "plain" else {}

    def seqrec(row: dict) -> dict:
        record = history_record(
            row["history"], render, cfg.style, cfg.prompt, cfg.max_history, row["target"], row["user_id"]
        )
        return {**record, "split": row["split"]} if "split" in row else record

    def sequence(user: str, window: list[str]) -> dict:
        # the first item is the prompt (never a target, as in seqrec); the rest are the response
        text = separator.join(render(i) for i in window[1:])
        return {
            "template": "sequence",
            "instruction": "",
            "input": render(window[0]),
            "output": text,
            **marks,
            "user_id": user,
            "target": window[-1],
            "history": window[:-1],
        }

    return seqrec, sequence


def prepared_marker(data: str | Path) -> dict:
    """The settings.json grec prepare left in a data folder (its flags and split); {} for a folder from elsewhere."""
    marker = Path(data) / SETTINGS
    return read_json(marker) if marker.is_file() else {}


def _check_items(path: Path, rows: list[dict], titles: dict[str, str], sid_map: SidMap | None) -> None:
    for number, row in enumerate(rows, 1):
        for item in [*row["history"], row["target"]]:
            if item not in titles:
                raise GrecError(f"{path}:{number}: item {item!r} is not in items.jsonl; run grec prepare again")
            if sid_map is not None and item not in sid_map:
                raise GrecError(
                    f"{path}:{number}: item {item!r} has no semantic ID; run grec index --update on the SID folder"
                )


def _check_catalog(cfg: RecordsConfig, catalog: str) -> None:
    """A SID folder names the items of the catalog it was built from: refuse it for another one."""
    built = read_json(Path(cfg.sid) / SETTINGS).get("catalog") if (Path(cfg.sid) / SETTINGS).is_file() else None
    if built is not None and built != catalog:
        raise GrecError(
            f"{cfg.sid}: built from another catalog than {Path(cfg.data) / 'items.jsonl'} (fingerprint {built} there, "
            f"{catalog} here), so its semantic IDs would name other items; index this data "
            f"(grec index --data {cfg.data}, or --update to add its new items) or give the SID folder built from it"
        )


def _prompt_mark(cfg: RecordsConfig) -> dict:
    """The record's ``prompt`` field for --prompt plain / chat (alpaca records carry none)."""
    return {"prompt": cfg.prompt} if cfg.prompt in ("plain", "chat") else {}


def _item_record(cfg: RecordsConfig, task: str, title: str, sid: str, item: str, description: str = "") -> dict:
    """An item2index / index2item / desc2index record: an item's title (or description) and its
    semantic ID, one asking for the other."""
    return {
        **fill(task, title=item_text(title), sid=sid, description=item_text(description)),
        **_prompt_mark(cfg),
        "user_id": None,
        "target": item,
        "history": [],
    }


def description(row: dict) -> str:
    """An item's text without its title (what item search asks from); "" when nothing else is there."""
    text, title = str(row.get("text") or "").strip(), str(row["title"]).strip()
    if text.startswith(title):
        text = text[len(title) :].lstrip(" .,:;-\n")
    return text


def _fused_record(cfg: RecordsConfig, task: str, row: dict, titles: dict[str, str], sid_map: SidMap) -> dict:
    """titles2index / index2title: one training interaction with the history in one spelling (titles
    or SIDs) and the next item in the other (LC-Rec's asymmetric item prediction)."""
    history = row["history"][-cfg.max_history :]
    if task == "titles2index":
        shown, target = ", ".join(quote(titles[i]) for i in history), sid_map.sid_string(row["target"])
    else:
        shown, target = ", ".join(sid_map.sid_string(i) for i in history), item_text(titles[row["target"]])
    return {
        **fill(task, history=shown, target=target),
        **_prompt_mark(cfg),
        "user_id": row["user_id"],
        "target": row["target"],
        "history": row["history"],
    }


@publishes()
def build_records(cfg: RecordsConfig) -> dict[str, int]:
    """Write train/valid/test records; return how many records each file holds."""
    out = Path(cfg.out)
    settings = fields.recorded_settings(cfg)
    settings["data"] = str(Path(cfg.data).resolve())
    settings["sid"] = str(Path(cfg.sid).resolve()) if cfg.sid else None
    prepared = prepared_marker(cfg.data)
    settings["split"] = prepared.get("split")
    if stage_is_current(out, settings, OUTPUTS, cfg.overwrite, MARKER):
        logger.info("%s already holds these records; nothing to do (pass --overwrite to redo)", out)
        return read_json(out / MARKER)["counts"]
    items = [row for _, row in read_jsonl(Path(cfg.data) / "items.jsonl")]
    titles = {r["item_id"]: r["title"] for r in items}
    sid_map = SidMap.load(cfg.sid) if cfg.sid else None
    if cfg.sid:
        _check_catalog(cfg, fingerprint([str(r["item_id"]) for r in items], [str(r.get("text")) for r in items]))
    seqrec, sequence = _writer(cfg, titles, sid_map)
    # each record as a recipe to render it: --sample picks among them first, so only kept ones are rendered
    makers: dict[str, list] = {}
    prepared_history = prepared.get("settings", {}).get("max_history", 50)
    history_tasks = [t for t in HISTORY_TASKS if t in cfg.tasks]
    spelt = cfg.style == "sid" or bool(history_tasks)  # history items or targets written as SIDs
    for name in ("train", "valid", "test"):
        path = Path(cfg.data) / f"{name}.jsonl"
        rows = list(read_split(path))
        if name == "train":
            rows = list(training_windows(rows, prepared_history))
        _check_items(path, rows, titles, sid_map if spelt else None)
        wanted = "seqrec" in cfg.tasks or (name != "train" and "sequence" in cfg.tasks)
        makers[name] = [partial(seqrec, row) for row in rows] if wanted else []
        if name == "train" and "sequence" in cfg.tasks:
            for user, items in user_training_sequences(rows).items():
                makers["train"].extend(partial(sequence, user, w) for w in sequence_chunks(items, cfg.max_history))
        if name == "train":
            for task in history_tasks:
                makers["train"].extend(partial(_fused_record, cfg, task, row, titles, sid_map) for row in rows)
    texts = {r["item_id"]: description(r) for r in items} if "desc2index" in cfg.tasks else {}
    for task in ("item2index", "index2item", "desc2index"):
        if task in cfg.tasks:
            makers["train"].extend(
                partial(_item_record, cfg, task, titles[item], sid_map.sid_string(item), item, texts.get(item, ""))
                for item in sid_map.item_ids
                if item in titles and (task != "desc2index" or texts.get(item))
            )
    if 0 < cfg.sample < len(makers["train"]):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(makers["train"]), cfg.sample, replace=False))
        makers["train"] = [makers["train"][k] for k in keep]
    splits = {name: [make() for make in recipes] for name, recipes in makers.items()}
    counts = {name: len(rows) for name, rows in splits.items()}
    with StagedDir(out, MARKER) as tmp:
        for name, rows in splits.items():
            write_json_rows(tmp / f"{name}.json", rows)
        write_json(tmp / MARKER, {"grec_version": __version__, "settings": settings, "counts": counts})
    return counts
