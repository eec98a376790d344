"""Paired significance: is one run's metric really different from a baseline's on the same records?

Two runs ranked on the same test records give, per record, a value of each metric (HR@K, NDCG@K,
MRR@K, from the target's rank). Pairing by record removes the spread between users that an
unpaired comparison of two means has to carry. For each metric the mean per-record difference
(run - baseline) gets a confidence interval and a two-sided p-value:

- ``ttest`` (default): the paired t-test on the per-record differences (Student's t with n - 1
  degrees of freedom). With thousands of records the mean difference is close to normal even
  though each difference takes few values.
- ``bootstrap``: ``resamples`` resamplings of the records with replacement (seeded); the interval
  is the percentile interval of the resampled mean differences, the p-value twice the share of
  them on the far side of zero.

A difference is marked significant when p < ``alpha``. Records are matched by (user, target,
occurrence); only records both runs ranked are compared.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np


def record_keys(records: list[tuple[str, str]]) -> list[str]:
    """One key per (user, target) record; a repeat of the same pair gets ``#2``, ``#3``..."""
    seen: Counter = Counter()
    keys = []
    for user, target in records:
        seen[user, target] += 1
        keys.append(f"{user}\t{target}" + (f"#{seen[user, target]}" if seen[user, target] > 1 else ""))
    return keys


def metric_values(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Per-record values of ``HR@K``, ``NDCG@K`` or ``MRR@K`` from 0-based target ranks (-1: not ranked)."""
    name, k = metric.split("@")
    hit = (ranks >= 0) & (ranks < int(k))
    if name == "HR":
        return hit.astype(np.float64)
    safe = np.maximum(ranks, 0)
    value = 1.0 / np.log2(safe + 2.0) if name == "NDCG" else 1.0 / (safe + 1.0)
    return np.where(hit, value, 0.0)


def paired_test(
    baseline: np.ndarray,
    run: np.ndarray,
    method: str = "ttest",
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict:
    """``{"records", "difference", "ci", "p", "significant"}`` of the mean of ``run - baseline``."""
    from scipy import stats

    d = np.asarray(run, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    n, mean = len(d), float(d.mean()) if len(d) else 0.0
    if n < 2 or not d.any() or float(d.std()) == 0.0:
        p = 1.0 if mean == 0.0 else 0.0  # no spread: the same shift on every record (or none)
        ci = [mean, mean]
    elif method == "ttest":
        se = float(d.std(ddof=1)) / math.sqrt(n)
        p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
        half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * se
        ci = [mean - half, mean + half]
    else:
        rng = np.random.default_rng(seed)
        means = np.concatenate(
            [d[rng.integers(0, n, size=(min(1000, resamples - s), n))].mean(1) for s in range(0, resamples, 1000)]
        )
        ci = [float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))]
        p = float(min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean())))
    return {"records": n, "difference": mean, "ci": ci, "p": p, "significant": p < alpha}


def compare(
    baseline: list[dict[str, int]],
    run: list[dict[str, int]],
    metrics: list[str],
    method: str = "ttest",
    alpha: float = 0.05,
) -> dict | None:
    """Paired tests of ``run`` against ``baseline``, each a list of result files' ranks (record key ->
    0-based rank, -1 when missed): several files (seeds of one setting) are averaged record by record
    first. Only records every file ranked are compared; None when there are none."""
    files = [*baseline, *run]
    shared = [key for key in files[0] if all(key in ranks for ranks in files[1:])]
    if not shared:
        return None

    def mean_values(side: list[dict[str, int]], metric: str) -> np.ndarray:
        return np.mean([metric_values(np.array([r[k] for k in shared], dtype=np.int64), metric) for r in side], 0)

    return {m: paired_test(mean_values(baseline, m), mean_values(run, m), method, alpha) for m in metrics}
