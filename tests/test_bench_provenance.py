"""Every figure under docs/bench/ says where it comes from: written by a bench script that records
the commit, the exact command, the date, the machine and the library versions; quality tables
record those per row, with the seeds, each seed's values and the minutes of a run."""

import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "docs" / "bench"
FILES = sorted(BENCH.glob("*.json"))
ORIGIN = ("commit", "command", "date", "machine", "versions")


def missing_origin(record: dict) -> list[str]:
    gaps = [key for key in ORIGIN if not record.get(key)]
    versions = record.get("versions") or {}
    return gaps + [f"versions.{lib}" for lib in ("torch", "transformers") if lib not in versions]


def quality_rows(table: dict) -> dict:
    return {name: row for name, row in table.items() if name != "published"}


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_a_bench_file_records_its_origin(path):
    record = json.loads(path.read_text())
    if path.name.startswith("quality"):
        for name, row in quality_rows(record).items():
            where = f"{path.name}: row {name}"
            assert row.get("seeds") and len(row.get("runs", [])) == len(row["seeds"]), f"{where}: per-seed values"
            assert row.get("minutes_per_run") is not None, f"{where}: minutes"
            assert row.get("provenance"), f"{where}: no provenance (re-run it with bench/quality.py)"
            for made in row["provenance"]:
                assert not missing_origin(made), f"{where}: provenance lacks {missing_origin(made)}"
    else:
        assert not missing_origin(record), f"{path.name}: lacks {missing_origin(record)}; re-run its bench script"


def test_the_rules_catch_a_file_without_origin(tmp_path):
    assert missing_origin({"command": "python bench/x.py"}) == ["commit", "date", "machine", "versions"] + [
        "versions.torch",
        "versions.transformers",
    ]
    made = {"commit": "abc", "command": "c", "date": "d", "machine": "m", "versions": {"torch": 1, "transformers": 2}}
    assert not missing_origin(made)
    assert list(quality_rows({"published": {}, "sasrec": {}})) == ["sasrec"]
