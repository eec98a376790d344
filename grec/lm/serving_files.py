"""What a checkpoint carries so that it can recommend on its own: how its prompts are written and its catalog.

``grec train`` writes both into best/ and last/ (and ``grec export`` copies them), so the Python
API and ``grec serve`` rebuild the training prompts from a list of item ids with no records folder,
prepared data or command line at hand:

- ``records.json``: the records settings the training records were written with (``style``,
  ``prompt``, ``max_history``) and the data split they came from (``split``), from the
  ``settings.json`` that ``grec records`` left beside them;
- ``items.jsonl``: one ``{"item_id", "title"}`` per catalog item, from the prepared data.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from grec.base.files import RECORDS_SETTINGS, SETTINGS
from grec.base.io import read_json, read_jsonl, write_json, write_jsonl

logger = logging.getLogger("grec")
CATALOG = "items.jsonl"
PROMPT_KEYS = ("style", "prompt", "max_history")


def records_settings(records_files: list[str]) -> dict | None:
    """The records settings of the first training file whose folder has grec records' settings.json, or None."""
    for path in records_files:
        marker = Path(path).parent / SETTINGS
        if marker.is_file():
            settings = read_json(marker).get("settings", {})
            if all(key in settings for key in PROMPT_KEYS):
                return settings
    return None


def write_serving_files(folder: Path, settings: dict | None) -> None:
    """Write ``records.json`` and ``items.jsonl`` into a checkpoint folder being saved (nothing without settings)."""
    if settings is None:
        return
    write_json(
        folder / RECORDS_SETTINGS, {key: settings[key] for key in PROMPT_KEYS} | {"split": settings.get("split")}
    )
    items = Path(settings.get("data") or "") / "items.jsonl"
    if not items.is_file():
        logger.warning("train: %s is gone, so the checkpoint carries no item titles", items)
        return
    write_jsonl(
        folder / CATALOG, ({"item_id": str(r["item_id"]), "title": r.get("title", "")} for _, r in read_jsonl(items))
    )


def copy_serving_files(source: Path, target: Path) -> None:
    """Copy a checkpoint's ``records.json`` and ``items.jsonl`` into another folder (an export)."""
    for name in (RECORDS_SETTINGS, CATALOG):
        if (source / name).is_file():
            shutil.copy(source / name, target / name)
