"""From a raw log to per-user, time-ordered item sequences and leave-one-out examples.

All steps are array operations on the integer codes: order by (user, time, file position),
drop interactions with unknown items, keep a user's first interaction with an item, k-core
filter until stable, optionally sample users.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from grec.base.errors import GrecError
from grec.prepare.log import RawLog


@dataclass
class Sequences:
    """Time-ordered item sequences, one per user, as source string ids; ``times`` the matching
    timestamps, one float64 array per user (views into one array: no Python float per event)."""

    users: list[str]
    sequences: list[list[str]]
    times: list[np.ndarray]
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
    log: RawLog,
    min_user: int,
    min_item: int,
    dedup: bool = True,
    sample_users: int = -1,
    seed: int = 0,
    start: float | None = None,
    end: float | None = None,
    min_rating: float | None = None,
) -> Sequences:
    """Order, clean and filter ``log`` into one sequence per user (users in natural id order).

    First of all, interactions outside ``[start, end)`` (unix seconds or the source's unit) and,
    with ``min_rating``, those rated lower or not rated are dropped and counted.
    """
    removed: Counter = Counter(log.dropped)
    n = len(log.users)
    position = np.arange(n)
    order = np.lexsort((position, log.times, log.users))
    users, items, times = log.users[order], log.items[order], log.times[order]
    keep = np.ones(n, dtype=bool)
    if start is not None or end is not None:
        inside = (times >= (-np.inf if start is None else start)) & (times < (np.inf if end is None else end))
        removed["outside_time_window"] += int((~inside).sum())
        keep &= inside
    if min_rating is not None:
        ratings = log.ratings[order] if log.ratings is not None else np.full(n, np.nan)
        if n and np.isnan(ratings).all():
            raise GrecError("--min_rating: this source has no ratings; leave --min_rating out (or name --rating_col)")
        rated = ratings >= min_rating  # NaN (unrated) compares False
        removed["below_min_rating"] += int((keep & ~rated).sum())
        keep &= rated
    users, items, times = users[keep], items[keep], times[keep]

    known = np.array([item_id in log.catalog for item_id in log.item_ids], dtype=bool)
    has_meta = known[items] if len(items) else np.zeros(0, dtype=bool)
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
        times=[times[a:b] for _, a, b in rows],
        removed=removed,
        kcore_rounds=rounds,
    )
