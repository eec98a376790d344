"""Ranking metrics with one target per record, exactly as docs/formats.md states them.

Predictions are de-duplicated keeping the first occurrence; r is the 0-based position of the
target; HR@K = 1[r < K]; NDCG@K = 1/log2(r + 2) if r < K else 0; MRR@K = 1/(r + 1) if r < K else 0.
A record without predictions or without the target is a miss. Invalid ids keep their position.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

TOPK = (1, 3, 5, 10, 20, 50)


def dedup(predictions: list[str]) -> list[str]:
    """Predictions with repeats removed, first occurrence kept, order preserved."""
    return list(dict.fromkeys(predictions))


def target_rank(predictions: list[str], target: str) -> int | None:
    """0-based position of ``target`` in the de-duplicated predictions, or None."""
    try:
        return dedup(predictions).index(target)
    except ValueError:
        return None


@dataclass
class RankingMetrics:
    """Accumulates HR/NDCG/MRR@K, invalid and duplicate rates and coverage@10 over records."""

    topk: tuple[int, ...] = TOPK
    catalog: set[str] | None = None
    records: int = 0
    sums: Counter = field(default_factory=Counter)
    predicted: int = 0
    invalid: int = 0
    duplicates: int = 0
    covered: set[str] = field(default_factory=set)
    longest: int = 0

    def add(self, predictions: list[str], target: str) -> int | None:
        """Count one record; return the target's 0-based rank among the unique predictions, or None."""
        self.records += 1
        unique = dedup(predictions)
        self.predicted += len(predictions)
        self.duplicates += len(predictions) - len(unique)
        if self.catalog is not None:
            self.invalid += sum(1 for p in predictions if p not in self.catalog)
        self.covered.update(unique[:10])
        self.longest = max(self.longest, len(unique))  # the run's list length
        rank = unique.index(target) if target in unique else None
        for k in self.topk:
            if rank is not None and rank < k:
                self.sums[f"HR@{k}"] += 1
                self.sums[f"NDCG@{k}"] += 1 / math.log2(rank + 2)
                self.sums[f"MRR@{k}"] += 1 / (rank + 1)
        return rank

    def result(self) -> dict[str, float]:
        n = max(self.records, 1)
        out: dict[str, float] = {"records": self.records}
        for name in ("HR", "NDCG", "MRR"):
            for k in self.topk:
                out[f"{name}@{k}"] = self.sums[f"{name}@{k}"] / n
        out["invalid_rate"] = self.invalid / self.predicted if self.predicted and self.catalog is not None else 0.0
        out["duplicate_rate"] = self.duplicates / self.predicted if self.predicted else 0.0
        if self.catalog:
            out["coverage@10"] = len(self.covered & self.catalog) / len(self.catalog)
        return out
