"""Which interactions are trained on, validated and tested: leave-one-out or a global temporal cut.

Both protocols produce a :class:`Split`: per split name, the (user, position) pairs of the
interactions that are its targets; a record's history is always every earlier interaction of that
user (the ``max_history`` most recent), whichever split those fell in.

- ``leave_one_out`` (SASRec, BIGRec, TIGER, LC-Rec): each user's last interaction is the test
  target, the one before it the validation target, the rest are trained on.
- ``temporal`` (MiniOneRec, D3): every interaction of the log, sorted by time, cut at the ratios'
  quantiles, so no validation or test event is earlier than a training event. The rules:

  - k-core filtering (``build_sequences``) runs before the cut, on the whole log;
  - events sharing the timestamp at a cut all go to the earlier split;
  - events whose item no training event has (the model cannot know it) are dropped from
    validation and test and counted (``unseen="keep"`` keeps them);
  - an event with no earlier event of its user (a user whose first interaction falls after a cut)
    has no history to recommend from: dropped and counted;
  - a user with several validation or test events gets one record per event, so evaluation
    weighs users by their events in those periods.

Each validation and test record carries ``split``: the protocol's name and a fingerprint of the
split's (user, target) pairs, so runs on different splits are never compared (``grec evaluate``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from grec.prepare.sequences import Sequences

NAMES = ("train", "valid", "test")


@dataclass
class Split:
    """Targets of each split as parallel arrays of user indexes and positions in their sequence."""

    protocol: str
    seqs: Sequences
    targets: dict[str, tuple[np.ndarray, np.ndarray]]
    info: dict = field(default_factory=dict)
    _tags: dict[str, str] = field(default_factory=dict, repr=False)

    def tag(self, name: str) -> str:
        """``"<protocol>:<16 hex digits>"``, equal for splits with the same (user, target) pairs
        (hashed once per split name: the files and stats.json ask for it)."""
        if name not in self._tags:
            digest = hashlib.sha256()
            users, positions = self.targets[name]
            for user, t in zip(users.tolist(), positions.tolist()):
                digest.update(f"{self.seqs.users[user]}\t{self.seqs.sequences[user][t]}\n".encode())
            self._tags[name] = f"{self.protocol}:{digest.hexdigest()[:16]}"
        return self._tags[name]

    def records(self, name: str, max_history: int) -> Iterator[dict]:
        """``{"user_id", "history", "target"}`` per target (``split`` too, outside train), in user then time order."""
        tag = None if name == "train" else self.tag(name)
        users, positions = self.targets[name]
        for user, t in zip(users.tolist(), positions.tolist()):
            seq = self.seqs.sequences[user]
            row = {"user_id": self.seqs.users[user], "history": seq[max(0, t - max_history) : t], "target": seq[t]}
            yield row if tag is None else {**row, "split": tag}

    def train_sequences(self) -> Iterator[dict]:
        """The compact train.jsonl: ``{"user_id", "sequence"}`` per user with training targets, the
        sequence ending at the user's last one (``training_windows`` derives the same windows)."""
        users, positions = self.targets["train"]
        last: dict[int, int] = {}
        for user, t in zip(users.tolist(), positions.tolist()):
            last[user] = t
        for user, t in last.items():
            yield {"user_id": self.seqs.users[user], "sequence": self.seqs.sequences[user][: t + 1]}

    def counts(self) -> dict[str, int]:
        return {name: len(self.targets[name][0]) for name in NAMES}


def _targets(user_lists: list[list[int]], position_lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    users = np.fromiter((u for us in user_lists for u in us), dtype=np.int64)
    positions = np.fromiter((t for ts in position_lists for t in ts), dtype=np.int64)
    return users, positions


def leave_one_out(seqs: Sequences, train_windows: str = "all") -> Split:
    """Test: each user's last item; valid: the one before; train: targets 2 .. n-2 (``all``) or n-2 (``last``)."""
    lengths = np.array([len(s) for s in seqs.sequences], dtype=np.int64)
    users = np.arange(len(lengths))
    train_users, train_positions = [], []
    for user, n in enumerate(lengths.tolist()):
        first = max(1, n - 3) if train_windows == "last" else 1
        train_users.append([user] * max(0, n - 2 - first))
        train_positions.append(range(first, n - 2))
    return Split(
        "loo",
        seqs,
        {
            "train": _targets(train_users, train_positions),
            "valid": (users, lengths - 2),
            "test": (users, lengths - 1),
        },
    )


def cut_times(times: np.ndarray, ratios: tuple[float, float, float]) -> tuple[float, float]:
    """Timestamps ending the training and validation periods: the event at each cumulative ratio's
    quantile of the time-sorted log; events at exactly that time belong to the earlier period."""
    ordered = np.sort(times, kind="stable")
    n = len(ordered)
    ends = [int(round(ratios[0] * n)), int(round((ratios[0] + ratios[1]) * n))]
    return tuple(float(ordered[end - 1]) if end > 0 else -np.inf for end in ends)  # type: ignore[return-value]


def temporal(
    seqs: Sequences, ratios: tuple[float, float, float], train_windows: str = "all", unseen: str = "drop"
) -> Split:
    """The global temporal cut (module docstring); ``seqs`` keeps only what the split uses."""
    all_times = np.concatenate(seqs.times) if seqs.times else np.zeros(0)
    train_end, valid_end = cut_times(all_times, ratios)
    period = [np.searchsorted([train_end, valid_end], ts, side="left") for ts in seqs.times]  # 0 train, 1, 2
    trained = {item for seq, p in zip(seqs.sequences, period) for item, q in zip(seq, p.tolist()) if q == 0}
    dropped: Counter = Counter()
    kept_users, kept_seqs, kept_times, kept_periods = [], [], [], []
    for user, seq, ts, p in zip(seqs.users, seqs.sequences, seqs.times, period):
        keep = np.array([q == 0 or unseen == "keep" or item in trained for item, q in zip(seq, p.tolist())], dtype=bool)
        for q in p[~keep].tolist():
            dropped[f"{NAMES[q]}_events_with_items_not_in_train"] += 1
        if keep.any():
            kept_users.append(user)
            kept_seqs.append([s for s, k in zip(seq, keep.tolist()) if k])
            kept_times.append(ts[keep])
            kept_periods.append(p[keep])
    lists: dict[str, tuple[list, list]] = {name: ([], []) for name in NAMES}
    for user, p in enumerate(kept_periods):
        for q, name in enumerate(NAMES):
            positions = np.flatnonzero(p == q)
            if q == 0:
                positions = positions[positions >= 1]
                if train_windows == "last":
                    positions = positions[-1:]
            elif len(positions) and positions[0] == 0:
                dropped[f"{name}_events_without_history"] += 1
                positions = positions[1:]
            lists[name][0].append([user] * len(positions))
            lists[name][1].append(positions.tolist())
    kept = Sequences(kept_users, kept_seqs, kept_times, seqs.removed, seqs.kcore_rounds)
    info = {
        "ratios": list(ratios),
        "train_end": _number(train_end),
        "valid_end": _number(valid_end),
        "unseen_items": unseen,
        "dropped": dict(sorted(dropped.items())),
        "users_with_train_events": int(sum(bool((p == 0).any()) for p in kept_periods)),
    }
    return Split("temporal", kept, {name: _targets(*lists[name]) for name in NAMES}, info)


def _number(value: float) -> int | float | None:
    if not np.isfinite(value):
        return None
    return int(value) if float(value).is_integer() else value
