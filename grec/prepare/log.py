"""The in-memory form of a source: interactions as integer codes plus the item catalog.

Readers stream their files row by row into a :class:`LogBuilder`, which interns user and item
ids to integers and keeps three compact arrays, so a multi-GB reviews file never becomes a list
of Python records.
"""

from __future__ import annotations

import ast
import json
import math
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grec.base.errors import GrecError, where
from grec.base.tables import read_columns


@dataclass
class RawLog:
    """Interactions in file order and the metadata of catalog items.

    ``users[k]``, ``items[k]``, ``times[k]`` describe the k-th interaction in source order;
    ``user_ids`` / ``item_ids`` map the integer codes back to the source's string ids.
    ``catalog`` maps an item id to its record (``item_id``, ``title``, ``text`` and raw fields).
    ``dropped`` counts what reading removed (items without a title, duplicate metadata rows...).
    ``ratings[k]`` is the k-th interaction's rating, NaN where the source has none.
    ``given`` is the split of a source that arrives split (MiniOneRec's CSVs), else None.
    """

    user_ids: list[str]
    item_ids: list[str]
    users: np.ndarray
    items: np.ndarray
    times: np.ndarray
    catalog: dict[str, dict]
    inputs: list[Path]
    dropped: Counter = field(default_factory=Counter)
    ratings: np.ndarray | None = None
    given: object = None  # a grec.prepare.splits.Split (that module builds on this one)


class LogBuilder:
    """Accumulates ``(user, item, time, rating)`` rows as integer codes: one by one (``add``) or as
    whole columns (``add_columns``), kept as numpy chunks so a 20M-row file is never copied twice."""

    def __init__(self) -> None:
        self._users: dict[str, int] = {}
        self._items: dict[str, int] = {}
        self._rows = (array("q"), array("q"), array("d"), array("d"))
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, user: str, item: str, time: float, rating: float = math.nan) -> None:
        users, items, times, ratings = self._rows
        users.append(self._users.setdefault(user, len(self._users)))
        items.append(self._items.setdefault(item, len(self._items)))
        times.append(time)
        ratings.append(rating)

    def add_columns(
        self,
        users: tuple[np.ndarray, list[str]],
        items: tuple[np.ndarray, list[str]],
        times: np.ndarray,
        ratings: np.ndarray | None = None,
    ) -> None:
        """Many rows at once: ``users`` and ``items`` as (codes, values) pairs (``read_columns``)."""
        self._flush()
        codes = [
            np.array([ids.setdefault(v, len(ids)) for v in values], dtype=np.int64)[indices]
            for (indices, values), ids in ((users, self._users), (items, self._items))
        ]
        filled = np.full(len(times), np.nan) if ratings is None else ratings
        self._chunks.append((*codes, np.asarray(times, dtype=np.float64), np.asarray(filled, dtype=np.float64)))

    def _flush(self) -> None:
        """Move the rows added one by one into a chunk (keeps the file order across both ways)."""
        if len(self._rows[0]):
            kinds = (np.int64, np.int64, np.float64, np.float64)
            self._chunks.append(tuple(np.frombuffer(a, dtype=k).copy() for a, k in zip(self._rows, kinds)))  # type: ignore[arg-type]
            self._rows = (array("q"), array("q"), array("d"), array("d"))

    def __len__(self) -> int:
        return len(self._rows[0]) + sum(len(chunk[0]) for chunk in self._chunks)

    def item_ids(self) -> set[str]:
        return set(self._items)

    def build(self, catalog: dict[str, dict], inputs: list[Path], dropped: Counter | None = None) -> RawLog:
        self._flush()
        kinds = (np.int64, np.int64, np.float64, np.float64)
        if len(self._chunks) == 1:
            columns = self._chunks[0]
        else:
            columns = tuple(
                np.concatenate([c[k] for c in self._chunks]) if self._chunks else np.zeros(0, dtype=kind)
                for k, kind in enumerate(kinds)
            )
        self._chunks = []
        return RawLog(
            user_ids=list(self._users),
            item_ids=list(self._items),
            users=columns[0],
            items=columns[1],
            times=columns[2],
            catalog=catalog,
            inputs=inputs,
            dropped=dropped if dropped is not None else Counter(),
            ratings=columns[3],
        )


def read_log_columns(
    path: str | Path,
    user_col: str,
    item_col: str,
    time_col: str,
    rating_col: str | None = None,
    sep: str | None = None,
    encoding: str = "utf-8",
) -> LogBuilder | None:
    """A clean delimited interactions file (numeric timestamps) read whole by pyarrow; None when it
    needs the row-by-row reader, which names the line at fault (``grec.base.tables.read_columns``)."""
    numbers = [time_col, *([rating_col] if rating_col else [])]
    columns = read_columns(path, [user_col, item_col], numbers, sep, encoding)
    if columns is None or not np.isfinite(columns[time_col]).all():
        return None
    log = LogBuilder()
    log.add_columns(columns[user_col], columns[item_col], columns[time_col], columns.get(rating_col or ""))
    return log


class CatalogBuilder:
    """Collects metadata records of the items the interactions use.

    The first record of an item wins, with or without a title; later records of it are counted as
    ``duplicate_item_metadata``, records without a title as ``items_without_title``.
    """

    def __init__(self, wanted: set[str]) -> None:
        self.wanted = wanted
        self.seen: set[str] = set()
        self.records: dict[str, dict] = {}
        self.dropped: Counter = Counter()

    def accepts(self, item_id: str, title: str) -> bool:
        """Whether a record for ``item_id`` titled ``title`` should be added."""
        if item_id not in self.wanted:
            return False
        if item_id in self.seen:
            self.dropped["duplicate_item_metadata"] += 1
            return False
        self.seen.add(item_id)
        if not title:
            self.dropped["items_without_title"] += 1
            return False
        return True

    def add(self, record: dict) -> None:
        self.records[record["item_id"]] = record


def describe(title: str, fields: Iterable[tuple[str, object]]) -> str:
    """An item's text for the encoder, ``"<title>. <Name>: <value>. ..."``: list values joined with
    commas, empty ones (None, "", []) left out."""
    parts = [f"{title}."]
    for name, value in fields:
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        if value not in (None, ""):
            parts.append(f"{name}: {value}.")
    return " ".join(parts)


def parse_record(line: str, path: object, number: int) -> dict:
    """A JSON object per line, or a Python dict literal (Amazon 2014 metadata, Steam): what those dumps hold."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        try:
            record = ast.literal_eval(line.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise GrecError(f"{where(path, number)}: not valid JSON ({err.msg}); fix or remove this line") from None
    if not isinstance(record, dict):
        raise GrecError(f"{where(path, number)}: expected one JSON object per line")
    return record


def parse_rating(value: object, path: object, line: int, column: str) -> float:
    """A rating as a number (NaN when the field is empty); anything else names file, line and column."""
    if value is None or value == "":
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GrecError(f"{where(path, line)}: column {column!r} must be a number (a rating), got {value!r}") from None


def parse_time(value: object, path: object, line: int, column: str) -> float:
    """A timestamp: a number (unix seconds or milliseconds) or ISO-8601 text (``2014-07-01``,
    ``2014-07-01T12:30:00Z``, with or without an offset; without one it is read as UTC), as unix
    seconds. Anything else names file, line and column."""
    if isinstance(value, bool):
        value = None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = _iso_seconds(value)
    if not math.isfinite(number):
        raise GrecError(
            f"{where(path, line)}: column {column!r} must be a timestamp (unix seconds, or ISO-8601 such as "
            f"2014-07-01T12:30:00Z), got {value!r}; convert the column or point --time_col at another one"
        )
    return number


def _iso_seconds(value: object) -> float:
    from datetime import datetime, timezone

    if not isinstance(value, str):
        return math.nan
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return math.nan
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def clean_id(value: object, path: object, line: int, column: str) -> str:
    """An id as a non-empty string (``12`` and ``"12"`` are the same id)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = "" if value is None else str(value).strip()
    if not text:
        raise GrecError(f"{where(path, line)}: column {column!r} is empty; every row needs a {column}")
    return text
