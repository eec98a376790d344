"""Amazon Reviews 2014/2018 and 2023: reviews and item metadata, JSON lines, optionally gzipped.

Reviews: 2014/2018 records carry ``reviewerID, asin, unixReviewTime`` (seconds); 2023 records
carry ``user_id, parent_asin, timestamp`` (milliseconds). Metadata: ``asin`` (2014/2018) or
``parent_asin`` (2023) with ``title`` and descriptive fields. 2014 metadata files hold Python
dict literals rather than JSON; both are read. Only metadata of reviewed items is kept in memory.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from grec.base.errors import GrecError, where
from grec.base.io import numbered_lines
from grec.prepare.log import CatalogBuilder, LogBuilder, RawLog, clean_id, parse_rating, parse_record, parse_time

REVIEW_FIELDS = {
    "2018": ("reviewerID", "asin", "unixReviewTime"),
    "2023": ("user_id", "parent_asin", "timestamp"),
}
KEPT_FIELDS = (
    "brand",
    "store",
    "main_cat",
    "main_category",
    "category",
    "categories",
    "description",
    "feature",
    "features",
    "price",
    "details",
)
TEXT_DESCRIPTION_CHARS = 1000


def _review_format(record: dict, path, line: int) -> str:
    if "reviewerID" in record:
        return "2018"
    if "user_id" in record:
        return "2023"
    raise GrecError(
        f"{where(path, line)}: not an Amazon review record (fields: {', '.join(record)}); expected "
        f"reviewerID/asin/unixReviewTime (2014/2018) or user_id/parent_asin/timestamp (2023)"
    )


def read_reviews(path: str | os.PathLike, log: LogBuilder) -> str:
    """Stream a reviews file into ``log``; return its format, ``"2018"`` or ``"2023"``."""
    fmt = None
    for number, line in numbered_lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise GrecError(f"{where(path, number)}: not valid JSON ({err.msg}); fix or remove this line") from None
        if fmt is None:
            fmt = _review_format(record, path, number)
        user_key, item_key, time_key = REVIEW_FIELDS[fmt]
        if fmt == "2023" and item_key not in record and "asin" in record:
            item_key = "asin"
        for key in (user_key, item_key, time_key):
            if key not in record:
                raise GrecError(f"{where(path, number)}: missing field {key!r} in an Amazon {fmt} review record")
        rating_key = "overall" if "overall" in record else "rating"
        log.add(
            clean_id(record[user_key], path, number, user_key),
            clean_id(record[item_key], path, number, item_key),
            parse_time(record[time_key], path, number, time_key),
            parse_rating(record.get(rating_key), path, number, rating_key),
        )
    if fmt is None:
        raise GrecError(f"{path}: no reviews in the file")
    return fmt


def _flat(value: object, joiner: str) -> str:
    """Categories / descriptions come as a string, a list, or (2014) a list of lists."""
    if value is None:
        return ""
    if isinstance(value, list):
        if value and all(isinstance(v, list) for v in value):
            value = value[0]
        return joiner.join(str(v).strip() for v in value if str(v).strip())
    return str(value).strip()


def item_record(item_id: str, title: str, record: dict) -> dict:
    """An ``items.jsonl`` record: title, encoder text (title, brand, categories, description), raw fields."""
    brand = _flat(record.get("brand") or record.get("store"), " ")
    categories = _flat(record.get("categories") or record.get("category"), " > ")
    description = html.unescape(_flat(record.get("description"), " "))[:TEXT_DESCRIPTION_CHARS]
    parts = [title]
    if brand:
        parts.append(f"Brand: {brand}")
    if categories:
        parts.append(f"Categories: {categories}")
    if description:
        parts.append(f"Description: {description}")
    kept = {key: record[key] for key in KEPT_FIELDS if record.get(key) not in (None, "", [], {})}
    return {"item_id": item_id, "title": title, "text": ". ".join(parts), **kept}


def read_meta(path: str | os.PathLike, wanted: set[str]) -> CatalogBuilder:
    """Metadata records of the ``wanted`` items; items with no title are dropped and counted."""
    catalog = CatalogBuilder(wanted)
    for number, line in numbered_lines(path):
        record = parse_record(line, path, number)
        key = "parent_asin" if "parent_asin" in record else "asin"
        if key not in record:
            raise GrecError(f"{where(path, number)}: metadata record without 'parent_asin' or 'asin'")
        item_id = clean_id(record[key], path, number, key)
        title = html.unescape(str(record.get("title") or "")).strip()
        if catalog.accepts(item_id, title):
            catalog.add(item_record(item_id, title, record))
    return catalog


def read_amazon(reviews: str | os.PathLike, meta: str | os.PathLike) -> RawLog:
    """Read a reviews file and its metadata file (2014, 2018 or 2023 layout)."""
    log = LogBuilder()
    read_reviews(reviews, log)
    catalog = read_meta(meta, log.item_ids())
    return log.build(catalog.records, [Path(reviews), Path(meta)], catalog.dropped)
