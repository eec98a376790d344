"""Negatives for preference pairs: the starting model's own top items (hard), popular items, any item.

No negative is the chosen item or any item the user has in the training or validation records
(their history, and the items they reach earlier or later): pushing a user's real items down would
teach the model against the data. Test records are never read here.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from grec.base.progress import progress


def user_items(*record_lists: list[dict]) -> dict[str, set[str]]:
    """Every item each user has in the given records (histories and targets)."""
    known: dict[str, set[str]] = {}
    for records in record_lists:
        for record in records:
            if record.get("user_id") is None:
                continue
            items = known.setdefault(str(record.get("user_id")), set())
            items.update(map(str, record.get("history", [])))
            items.add(str(record["target"]))
    return known


def training_popularity(records: list[dict]) -> Counter:
    """Interactions per item in the training records (their targets: each training interaction once)."""
    return Counter(str(r["target"]) for r in records)


class NegativeSampler:
    """Draws each record's negatives from the sources in ``counts`` (``{"hard": 2, "popular": 1}``).

    ``ranker`` (a ``grec.decoding.Ranker`` over the starting model) mines hard negatives; ``catalog``
    is every item; sampling is seeded and the same on every process.
    """

    def __init__(self, counts: dict[str, int], catalog: list[str], popularity: Counter, known: dict, ranker, seed: int):
        self.counts, self.catalog, self.known, self.ranker = counts, list(catalog), known, ranker
        self.rng = np.random.default_rng(seed)
        weights = np.array([popularity.get(item, 0) for item in self.catalog], dtype=np.float64)
        self.popular_p = weights / weights.sum() if weights.sum() > 0 else None

    def _blocked(self, record: dict) -> set[str]:
        """The record's own items, and every item its user has (records without a user id: only their own)."""
        user = record.get("user_id")
        seen = self.known.get(str(user), ()) if user is not None else ()
        return {str(record["target"]), *map(str, record.get("history", [])), *seen}

    def _sample(self, blocked: set[str], taken: list[str], n: int, p) -> list[str]:
        if len(blocked) + len(taken) + n > len(self.catalog):
            raise ValueError("the catalog has too few items outside the user's own for the negatives asked")
        drawn: list[str] = []
        while len(drawn) < n:
            for k in self.rng.choice(len(self.catalog), size=2 * n, p=p):
                item = self.catalog[k]
                if item not in blocked and item not in taken and item not in drawn and len(drawn) < n:
                    drawn.append(item)
        return drawn

    def draw(self, records: list[dict], batch_size: int = 32) -> list[list[str]]:
        """Negatives per record: hard ones first (the starting model's order), then popular, then uniform."""
        blocked = [self._blocked(r) for r in records]
        out: list[list[str]] = [[] for _ in records]
        if self.counts.get("hard"):
            n = self.counts["hard"]
            for start in progress(range(0, len(records), batch_size), "align: mining hard negatives", unit="batch"):
                batch = records[start : start + batch_size]
                ranked = self.ranker.rank(batch, False, [sorted(b) for b in blocked[start : start + batch_size]])
                for k, (items, _) in enumerate(ranked):
                    out[start + k] = items[:n]
                    if len(out[start + k]) < n:  # a beam narrower than the count: fill uniformly
                        out[start + k] += self._sample(
                            blocked[start + k], out[start + k], n - len(out[start + k]), None
                        )
        for source, p in (("popular", self.popular_p), ("uniform", None)):
            if self.counts.get(source):
                for k in range(len(records)):
                    out[k] += self._sample(blocked[k], out[k], self.counts[source], p)
        return out


def collab_similarity(records: list[dict]):
    """``similarity(a, b)`` in [0, 1]: the cosine of two items' user sets in the training records (each
    user's history and targets, ``grec.models.itemknn``), the score GRPO's ``collab`` reward gives near misses."""
    from grec.models.itemknn import ItemKNN

    users = user_items(records)
    items = sorted({i for seen in users.values() for i in seen})
    knn = ItemKNN.fit(users, items, neighbours=len(items))

    def similarity(a: str, b: str) -> float:
        i, j = knn.column.get(a), knn.column.get(b)
        return 0.0 if i is None or j is None else float(knn.similarity[i, j])

    return similarity
