"""``stats.png``: what a prepared dataset looks like, for people who would rather look than read."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from grec.base.io import atomic_open


def plot_stats(sequences: list[list[str]], path: str | Path, title: str) -> None:
    """Two panels: the distribution of user sequence lengths and the item popularity curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = np.array([len(s) for s in sequences])
    popularity = np.array(sorted(Counter(i for s in sequences for i in s).values(), reverse=True))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.hist(lengths, bins=min(50, max(5, len(set(lengths.tolist())))), color="#4c72b0")
    left.axvline(np.median(lengths), color="#c44e52", linestyle="--", label=f"median {np.median(lengths):g}")
    left.set(xlabel="interactions per user", ylabel="users", title="sequence lengths")
    left.legend()
    right.loglog(np.arange(1, len(popularity) + 1), popularity, color="#55a868")
    share = popularity[: max(1, len(popularity) // 5)].sum() / popularity.sum()
    right.set(xlabel="item rank", ylabel="interactions", title=f"item popularity (top 20% items: {share:.0%})")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
