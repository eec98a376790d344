"""Grounding fused with popularity and collaborative scores (BIGRec's grounding, D3-style fusion).

A freely generated title's embedding ranks items by L2 distance; the fusion multiplies each
distance by ``(1 + score)^-weight`` for each ingredient (popularity per item, collaborative score
per user and item). Weights run from 0 (the ingredient ignored) to inf (that ingredient alone,
the distance breaking its ties), so a grid over them spans every ingredient alone and their mixes.
"""

from __future__ import annotations

import numpy as np

from grec.decoding.neighbours import NearestItems


def distances(generated: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """L2 distance of every generated embedding (rows) to every item (columns)."""
    squared = (generated**2).sum(1, keepdims=True) - 2 * generated @ item_vectors.T + (item_vectors**2).sum(1)[None, :]
    return np.sqrt(np.maximum(squared, 0))


def fused_order(dist: np.ndarray, terms: list[tuple[float, np.ndarray | None]], top: int) -> np.ndarray:
    """Each row's ``top`` items by ``dist x prod (1 + score)^-weight`` over ``terms`` (weight, score).

    A score is per item (one row for every user) or per user and item. An infinite weight makes
    its score decide alone (the distance and finite terms only break its ties).
    """
    secondary = np.log(dist + 1e-12)
    primary = np.zeros_like(dist)
    for weight, score in terms:
        if score is None or not weight:
            continue
        score = np.broadcast_to(score, dist.shape)
        if np.isinf(weight):
            primary = primary + score
        else:
            secondary = secondary - weight * np.log1p(score)
    order = np.argsort(secondary, axis=1, kind="stable")
    if primary.any():
        by_primary = np.argsort(-np.take_along_axis(primary, order, 1), axis=1, kind="stable")
        order = np.take_along_axis(order, by_primary, 1)
    return order[:, :top]


def ground(
    generated: np.ndarray,
    item_vectors: np.ndarray,
    ci: np.ndarray | None = None,
    gamma: float = 0.0,
    top: int = 20,
    nearest: NearestItems | None = None,
    cf: np.ndarray | None = None,
    delta: float = 0.0,
) -> np.ndarray:
    """Rows of the ``top`` items nearest each generated embedding (L2), scaled by ``(1 + ci)^-gamma``
    (``ci`` per item: popularity) and ``(1 + cf)^-delta`` (``cf`` per user and item: collaborative).

    An infinite weight is the fusion's far end: that score alone decides, the distance only breaks
    ties (``gamma = inf`` with popularity is the most-popular ranking). Without a fusion the
    ``nearest`` faiss index (built here if not given) answers; a fusion re-weights every distance,
    so it is computed against the whole catalog.
    """
    fused = (ci is not None and gamma) or (cf is not None and delta)
    if not fused:
        nearest = nearest or NearestItems(item_vectors)
        return nearest.search(generated, top)[1]
    return fused_order(distances(generated, item_vectors), [(gamma, ci), (delta, cf)], top)


def fusion_grid(gammas: list[float], deltas: list[float] | None) -> list[tuple[float, float]]:
    """(gamma, delta) pairs to try: every pair but both infinite (two scores cannot both decide alone)."""
    return [(g, d) for g in gammas for d in (deltas or [0.0]) if not (np.isinf(g) and np.isinf(d))]


def tune_fusion(
    generated: np.ndarray,
    item_vectors: np.ndarray,
    ci: np.ndarray | None,
    item_ids: list[str],
    targets: list[str],
    grid: list[tuple[float, float]],
    skipped: list[set[str]] | None = None,
    cf: np.ndarray | None = None,
) -> dict[tuple[float, float], float]:
    """NDCG@10 of grounding fused with ``ci`` (weight gamma) and ``cf`` (weight delta) for each
    (gamma, delta) in ``grid``, items in ``skipped[k]`` left out as the test ranking leaves them out.
    With (0, 0) (grounding alone), (inf, 0) (``ci`` alone) and (0, inf) (``cf`` alone) in the grid,
    the best pair is never worse than any one ingredient on these records."""
    from grec.base.metrics import RankingMetrics

    top = 10 + max((len(s) for s in skipped or []), default=0)
    dist = distances(generated, item_vectors)
    results = {}
    for gamma, delta in grid:
        metrics = RankingMetrics((10,))
        for k, row in enumerate(fused_order(dist, [(gamma, ci), (delta, cf)], top)):
            items = [item_ids[r] for r in row if skipped is None or item_ids[r] not in skipped[k]]
            metrics.add(items[:10], targets[k])
        results[(gamma, delta)] = metrics.result()["NDCG@10"]
    return results
