"""A short human-readable summary of a prepared folder."""

from __future__ import annotations

import json
from pathlib import Path

from grec.base.io import read_json, read_jsonl


def format_summary(folder: str | Path, example_user_lines: int = 1) -> str:
    """Counts from ``stats.json`` plus one test user's history and target, by title."""
    folder = Path(folder)
    stats = read_json(folder / "stats.json")
    seq = stats["sequence_length"]
    ex = stats["examples"]
    removed = {k: v for k, v in stats["removed"].items() if v}
    lines = [
        f"prepared {stats['dataset']} -> {folder}",
        f"  users {stats['users']:,}   items {stats['items']:,}   interactions {stats['interactions']:,}   "
        f"density {stats['density']:.4f}",
        f"  sequence length: min {seq['min']}, median {seq['median']:g}, mean {seq['mean']:.1f}, max {seq['max']}",
        f"  examples: train {ex['train']:,}   valid {ex['valid']:,}   test {ex['test']:,}",
        f"  removed: {json.dumps(removed) if removed else 'nothing'}",
        f"  plot: {folder / 'stats.png'}",
    ]
    titles = {record["item_id"]: record["title"] for _, record in read_jsonl(folder / "items.jsonl")}
    for _, row in zip(range(example_user_lines), (r for _, r in read_jsonl(folder / "test.jsonl"))):
        recent = [titles[i] for i in row["history"][-3:]]
        lines.append(f"  user {row['user_id']}: ... {' -> '.join(recent)} => test target: {titles[row['target']]}")
    return "\n".join(lines)
