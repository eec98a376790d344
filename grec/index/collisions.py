"""Make semantic IDs one-to-one, and measure how far they were from it.

``dedup_level`` appends a code that numbers the items sharing the same codes (TIGER).
``dedup_sinkhorn`` moves colliding items to free codes of the last level, chosen by an
entropy-regularised transport plan over their distances to those codes (LC-Rec). When a group
of items sharing all but the last code is larger than the last codebook, that level is widened
with extra codes (and a warning), never left with duplicates.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from grec.base.sid.sidmap import row_groups

logger = logging.getLogger("grec")


def collision_stats(codes: np.ndarray) -> dict:
    """Collision rate (1 - unique IDs / items), items in collisions, and most items on one ID."""
    group = row_groups(codes)
    sizes = np.bincount(group)
    return {
        "collision_rate": float(1 - len(sizes) / len(codes)),
        "items_in_collisions": int(sizes[sizes > 1].sum()),
        "max_items_per_sid": int(sizes.max()),
    }


def dedup_level(codes: np.ndarray, known_extra: np.ndarray | None = None) -> np.ndarray:
    """Append a code numbering the items that share ``codes``: 0, 1, 2... in item order.

    ``known_extra`` (incremental update) holds the extra code of existing items and -1 for new
    ones; existing codes stay, new items take the smallest numbers not yet used in their group.
    """
    group = row_groups(codes)
    if known_extra is None:
        order = np.lexsort((np.arange(len(codes)), group))
        sorted_group = group[order]
        extra = np.empty(len(codes), dtype=np.int64)
        extra[order] = np.arange(len(codes)) - np.searchsorted(sorted_group, sorted_group, side="left")
    else:
        extra = known_extra.astype(np.int64).copy()
        used: dict[int, set[int]] = defaultdict(set)
        for g, e in zip(group[extra >= 0].tolist(), extra[extra >= 0].tolist()):
            used[g].add(e)
        for row in np.flatnonzero(extra < 0).tolist():
            taken, value = used[int(group[row])], 0
            while value in taken:
                value += 1
            taken.add(value)
            extra[row] = value
    return np.concatenate([codes, extra[:, None]], axis=1)


def sinkhorn(cost: np.ndarray, iters: int = 100) -> np.ndarray:
    """Transport plan with unit row sums and equal column sums for a ``rows x cols`` cost."""
    scale = float(cost.std()) or 1.0
    kernel = np.exp(-(cost - cost.min()) / (0.05 * scale))
    kernel = np.maximum(kernel, 1e-30)
    col_target = np.full(cost.shape[1], cost.shape[0] / cost.shape[1])
    u, v = np.ones(cost.shape[0]), np.ones(cost.shape[1])
    for _ in range(iters):
        u = 1.0 / (kernel @ v)
        v = col_target / (kernel.T @ u)
    return u[:, None] * kernel * v[None, :]


def _round_plan(plan: np.ndarray) -> np.ndarray:
    """Greedy one-to-one rounding: largest plan entries first. Needs rows <= cols."""
    choice = np.full(plan.shape[0], -1, dtype=np.int64)
    taken = np.zeros(plan.shape[1], dtype=bool)
    for flat in np.argsort(-plan, axis=None, kind="stable"):
        row, col = divmod(int(flat), plan.shape[1])
        if choice[row] < 0 and not taken[col]:
            choice[row], taken[col] = col, True
            if (choice >= 0).all():
                break
    return choice


def dedup_sinkhorn(
    codes: np.ndarray,
    codebook_size: int,
    costs: Callable[[np.ndarray], np.ndarray] | None = None,
    fixed: np.ndarray | None = None,
) -> np.ndarray:
    """Re-assign the last code of colliding items so every row is unique.

    Args:
        codes: ``n x levels`` codes.
        codebook_size: codes available on the last level.
        costs: rows -> ``len(rows) x codebook_size`` distances to the last-level codes; None
            treats all codes alike (random and sequential IDs).
        fixed: rows whose codes must not change (incremental update).
    """
    codes = codes.copy()
    fixed = np.zeros(len(codes), dtype=bool) if fixed is None else fixed
    full, prefix = row_groups(codes), row_groups(codes[:, :-1])
    crowded = np.flatnonzero(np.bincount(full) > 1)
    widened: list[int] = []
    by_prefix = np.argsort(prefix, kind="stable")  # rows of one prefix are one slice, in row order
    bounds = np.searchsorted(prefix[by_prefix], np.arange(prefix.max() + 2))
    for p in np.unique(prefix[np.isin(full, crowded)]).tolist():
        members = by_prefix[bounds[p] : bounds[p + 1]]
        cost = costs(members) if costs is not None else np.zeros((len(members), codebook_size))
        own = cost[np.arange(len(members)), np.minimum(codes[members, -1], codebook_size - 1)]
        # fixed rows keep their code; then, per code, the closest non-fixed row keeps it
        order = np.lexsort((own, ~fixed[members]))
        kept_codes: set[int] = set()
        movers = []
        for row in members[order].tolist():
            code = int(codes[row, -1])
            if code not in kept_codes:
                kept_codes.add(code)
            elif fixed[row]:
                raise ValueError(f"fixed rows share codes {codes[row].tolist()}")
            else:
                movers.append(row)
        free = np.array([c for c in range(codebook_size) if c not in kept_codes], dtype=np.int64)
        rows = np.array(movers, dtype=np.int64)
        fit = min(len(rows), len(free))
        rest = np.arange(len(rows))
        if fit:
            plan = sinkhorn(cost[np.searchsorted(members, rows)][:, free])
            ranked = np.argsort(-plan.max(1), kind="stable")  # when codes run out, the keenest rows get them
            codes[rows[ranked[:fit]], -1] = free[_round_plan(plan[ranked[:fit]])]
            rest = ranked[fit:]
        if len(rest):
            widened.append(len(members))
            codes[rows[rest], -1] = max(codebook_size, max(kept_codes) + 1) + np.arange(len(rest))
    if widened:
        logger.warning(
            "index: %d groups of items share all but their last code and outgrow the %d last-level codes (largest: "
            "%d items); the last level is widened to %d codes. Use more --levels, a larger --codebook_size or "
            "--dedup level to avoid this.",
            len(widened),
            codebook_size,
            max(widened),
            int(codes[:, -1].max()) + 1,
        )
    return codes
