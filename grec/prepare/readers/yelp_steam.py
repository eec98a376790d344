"""Yelp Open Dataset and the Steam data of Kang & McAuley (SASRec's Steam), one record per line.

- Yelp: ``--reviews yelp_academic_dataset_review.json`` (``user_id``, ``business_id``, ``stars``,
  ``date`` as ``2018-07-07 22:09:11``) and ``--meta yelp_academic_dataset_business.json``
  (``business_id``, ``name``, ``categories`` as one comma-separated string, ``city``, ``state``).
- Steam: ``--reviews steam_reviews.json`` (``username`` or ``user_id``, ``product_id``, ``date``
  as ``2017-10-21``, ``hours``) and ``--meta steam_games.json`` (``id``, ``title`` or
  ``app_name``, ``genres``, ``tags``, ``developer``); both dumps hold Python dict literals.

Either file may be gzipped. A review without one of its fields names the file and line.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from grec.base.errors import GrecError, where
from grec.base.io import numbered_lines
from grec.prepare.log import (
    CatalogBuilder,
    LogBuilder,
    RawLog,
    clean_id,
    describe,
    parse_rating,
    parse_record,
    parse_time,
)


def _field(record: dict, keys: tuple[str, ...], path: Path, number: int, what: str):
    for key in keys:
        if record.get(key) not in (None, ""):
            return key, record[key]
    raise GrecError(f"{where(path, number)}: missing field {' or '.join(map(repr, keys))} in a {what} record")


def _read_log(path: Path, user: tuple, item: tuple, rating: str | None, what: str) -> LogBuilder:
    log = LogBuilder()
    for number, line in numbered_lines(path):
        record = parse_record(line, path, number)
        user_key, user_id = _field(record, user, path, number, what)
        item_key, item_id = _field(record, item, path, number, what)
        _, date = _field(record, ("date",), path, number, what)
        log.add(
            clean_id(user_id, path, number, user_key),
            clean_id(item_id, path, number, item_key),
            parse_time(str(date), path, number, "date"),
            parse_rating(record.get(rating), path, number, rating) if rating else math.nan,
        )
    if not len(log):
        raise GrecError(f"{path}: no {what} records in the file")
    return log


def read_yelp(reviews: str | os.PathLike, meta: str | os.PathLike) -> RawLog:
    """Reviews as interactions (stars as the rating), businesses as items titled by their name."""
    reviews, meta = Path(reviews), Path(meta)
    log = _read_log(reviews, ("user_id",), ("business_id",), "stars", "Yelp review")
    catalog = CatalogBuilder(log.item_ids())
    for number, line in numbered_lines(meta):
        record = parse_record(line, meta, number)
        _, business = _field(record, ("business_id",), meta, number, "Yelp business")
        item_id, title = clean_id(business, meta, number, "business_id"), str(record.get("name") or "").strip()
        if catalog.accepts(item_id, title):
            place = ", ".join(str(record[k]) for k in ("city", "state") if record.get(k))
            text = describe(title, [("Categories", record.get("categories")), ("Location", place)])
            catalog.add(
                {
                    "item_id": item_id,
                    "title": title,
                    "text": text,
                    **{k: v for k, v in record.items() if k not in ("business_id", "name")},
                }
            )
    return log.build(catalog.records, [reviews, meta], catalog.dropped)


def read_steam(reviews: str | os.PathLike, meta: str | os.PathLike) -> RawLog:
    """Reviews as interactions (no rating), games as items titled by ``title`` (else ``app_name``)."""
    reviews, meta = Path(reviews), Path(meta)
    log = _read_log(reviews, ("user_id", "username"), ("product_id",), None, "Steam review")
    catalog = CatalogBuilder(log.item_ids())
    for number, line in numbered_lines(meta):
        record = parse_record(line, meta, number)
        if record.get("id") in (None, ""):
            continue  # a handful of games in the dump have no id: nothing can refer to them
        item_id = clean_id(record["id"], meta, number, "id")
        title = str(record.get("title") or record.get("app_name") or "").strip()
        if catalog.accepts(item_id, title):
            fields = [
                (name, record.get(key))
                for name, key in (("Genres", "genres"), ("Tags", "tags"), ("Developer", "developer"))
            ]
            fields = [(name, value[:20] if isinstance(value, list) else value) for name, value in fields]
            catalog.add(
                {
                    "item_id": item_id,
                    "title": title,
                    "text": describe(title, fields),
                    **{k: v for k, v in record.items() if k not in ("id", "title")},
                }
            )
    return log.build(catalog.records, [reviews, meta], catalog.dropped)
