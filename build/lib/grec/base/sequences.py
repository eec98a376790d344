"""Users' training sequences as the split files hold them, and the windows a sequence is cut into.

prepare writes the split files (docs/formats.md); index (co-occurrence vectors) and records
(whole-sequence windows) read them back through these helpers.
"""

from __future__ import annotations

from collections.abc import Iterable


def user_training_sequences(records: Iterable[dict]) -> dict[str, list[str]]:
    """Each user's whole training sequence, rebuilt from the records of a train.jsonl, in file order.

    prepare writes one record per training interaction, in time order, each history ending with the
    previous record's target; so the first record's history followed by every target is the whole
    sequence, however short ``--max_history`` cut the histories. A file that does not chain that
    way (written by another tool) falls back to each user's longest ``history + [target]``.
    """
    sequences: dict[str, list[str]] = {}
    for record in records:
        user, history, target = record["user_id"], record["history"], record["target"]
        sequence = sequences.get(user)
        if sequence is None:
            sequences[user] = [*history, target]
        elif history and history[-1] == sequence[-1]:
            sequence.append(target)
        elif len(history) + 1 > len(sequence):
            sequences[user] = [*history, target]
    return sequences


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
