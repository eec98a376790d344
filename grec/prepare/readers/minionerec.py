"""MiniOneRec's processed CSVs: a log that arrives already split (the ``given`` protocol).

MiniOneRec (and its forks) ship ``train/``, ``valid/`` and ``test/`` CSV files with seven columns,
``user_id, history_item_title, item_title, history_item_id, item_id, history_item_sid, item_sid``,
the ``history_*`` ones Python list literals. Each row is one target with the (at most ten) items
before it; the rows were cut 8:1:1 by target time across the whole log, so a user's rows, read
train -> valid -> test in file order, continue one another.

The reader rebuilds every user's sequence from those chained rows and keeps each row as a target
of its file's split, so the records grec writes are the files' rows (same users, histories up to
``--max_history``, targets) and the split tag fingerprints exactly them. A row whose history does
not continue the user's earlier rows is an error naming file and line: such files were not made
by MiniOneRec's pipeline, and chaining them would invent a sequence.
"""

from __future__ import annotations

import ast
import os
from collections import Counter
from pathlib import Path

import numpy as np

from grec.base.errors import GrecError, where
from grec.base.tables import read_table
from grec.prepare.log import LogBuilder, RawLog, clean_id
from grec.prepare.sequences import Sequences
from grec.prepare.splits import NAMES, Split

COLUMNS = ["user_id", "history_item_id", "item_id", "history_item_title", "item_title"]
LAYOUT = "expected train/, valid/ and test/ folders of CSVs, or train.csv, valid.csv and test.csv (grec prepare --help)"


def split_files(source: str | os.PathLike, category: str | None = None) -> dict[str, Path]:
    """The train/valid/test CSV of a MiniOneRec folder (either layout in ``LAYOUT``)."""
    root = Path(source)
    if root.is_file():
        raise GrecError(f"{root}: --dataset minionerec reads a folder, not one file ({LAYOUT})")
    files = {}
    for name in NAMES:
        flat = root / f"{name}.csv"
        if flat.is_file() and category is None:
            files[name] = flat
            continue
        found = sorted((root / name).glob(f"{category or ''}*.csv"))
        if len(found) != 1:
            start = f" starting with {category!r}" if category else ""
            listed = (
                f" ({', '.join(p.name for p in found)}); name the one to read with --category"
                if found
                else f"; {LAYOUT}"
            )
            raise GrecError(f"{root / name}: {len(found) or 'no'} CSV files{start}{listed}")
        files[name] = found[0]
    return files


def read_minionerec(source: str | os.PathLike, category: str | None = None, encoding: str = "utf-8") -> RawLog:
    """The rows as a RawLog whose ``given`` holds the split they define (module docstring)."""
    files = split_files(source, category)
    log = LogBuilder()
    titles: dict[str, str] = {}
    chains: dict[str, list[str]] = {}
    stamps: dict[str, list[float]] = {}
    targets: dict[str, list[tuple[str, int]]] = {name: [] for name in NAMES}
    for name, path in files.items():
        for number, row in read_table(path, COLUMNS, ",", encoding):
            user = clean_id(row["user_id"], path, number, "user_id")
            history = _ids(row["history_item_id"], path, number, "history_item_id")
            target = clean_id(row["item_id"], path, number, "item_id")
            _titles(titles, history, _list(row["history_item_title"], path, number, "history_item_title"), path, number)
            _titles(titles, [target], [row["item_title"]], path, number)
            chain = chains.get(user)
            if chain is None:
                chain, stamps[user] = chains.setdefault(user, list(history)), []
                for item in history:
                    stamps[user].append(float(len(log)))
                    log.add(user, item, stamps[user][-1])
            elif not history or chain[-len(history) :] != history:
                raise GrecError(
                    f"{where(path, number)}: the history of user {user!r} does not continue their earlier rows "
                    f"(it ends {history[-3:]}, their items so far end {chain[-3:]}); MiniOneRec rows of a user, read "
                    f"train -> valid -> test, each add the next item"
                )
            targets[name].append((user, len(chain)))
            chain.append(target)
            stamps[user].append(float(len(log)))
            log.add(user, target, stamps[user][-1])
    catalog = {item: {"item_id": item, "title": title, "text": title} for item, title in titles.items()}
    raw = log.build(catalog, list(files.values()))
    users = list(chains)
    seqs = Sequences(users, [chains[u] for u in users], [np.array(stamps[u]) for u in users], Counter(), 0)
    index = {user: k for k, user in enumerate(users)}
    arrays = {
        name: (np.array([index[u] for u, _ in pairs], dtype=np.int64), np.array([t for _, t in pairs], dtype=np.int64))
        for name, pairs in targets.items()
    }
    raw.given = Split("given", seqs, arrays, {"rows": {name: len(pairs) for name, pairs in targets.items()}})
    return raw


def _titles(titles: dict[str, str], items: list[str], given: list, path, number: int) -> None:
    """Record each item's title (the first one seen; ``given`` parallel to ``items``); none may be empty."""
    if len(given) != len(items):
        raise GrecError(
            f"{where(path, number)}: history_item_title has {len(given)} entries but history_item_id has "
            f"{len(items)}; the two lists must be parallel"
        )
    for item, title in zip(items, given):
        title = str(title).strip()
        if not title:
            raise GrecError(f"{where(path, number)}: item {item!r} has an empty title; every item needs one")
        titles.setdefault(item, title)


def _list(value: str, path, number: int, column: str) -> list:
    try:
        parsed = ast.literal_eval(value.strip()) if value.strip() else []
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        parsed = None
    if not isinstance(parsed, (list, tuple)):
        raise GrecError(
            f"{where(path, number)}: column {column!r} must be a Python list such as ['12', '7'], got {value[:60]!r}"
        )
    return list(parsed)


def _ids(value: str, path, number: int, column: str) -> list[str]:
    return [clean_id(item, path, number, column) for item in _list(value, path, number, column)]
