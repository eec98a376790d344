"""Reading records files (``grec records`` writes them: JSON lists of alpaca-style records)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from grec.base.errors import GrecError

FIELDS = ("instruction", "input", "output")


def load_records(paths: list[str], sample: int = -1, seed: int = 0) -> list[dict]:
    """Records from one or more JSON-list files, checked; ``sample`` > 0 keeps a seeded subset."""
    records = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise GrecError(f"{path}: records file not found; run grec records first or fix the path") from None
        except UnicodeDecodeError as err:
            raise GrecError(
                f"{path}: not UTF-8 text at byte {err.start} ({err.reason}); rebuild it with grec records"
            ) from None
        except json.JSONDecodeError as err:
            raise GrecError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(data, list) or not data:
            raise GrecError(f"{path}: expected a non-empty JSON list of records (grec records writes them)")
        for k, record in enumerate(data):
            missing = [f for f in FIELDS if not isinstance(record, dict) or f not in record]
            if missing:
                raise GrecError(f"{path}: record {k} has no {missing[0]!r} field; records need {', '.join(FIELDS)}")
        records.extend(data)
    if 0 < sample < len(records):
        keep = np.sort(np.random.default_rng(seed).choice(len(records), sample, replace=False))
        records = [records[k] for k in keep]
    return records
