"""The simple item indexings OpenP5 compares against: random codes and sequential numbering.

Both read no item text: ``fit(x)`` and ``encode(x)`` use only the number of rows of ``x`` (one per
item, in catalog order; zero columns when no embeddings were loaded) and return no residuals.
"""

from __future__ import annotations

import numpy as np

from grec.base.errors import GrecError
from grec.base.registry import QUANTIZERS


def random_codes(n: int, levels: int, codebook_size: int, seed: int) -> np.ndarray:
    """Independent uniform codes per level (collisions are resolved afterwards)."""
    return np.random.default_rng(seed).integers(0, codebook_size, size=(n, levels), dtype=np.int64)


def sequential_codes(start: int, n: int, levels: int, codebook_size: int) -> np.ndarray:
    """Items ``start .. start+n-1`` written as ``levels`` base-``codebook_size`` digits (unique)."""
    if start + n > codebook_size**levels:
        raise GrecError(
            f"{start + n} items do not fit in {codebook_size}^{levels} = {codebook_size**levels} sequential IDs; "
            f"raise --levels or --codebook_size"
        )
    numbers = np.arange(start, start + n, dtype=np.int64)
    powers = codebook_size ** np.arange(levels - 1, -1, -1, dtype=np.int64)
    return (numbers[:, None] // powers[None, :]) % codebook_size


class _TextFree:
    """Shared by the two: nothing to fit or save, no quality to report."""

    uses_embeddings = False

    def __init__(self, levels: int, codebook_size: int, seed: int = 0):
        self.levels, self.codebook_size, self.seed = levels, codebook_size, seed

    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.levels, cfg.codebook_size, cfg.seed)

    def fit(self, x: np.ndarray) -> tuple[np.ndarray, None]:
        return self.encode(x)

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        pass

    def quality(self, x: np.ndarray, residual: None) -> dict[str, float]:
        return {}


@QUANTIZERS.register("random")
class RandomCodes(_TextFree):
    """Uniform random codes: item k gets row k of one seeded draw, so earlier items keep theirs as the catalog grows."""

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, None]:
        return random_codes(len(x), self.levels, self.codebook_size, self.seed), None


@QUANTIZERS.register("sequential")
class SequentialCodes(_TextFree):
    """Item k numbered k in base ``codebook_size``."""

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, None]:
        return sequential_codes(0, len(x), self.levels, self.codebook_size), None
