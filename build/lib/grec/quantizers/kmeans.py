"""k-means for item quantisation: k-means++ init, Lloyd iterations on a sample, chunked assignment.

Fitting uses at most ``max_points_per_centroid * k`` points (faiss does the same: more points
barely move the centroids), then every point is assigned in chunks so 1M x 384 float32 needs no
n x k distance matrix. ``balanced`` assignment caps every cluster at ceil(n / k) points.
"""

from __future__ import annotations

import math

import numpy as np

CHUNK = 65536


def sq_distances(x: np.ndarray, centroids: np.ndarray, c_norms: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances, ``len(x) x len(centroids)``."""
    c_norms = (centroids * centroids).sum(1) if c_norms is None else c_norms
    d = x @ centroids.T
    d *= -2
    d += (x * x).sum(1, keepdims=True)
    d += c_norms
    np.maximum(d, 0, out=d)
    return d


def nearest(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and squared distance to the nearest centroid of each row, computed in chunks."""
    c_norms = (centroids * centroids).sum(1)
    labels = np.empty(len(x), dtype=np.int64)
    dists = np.empty(len(x), dtype=np.float32)
    for start in range(0, len(x), CHUNK):
        d = sq_distances(x[start : start + CHUNK], centroids, c_norms)
        labels[start : start + CHUNK] = d.argmin(1)
        dists[start : start + CHUNK] = d[np.arange(len(d)), labels[start : start + CHUNK]]
    return labels, dists


def balanced_assign(x: np.ndarray, centroids: np.ndarray, capacity: int | None = None) -> np.ndarray:
    """Assign each row to a centroid, at most ``capacity`` rows per centroid (default ceil(n/k)).

    Rounds: every unassigned row proposes its nearest centroid that still has room; each
    centroid accepts its closest proposers up to its remaining room; full centroids are closed.
    """
    n, k = len(x), len(centroids)
    capacity = math.ceil(n / k) if capacity is None else capacity
    if capacity * k < n:
        raise ValueError(f"capacity {capacity} x {k} clusters < {n} points")
    labels = np.full(n, -1, dtype=np.int64)
    room = np.full(k, capacity, dtype=np.int64)
    c_norms = (centroids * centroids).sum(1)
    pending = np.arange(n)
    while len(pending):
        closed = room <= 0
        proposal = np.empty(len(pending), dtype=np.int64)
        dist = np.empty(len(pending), dtype=np.float32)
        for start in range(0, len(pending), CHUNK):
            d = sq_distances(x[pending[start : start + CHUNK]], centroids, c_norms)
            d[:, closed] = np.inf
            best = d.argmin(1)
            proposal[start : start + CHUNK] = best
            dist[start : start + CHUNK] = d[np.arange(len(d)), best]
        order = np.lexsort((pending, dist, proposal))
        ranked = proposal[order]
        group_start = np.searchsorted(ranked, ranked, side="left")
        accepted = order[(np.arange(len(order)) - group_start) < room[ranked]]
        labels[pending[accepted]] = proposal[accepted]
        room -= np.bincount(proposal[accepted], minlength=k)
        pending = np.setdiff1d(pending, pending[accepted], assume_unique=True)
    return labels


def cluster_means(x: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean of the rows of each non-empty cluster, in cluster order (sort + reduceat, no add.at)."""
    order = np.argsort(labels, kind="stable")
    starts = np.r_[0, np.cumsum(counts)[:-1]][counts > 0]
    return np.add.reduceat(x[order], starts, axis=0) / counts[counts > 0, None]


def kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding: each step draws a few candidates with probability proportional to
    D(x)^2 and keeps the one that lowers the total squared distance most (as scikit-learn does)."""
    centroids = np.empty((k, x.shape[1]), dtype=np.float32)
    centroids[0] = x[rng.integers(len(x))]
    x_norms = (x * x).sum(1)
    trials = 2 + int(np.log(k))

    def to(c: np.ndarray) -> np.ndarray:
        return np.maximum(x_norms[:, None] - 2 * (x @ c.T) + (c * c).sum(1)[None, :], 0)

    closest = to(centroids[:1])[:, 0]
    for j in range(1, k):
        total = float(closest.sum())
        if total <= 0:  # fewer distinct points than k: repeat points, later levels split them
            centroids[j:] = x[rng.integers(len(x), size=k - j)]
            break
        cumulative = np.cumsum(closest, dtype=np.float64)
        picks = np.minimum(np.searchsorted(cumulative, rng.random(trials) * total), len(x) - 1)
        candidates = np.minimum(closest[:, None], to(x[picks]))
        best = int(candidates.sum(0).argmin())
        centroids[j] = x[picks[best]]
        closest = candidates[:, best].copy()
    return centroids


def kmeans(
    x: np.ndarray,
    k: int,
    seed: int = 0,
    iters: int = 25,
    balanced: bool = False,
    max_points_per_centroid: int = 256,
) -> np.ndarray:
    """Fit ``k`` centroids to the rows of ``x`` (float32); returns ``k x dim`` centroids.

    Empty clusters are re-seeded with the points farthest from their centroid, so every code
    stays in use. ``balanced`` fits with capacity-capped assignment.
    """
    rng = np.random.default_rng(seed)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) > max_points_per_centroid * k:
        x = x[np.sort(rng.choice(len(x), size=max_points_per_centroid * k, replace=False))]
    centroids = kmeans_plus_plus(x, k, rng)
    labels = None
    for _ in range(iters):
        if balanced:
            new_labels = balanced_assign(x, centroids)
            dists = ((x - centroids[new_labels]) ** 2).sum(1)
        else:
            new_labels, dists = nearest(x, centroids)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=k)
        filled = counts > 0
        centroids[filled] = cluster_means(x, labels, counts)
        empty = np.flatnonzero(~filled)
        if len(empty):
            far = np.argsort(-dists)[: len(empty)]
            centroids[empty[: len(far)]] = x[far]
    return centroids
