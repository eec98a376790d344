"""k-means for item quantisation on faiss, with grec's own capacity-capped (balanced) assignment.

faiss runs the Lloyd iterations (seeded, on at most ``max_points_per_centroid * k`` rows) from a
greedy k-means++ start on a small seeded sample (faiss's own random start can put two centroids
in one of a few well-separated groups), and assigns rows to their nearest centroid without an
n x k distance matrix; the same seed gives the same centroids on the same machine. faiss-gpu is
used when it is installed and sees a GPU. ``balanced`` fitting continues from faiss's centroids
with Lloyd steps whose assignment caps every cluster at ceil(n / k) rows (``balanced_assign``),
so every code is used about equally. Speed against faiss alone: docs/benchmarks.md, "index".
"""

from __future__ import annotations

import math

import numpy as np

CHUNK = 65536
INIT_POINTS_PER_CENTROID = 8  # k-means++ seeding sample: its cost grows with sample x k
BALANCED_REFINE = 10  # capacity-capped Lloyd steps after faiss: error as the old 25 from k-means++, half the time


def faiss_gpus() -> int:
    """GPUs faiss can use (0 with faiss-cpu)."""
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def mean_sq_norm(x: np.ndarray) -> float:
    """Mean squared row norm, without an n x dim temporary (einsum row dot products)."""
    return float(np.einsum("ij,ij->i", x, x).mean()) if len(x) else 0.0


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
    """Index of and squared distance to the nearest centroid of each row (faiss exact search)."""
    import faiss

    dists, labels = faiss.knn(
        np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(centroids, dtype=np.float32), 1
    )
    return labels[:, 0].astype(np.int64), np.maximum(dists[:, 0], 0)


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


def faiss_kmeans(x: np.ndarray, k: int, seed: int, iters: int, max_points_per_centroid: int) -> np.ndarray:
    """faiss k-means from k-means++ centroids of a seeded sample of ``INIT_POINTS_PER_CENTROID * k`` rows
    (faiss's own random start can put two centroids in one of a few well-separated groups)."""
    import faiss

    if len(x) < k:  # faiss needs k training points; repeats become duplicate centroids, split by later levels
        x = np.resize(x, (k, x.shape[1]))
    rng = np.random.default_rng(seed)
    sample = (
        x
        if len(x) <= INIT_POINTS_PER_CENTROID * k
        else x[rng.choice(len(x), INIT_POINTS_PER_CENTROID * k, replace=False)]
    )
    km = faiss.Kmeans(
        x.shape[1],
        k,
        niter=iters,
        seed=seed,
        max_points_per_centroid=max_points_per_centroid,
        min_points_per_centroid=1,
        gpu=faiss_gpus() > 0,
    )
    km.train(x, init_centroids=kmeans_plus_plus(sample, k, rng))
    return np.array(km.centroids, dtype=np.float32)


def kmeans(
    x: np.ndarray,
    k: int,
    seed: int = 0,
    iters: int = 25,
    balanced: bool = False,
    max_points_per_centroid: int = 256,
) -> np.ndarray:
    """Fit ``k`` centroids to the rows of ``x``; returns ``k x dim`` float32 centroids.

    ``balanced`` refines faiss's centroids with at most ``BALANCED_REFINE`` capacity-capped Lloyd iterations on
    a seeded sample of the same size; a cluster left empty is re-seeded with the row farthest from
    its centroid, so every code stays in use.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    centroids = faiss_kmeans(x, k, seed, iters, max_points_per_centroid)
    if not balanced:
        return centroids
    rng = np.random.default_rng(seed)
    if len(x) > max_points_per_centroid * k:
        x = x[np.sort(rng.choice(len(x), size=max_points_per_centroid * k, replace=False))]
    labels = None
    for _ in range(min(iters, BALANCED_REFINE)):
        new_labels = balanced_assign(x, centroids)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=k)
        filled = counts > 0
        centroids[filled] = cluster_means(x, labels, counts)
        empty = np.flatnonzero(~filled)
        if len(empty):
            far = np.argsort(-((x - centroids[labels]) ** 2).sum(1))[: len(empty)]
            centroids[empty[: len(far)]] = x[far]
    return centroids
