"""What ``grec evaluate`` prints and draws: markdown tables (per file, paired differences, seeds) and the bar plot."""

from __future__ import annotations

from pathlib import Path

from grec.base.io import atomic_open


def paired_metrics(topk: list[int]) -> list[str]:
    return [*[f"HR@{k}" for k in topk], *[f"NDCG@{k}" for k in topk], f"MRR@{topk[-1]}"]


def paired_markdown(table: dict[str, dict], topk: list[int]) -> str:
    """Differences from the baseline, ``+0.0123* (p 0.003)``: * marks p < alpha; empty without --baseline."""
    rows = {name: row["paired"] for name, row in table.items() if "paired" in row}
    if not rows:
        return ""
    first = next(iter(rows.values()))
    cols = paired_metrics(topk)
    lines = [
        f"paired differences from {first['baseline']} ({first['test']}, * p < {first['alpha']}):",
        "",
        "| file | records | " + " | ".join(f"Δ{c}" for c in cols) + " |",
        "|---|---:|" + "---:|" * len(cols),
    ]
    for name, paired in rows.items():
        cells = [
            f"{paired[c]['difference']:+.4f}{'*' if paired[c]['significant'] else ''} (p {paired[c]['p']:.2g})"
            for c in cols
        ]
        lines.append(f"| {name} | {paired[cols[0]]['records']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_markdown(groups: dict[str, dict], topk: list[int]) -> str:
    cols = [*[f"HR@{k}" for k in topk], *[f"NDCG@{k}" for k in topk]]
    lines = ["| setting | seeds | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
    for key, stats in groups.items():
        paired = stats.get("paired", {})
        cells = [
            (f"{stats[c]['mean']:.4f} ± {stats[c]['std']:.4f}" if stats[c]["mean"] is not None else NOT_MEASURED)
            + ("*" if paired.get(c, {}).get("significant") else "")
            for c in cols
        ]
        lines.append(f"| {key} | {stats['seeds']} | " + " | ".join(cells) + " |")
    tested = [stats["paired"] for stats in groups.values() if "paired" in stats]
    if tested:
        lines += [
            "",
            f"* paired difference from {tested[0]['baseline']} significant ({tested[0]['test']}, p < {tested[0]['alpha']})",
        ]
    return "\n".join(lines)


def plot_metrics(table: dict[str, dict], path: Path, keys: tuple[str, ...] = ("HR@10", "NDCG@10")) -> None:
    """Grouped bars: one group per result file, one bar per metric, values written on the bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(names) + 2), 3.8))
    for k, key in enumerate(keys):
        values = [table[n].get(key) or 0.0 for n in names]  # not measured: an empty bar
        bars = ax.bar([i + k * width for i in range(len(names))], values, width, label=key)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(
        [i + width * (len(keys) - 1) / 2 for i in range(len(names))], names, rotation=15, ha="right", fontsize=8
    )
    ax.set(ylabel="score", title="ranking quality per result file")
    ax.legend()
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


def table_topk(table: dict[str, dict]) -> list[int]:
    """The cut-offs K that every row of ``table`` was scored at."""
    return sorted(set.intersection(*({int(c[3:]) for c in row if c.startswith("HR@")} for row in table.values())))


def markdown(table: dict[str, dict], topk: list[int] | None = None) -> str:
    """A markdown table: records, HR/NDCG@K, MRR at the largest K, invalid and duplicate rates
    (``topk``: the cut-offs shown; default every one the rows hold)."""
    topk = table_topk(table) if topk is None else topk
    cols = [
        "records",
        *[f"HR@{k}" for k in topk],
        *[f"NDCG@{k}" for k in topk],
        f"MRR@{topk[-1]}",
        "invalid_rate",
        "duplicate_rate",
    ]
    lines = ["| file | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, row in table.items():
        cells = [f"{row[c]:,}" if c == "records" else cell(row.get(c)) for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    notes = comparability_notes(table)
    return "\n".join([*lines, *(["", *notes] if notes else [])])


NOT_MEASURED = "n/m"


def cell(value: float | None) -> str:
    return NOT_MEASURED if value is None else f"{value:.4f}"


def comparability_notes(table: dict[str, dict]) -> list[str]:
    """Lines under a table that say where its rows cannot be compared as they stand: cut-offs beyond a
    run's list, runs scored on different numbers of records, history left out by some runs only."""
    notes = []
    short = {name: row["list_length"] for name, row in table.items() if any(row[c] is None for c in row if "@" in c)}
    if short:
        listed = ", ".join(f"{name} ({n})" for name, n in short.items())
        notes.append(f"{NOT_MEASURED}: not measured, K beyond the items a run listed: {listed}")
    counts = sorted({row["records"] for row in table.values()})
    if len(counts) > 1:
        notes.append(
            f"note: the runs were scored on different numbers of records ({', '.join(f'{n:,}' for n in counts)}): "
            f"compare only rows with the same count"
        )
    protocols = {name: row.get("exclude_history") for name, row in table.items()}
    if len(set(protocols.values())) > 1:
        said = {True: "history left out", False: "history kept", "mixed": "mixed", None: "not recorded"}
        groups: dict[str, list[str]] = {}
        for name, value in protocols.items():
            groups.setdefault(said[value], []).append(name)
        listed = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in groups.items())
        notes.append(
            f"note: the runs differ in whether the user's history items could be recommended ({listed}); "
            f"compare only rows of one protocol (grec infer --exclude_history)"
        )
    return notes
