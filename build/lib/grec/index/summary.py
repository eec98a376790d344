"""A short human-readable view of ``report.json``."""

from __future__ import annotations

from pathlib import Path

from grec.base.io import read_jsonl
from grec.base.sid import SidMap


def format_report(report: dict, out: str, data: str | None = None, examples: int = 3) -> str:
    """Report figures, plus ``examples`` items of ``data``'s items.jsonl with their semantic IDs."""
    before, after = report["collisions_before"], report["collisions_after"]
    lines = [
        f"semantic IDs ({report['method']}, {report['levels']} levels x {report['codebook_size']}, dedup "
        f"{report['dedup']}) -> {out}",
        f"  items {report['items']:,}   tokens per item {report['sid_length']}",
        f"  collisions: {before['collision_rate']:.2%} of items before resolution "
        f"(max {before['max_items_per_sid']} per ID), {after['collision_rate']:.2%} after",
    ]
    for level in report["per_level"]:
        lines.append(
            f"  level {level['level']}: {level['codes_used']}/{level['codebook_size']} codes used "
            f"({level['utilisation']:.0%}), entropy {level['entropy_normalised']:.3f} of max"
        )
    if "relative_reconstruction_error" in report:
        lines.append(f"  relative reconstruction error {report['relative_reconstruction_error']:.4f}")
    agreement = report.get("sequence_agreement") or {}
    if agreement:
        lines.append(
            f"  next item shares the last item's first code: {agreement['prefix1_next_item']:.1%} "
            f"(chance {agreement['prefix1_chance']:.1%}); first two codes: {agreement['prefix2_next_item']:.1%} "
            f"(chance {agreement['prefix2_chance']:.1%}); {agreement['pairs']} validation users"
        )
    for update in report.get("updates", []):
        lines.append(f"  update: +{update['added_items']} items (from {update['items_before']})")
    if data is not None and examples:
        sid_map = SidMap.load(out)
        for _, record in zip(range(examples), (r for _, r in read_jsonl(Path(data) / "items.jsonl"))):
            lines.append(f"  {sid_map.sid_string(record['item_id'])}  {record['title']}")
    return "\n".join(lines)
