"""From a raw log to per-user, time-ordered item sequences and leave-one-out examples.

All steps are array operations on the integer codes: order by (user, time, file position),
drop interactions with unknown items, keep a user's first interaction with an item, k-core
filter until stable, optionally sample users.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from grec.base.errors import GrecError
from grec.prepare.log import RawLog


@dataclass
class Sequences:
    """Time-ordered item sequences, one per user, as source string ids."""

    users: list[str]
    sequences: list[list[str]]
    times: list[list[float]]
    removed: Counter
    kcore_rounds: int


def kcore(users: np.ndarray, items: np.ndarray, min_user: int, min_item: int) -> tuple[np.ndarray, int]:
    """Mask of interactions that survive iterative k-core filtering, and the rounds that removed some.

    A round drops users with fewer than ``min_user`` and items with fewer than ``min_item``
    surviving interactions; rounds repeat until nothing changes.
    """
    keep = np.ones(len(users), dtype=bool)
    rounds = 0
    while True:
        user_count = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
        item_count = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
        ok = keep & (user_count[users] >= min_user) & (item_count[items] >= min_item)
        if ok.sum() == keep.sum():
            return keep, rounds
        keep = ok
        rounds += 1


def natural_key(text: str) -> tuple:
    """Sort numeric ids as numbers ("2" before "10"), others as text, numbers first."""
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def build_sequences(
    log: RawLog, min_user: int, min_item: int, dedup: bool = True, sample_users: int = -1, seed: int = 0
) -> Sequences:
    """Order, clean and filter ``log`` into one sequence per user (users in natural id order)."""
    removed: Counter = Counter(log.dropped)
    n = len(log.users)
    position = np.arange(n)
    order = np.lexsort((position, log.times, log.users))
    users, items, times = log.users[order], log.items[order], log.times[order]

    known = np.array([item_id in log.catalog for item_id in log.item_ids], dtype=bool)
    has_meta = known[items] if n else np.zeros(0, dtype=bool)
    removed["interactions_without_item_metadata"] += int((~has_meta).sum())
    users, items, times = users[has_meta], items[has_meta], times[has_meta]

    if dedup and len(users):
        pair = users * (int(items.max()) + 1) + items
        _, first = np.unique(pair, return_index=True)
        keep = np.zeros(len(pair), dtype=bool)
        keep[first] = True
        removed["duplicate_interactions"] += int((~keep).sum())
        users, items, times = users[keep], items[keep], times[keep]

    before_users, before_items = len(np.unique(users)), len(np.unique(items))
    keep, rounds = kcore(users, items, min_user, min_item) if len(users) else (np.zeros(0, dtype=bool), 0)
    removed["kcore_interactions"] += int((~keep).sum())
    users, items, times = users[keep], items[keep], times[keep]
    removed["kcore_users"] += before_users - len(np.unique(users))
    removed["kcore_items"] += before_items - len(np.unique(items))
    if not len(users):
        raise GrecError(
            f"no interactions left after filtering ({n} read; {dict(removed)} removed); "
            f"lower --min_user_inter / --min_item_inter or check that item ids match between the files"
        )

    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    bounds = list(zip(starts.tolist(), np.r_[starts[1:], len(users)].tolist()))
    if 0 < sample_users < len(bounds):
        chosen = np.sort(np.random.default_rng(seed).choice(len(bounds), size=sample_users, replace=False))
        removed["sampled_out_users"] += len(bounds) - sample_users
        bounds = [bounds[k] for k in chosen]

    item_ids = np.array(log.item_ids, dtype=object)
    rows = sorted(((log.user_ids[users[a]], a, b) for a, b in bounds), key=lambda r: natural_key(r[0]))
    return Sequences(
        users=[user for user, _, _ in rows],
        sequences=[item_ids[items[a:b]].tolist() for _, a, b in rows],
        times=[times[a:b].tolist() for _, a, b in rows],
        removed=removed,
        kcore_rounds=rounds,
    )


def leave_one_out(
    seqs: Sequences, max_history: int, train_windows: str = "all"
) -> tuple[Iterator[dict], Iterator[dict], Iterator[dict]]:
    """Train, valid and test examples ``{"user_id", "history", "target"}``.

    For a sequence s_1..s_n: test is (s_1..s_{n-1} -> s_n), valid is (s_1..s_{n-2} -> s_{n-1}),
    and train holds (s_1..s_{t-1} -> s_t) for t = 2..n-2 ("all") or only t = n-2 ("last").
    Histories keep the ``max_history`` most recent items, oldest first.
    """

    def example(user: str, seq: list[str], t: int) -> dict:
        return {"user_id": user, "history": seq[max(0, t - max_history) : t], "target": seq[t]}

    def train() -> Iterator[dict]:
        for user, seq in zip(seqs.users, seqs.sequences):
            first = max(1, len(seq) - 3) if train_windows == "last" else 1
            for t in range(first, len(seq) - 2):
                yield example(user, seq, t)

    valid = (example(u, s, len(s) - 2) for u, s in zip(seqs.users, seqs.sequences))
    test = (example(u, s, len(s) - 1) for u, s in zip(seqs.users, seqs.sequences))
    return train(), valid, test
