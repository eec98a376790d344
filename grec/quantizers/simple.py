"""The simple item indexings OpenP5 compares against: random codes and sequential numbering."""

from __future__ import annotations

import numpy as np

from grec.base.errors import GrecError


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
