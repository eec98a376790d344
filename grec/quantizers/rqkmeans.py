"""Residual k-means: level by level, k-means on what the previous levels left unexplained."""

from __future__ import annotations

import numpy as np

from grec.base.progress import progress
from grec.base.registry import QUANTIZERS
from grec.quantizers.kmeans import CHUNK, balanced_assign, kmeans, mean_sq_norm, nearest, sq_distances


@QUANTIZERS.register("rqkmeans")
class RQKMeans:
    """``levels`` codebooks of ``codebook_size`` centroids, fitted on successive residuals.

    Args:
        levels: number of code levels.
        codebook_size: centroids per level.
        balanced: cap every code at ceil(n / codebook_size) items when fitting and encoding
            (even code use, fewer collisions).
        iters: Lloyd iterations per level.
        seed: seeds k-means++ and the fitting sample.
    """

    def __init__(self, levels: int, codebook_size: int, balanced: bool = False, iters: int = 25, seed: int = 0):
        self.levels, self.codebook_size = levels, codebook_size
        self.balanced, self.iters, self.seed = balanced, iters, seed
        self.codebooks: list[np.ndarray] = []

    uses_embeddings = True

    @classmethod
    def from_config(cls, cfg) -> RQKMeans:
        """From ``grec index``'s settings (``levels``, ``codebook_size``, ``balanced``, ``kmeans_iters``, ``seed``)."""
        return cls(cfg.levels, cfg.codebook_size, cfg.balanced, cfg.kmeans_iters, cfg.seed)

    def quality(self, x: np.ndarray, residual: np.ndarray) -> dict[str, float]:
        """Reconstruction error of the fitted codes, absolute and relative to the vectors' mean squared norm."""
        mse = mean_sq_norm(residual)
        return {"reconstruction_mse": mse, "relative_reconstruction_error": mse / mean_sq_norm(x)}

    def fit(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fit every level; return (codes ``n x levels``, final residuals)."""
        return self._run(x, fit=True)

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes of rows with the fitted codebooks (nearest centroid, no capacity cap)."""
        return self._run(x, fit=False)

    def _run(self, x: np.ndarray, fit: bool) -> tuple[np.ndarray, np.ndarray]:
        residual = np.array(x, dtype=np.float32, copy=True)
        codes = np.empty((len(x), self.levels), dtype=np.int64)
        if fit:
            self.codebooks = []
        for level in progress(range(self.levels), desc="index: rq-kmeans", unit="level", disable=not fit):
            if fit:
                self.codebooks.append(
                    kmeans(residual, self.codebook_size, self.seed + level, self.iters, self.balanced)
                )
            centroids = self.codebooks[level]
            if fit and self.balanced:
                codes[:, level] = balanced_assign(residual, centroids)
            else:
                codes[:, level] = nearest(residual, centroids)[0]
            for start in range(0, len(x), CHUNK):  # in chunks: no second n x dim temporary
                residual[start : start + CHUNK] -= centroids[codes[start : start + CHUNK, level]]
        return codes, residual

    def last_level_costs(self, residual: np.ndarray, last_codes: np.ndarray) -> np.ndarray:
        """Squared distance from each row's last-level input to every last-level code.

        The last level's input is the final residual plus the centroid it was assigned.
        """
        last = self.codebooks[-1]
        return sq_distances(residual + last[last_codes], last)

    def state(self) -> dict[str, np.ndarray]:
        return {f"codebook_{k}": c for k, c in enumerate(self.codebooks)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.codebooks = [np.asarray(state[f"codebook_{k}"], dtype=np.float32) for k in range(self.levels)]
