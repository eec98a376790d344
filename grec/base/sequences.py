"""Users' training sequences as the split files hold them, and the windows a sequence is cut into.

prepare writes the split files (docs/formats.md): ``train.jsonl`` either holds one window per
training interaction (``{"user_id", "history", "target"}``, the default) or, with ``--train_format
sequences``, one line per user (``{"user_id", "sequence"}``), from which the same windows are
derived when read (``training_windows``). index (co-occurrence vectors), records, the popularity
baseline and the SASRec task read them back through these helpers, so both layouts work everywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator

from grec.base.errors import GrecError, where
from grec.base.io import read_jsonl
from grec.base.queries import is_item_id


def read_split(path: str | os.PathLike) -> Iterator[dict]:
    """The rows of a split file (train/valid/test.jsonl), each checked: ``user_id``, and either a
    ``history`` list and a ``target`` item id, or a compact ``sequence`` list. A wrong row is a GrecError
    naming the file, line and field (a history written as a string would otherwise be read letter by letter)."""
    for number, row in read_jsonl(path):
        if "user_id" not in row:
            raise GrecError(f"{where(path, number)}: no 'user_id' field; split rows are {SHAPE}")
        name = "sequence" if "sequence" in row else "history"
        items = row.get(name)
        if not isinstance(items, list) or not all(map(is_item_id, items)):
            raise GrecError(
                f"{where(path, number)}: {name!r} must be a list of item ids (strings or integers), got "
                f"{_shown(items)}; split rows are {SHAPE}"
            )
        if name == "history" and not is_item_id(row.get("target")):
            raise GrecError(f"{where(path, number)}: 'target' must be an item id, got {_shown(row.get('target'))}")
        yield row


SHAPE = '{"user_id", "history": [item ids, oldest first], "target": item id} (docs/formats.md)'


def _shown(value: object) -> str:
    text = "nothing" if value is None else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def user_training_sequences(records: Iterable[dict]) -> dict[str, list[str]]:
    """Each user's whole training sequence, rebuilt from the records of a train.jsonl, in file order.

    prepare writes one record per training interaction, in time order, each history ending with the
    previous record's target; so the first record's history followed by every target is the whole
    sequence, however short ``--max_history`` cut the histories. A file that does not chain that
    way (written by another tool) falls back to each user's longest ``history + [target]``.
    """
    sequences: dict[str, list[str]] = {}
    for record in records:
        if "sequence" in record:  # the compact layout: the whole training sequence on one line
            sequences[record["user_id"]] = list(record["sequence"])
            continue
        user, history, target = record["user_id"], record["history"], record["target"]
        sequence = sequences.get(user)
        if sequence is None:
            sequences[user] = [*history, target]
        elif history and history[-1] == sequence[-1]:
            sequence.append(target)
        elif len(history) + 1 > len(sequence):
            sequences[user] = [*history, target]
    return sequences


def training_windows(records: Iterable[dict], max_history: int = 50) -> Iterator[dict]:
    """Every training example ``{"user_id", "history", "target"}`` of a train.jsonl in either layout:
    window lines pass through; a compact ``sequence`` line gives targets 2..n, each with the
    ``max_history`` items before it (what prepare would have written as windows)."""
    for record in records:
        if "sequence" not in record:
            yield record
            continue
        seq = record["sequence"]
        for t in range(1, len(seq)):
            yield {"user_id": record["user_id"], "history": seq[max(0, t - max_history) : t], "target": seq[t]}


def sequence_chunks(sequence: list[str], max_history: int) -> list[list[str]]:
    """Windows of at most ``max_history + 1`` items covering ``sequence``, oldest first.

    The last window ends at the sequence's end and each overlaps the one before it by one item,
    so, trained as next-item targets after their window's first item, every item but the very
    first is predicted exactly once.
    """
    chunks, end = [], len(sequence)
    while end > 1:
        start = max(0, end - max_history - 1)
        chunks.append(sequence[start:end])
        end = start + 1
    return chunks[::-1]
