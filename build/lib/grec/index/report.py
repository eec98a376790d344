"""Quality figures of a semantic-ID assignment, for ``report.json``."""

from __future__ import annotations

import numpy as np

from grec.base.sid import level_name


def level_report(codes: np.ndarray, sizes: list[int]) -> list[dict]:
    """Per level: codes used out of the codebook, utilisation, entropy (bits and normalised)."""
    rows = []
    for level, size in enumerate(sizes):
        counts = np.bincount(codes[:, level], minlength=size)
        p = counts[counts > 0] / counts.sum()
        entropy = max(0.0, float(-(p * np.log2(p)).sum()))
        rows.append(
            {
                "level": level_name(level),
                "codebook_size": int(size),
                "codes_used": int((counts > 0).sum()),
                "utilisation": float((counts > 0).sum() / size),
                "entropy_bits": entropy,
                "entropy_normalised": entropy / float(np.log2(size)) if size > 1 else 1.0,
                "max_items_per_code": int(counts.max()),
            }
        )
    return rows
