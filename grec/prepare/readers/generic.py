"""Any interaction log: a CSV/TSV/JSONL interactions file and an items file, column names configurable."""

from __future__ import annotations

import math
import os
from pathlib import Path

from grec.base.tables import read_table
from grec.prepare.log import (
    CatalogBuilder,
    LogBuilder,
    RawLog,
    clean_id,
    parse_rating,
    parse_time,
    read_log_columns,
)

RESERVED = ("item_id", "title", "text")


def read_generic(
    interactions: str | os.PathLike,
    items: str | os.PathLike,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    item_id_col: str = "item_id",
    title_col: str = "title",
    sep: str | None = None,
    encoding: str = "utf-8",
    rating_col: str | None = None,
) -> RawLog:
    """Read interactions (user, item, numeric timestamp) and item metadata (id, title, other fields).

    An item's ``text`` is its title followed by its other non-empty fields as ``name: value``;
    all fields are kept in its record. Items without a title are dropped and counted.
    """
    log = read_log_columns(interactions, user_col, item_col, time_col, rating_col, sep, encoding)
    if log is None:  # JSONL, ISO times or a bad row: row by row, so an error names the line
        log = LogBuilder()
        columns = [user_col, item_col, time_col, *([rating_col] if rating_col else [])]
        for number, row in read_table(interactions, columns, sep, encoding):
            log.add(
                clean_id(row[user_col], interactions, number, user_col),
                clean_id(row[item_col], interactions, number, item_col),
                parse_time(row[time_col], interactions, number, time_col),
                parse_rating(row[rating_col], interactions, number, rating_col) if rating_col else math.nan,
            )
    catalog = CatalogBuilder(log.item_ids())
    for number, row in read_table(items, [item_id_col, title_col], sep, encoding):
        item_id = clean_id(row[item_id_col], items, number, item_id_col)
        title = "" if row[title_col] is None else str(row[title_col]).strip()
        if not catalog.accepts(item_id, title):
            continue
        extra = {k: v for k, v in row.items() if k not in (item_id_col, title_col) and v not in (None, "", [], {})}
        text = ". ".join([title, *(f"{k}: {_show(v)}" for k, v in extra.items())])
        raw = {(f"source_{k}" if k in RESERVED else k): v for k, v in extra.items()}
        catalog.add({"item_id": item_id, "title": title, "text": text, **raw})
    return log.build(catalog.records, [Path(interactions), Path(items)], catalog.dropped)


def _show(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
