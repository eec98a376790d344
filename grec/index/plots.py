"""``index.png``: a SID assignment at a glance, beside the figures of ``report.json``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grec.base.io import atomic_open


def plot_index(codes: np.ndarray, report: dict, path: str | Path) -> None:
    """Three panels: codes used per level, how many items each code holds per level, and the items
    that share a semantic ID before and after collisions are resolved.

    Drawn on a bare ``Figure`` with a fixed layout: no pyplot import, no tight-layout pass (together
    more than a second, a tenth of indexing 100k items).
    """
    from matplotlib.figure import Figure

    levels = report["per_level"]
    names = [row["level"] for row in levels]
    fig = Figure(figsize=(13, 3.6))
    usage, spread, collide = fig.subplots(1, 3)
    used = [row["utilisation"] for row in levels]
    usage.bar(names, used, color="#4c72b0")
    for k, row in enumerate(levels):
        usage.text(k, used[k], f"{row['codes_used']}/{row['codebook_size']}", ha="center", va="bottom", fontsize=8)
    usage.set(ylim=(0, 1.15), ylabel="share of the codebook used", title="code usage per level")
    for level, name in enumerate(names):
        counts = np.bincount(codes[:, level])
        counts = np.sort(counts[counts > 0])[::-1]
        spread.plot(np.arange(1, len(counts) + 1), counts, label=name)
    spread.set(xscale="log", yscale="log", xlabel="code rank", ylabel="items on the code", title="items per code")
    spread.legend(fontsize=8)
    stages = ("before", "after")
    shared = [report[f"collisions_{s}"]["items_in_collisions"] for s in stages]
    collide.bar(stages, shared, color=["#c44e52", "#55a868"])
    for k, value in enumerate(shared):
        collide.text(k, value, f"{value:,}", ha="center", va="bottom", fontsize=9)
    collide.set(
        ylim=(0, max(shared) * 1.15 + 1), ylabel="items sharing a semantic ID", title="collisions before / after"
    )
    fig.suptitle(f"{report['method']}: {report['items']:,} items, SIDs of {report['sid_length']} codes")
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.15, top=0.82, wspace=0.3)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
