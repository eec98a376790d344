"""CTR feature specs and the vocabularies that turn raw values into stable integer ids.

Id layout of every vocabulary: 0 is padding / missing, known values take 1..n, the last id is
out-of-vocabulary. Growing a vocabulary on new data keeps every known value's id and appends the
new values, so an embedding table grows by copying its old rows (the OOV row moves to the end).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from grec.base.config import from_mappings
from grec.base.errors import GrecError

TYPES = ("categorical", "numeric", "sequence")
TRANSFORMS = ("minmax", "bucket", "log")


@dataclass
class FeatureSpec:
    """One input feature: name (the column unless column is given), type categorical|numeric|sequence,
    min_count (rarer values map to OOV), hash_buckets (hash instead of a vocabulary when > 0),
    transform (numeric: minmax = a dense value scaled to [0, 1]; bucket = equal-width buckets
    between the training min and max; log = floor(log2(1 + x)) buckets), buckets (for bucket),
    sep (sequence: separator of the values), max_len (sequence: values kept)."""

    name: str = ""
    type: str = "categorical"
    column: str | None = None
    min_count: int = 1
    hash_buckets: int = 0
    transform: str = "bucket"
    buckets: int = 10
    sep: str = "|"
    max_len: int = 8

    def __post_init__(self) -> None:
        self.column = self.column or self.name
        if not self.name:
            raise GrecError("a feature without a name; give each feature `name:`")
        if self.type not in TYPES:
            raise GrecError(f"feature {self.name!r}: type must be one of {', '.join(TYPES)}, got {self.type!r}")
        if self.type == "numeric" and self.transform not in TRANSFORMS:
            raise GrecError(f"feature {self.name!r}: transform must be one of {', '.join(TRANSFORMS)}")

    @property
    def dense(self) -> bool:
        return self.type == "numeric" and self.transform == "minmax"


@dataclass
class LabelSpec:
    """The label: column, and either threshold (label = value >= threshold) or classes [negative, positive]."""

    column: str = "label"
    threshold: float | None = None
    classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.threshold is None and len(self.classes) != 2:
            raise GrecError(f"label {self.column!r}: give threshold: N or classes: [negative, positive]")

    def __call__(self, value, where: str) -> float:
        if self.threshold is not None:
            number = _number(value, self.column, where)
            if number is None:
                raise GrecError(f"{where}: label column {self.column!r} is empty")
            return float(number >= self.threshold)
        text = str(value).strip()
        if text not in self.classes:
            raise GrecError(
                f"{where}: label column {self.column!r} has {text!r}, not one of the declared classes "
                f"{self.classes}; fix the data or the label's classes"
            )
        return float(text == self.classes[1])


def parse_features(mapping: dict, origin: str) -> tuple[LabelSpec, list[FeatureSpec]]:
    """The label and features of a feature config (YAML ``label:`` and ``features:``)."""
    if not isinstance(mapping.get("features"), list) or not isinstance(mapping.get("label"), dict):
        raise GrecError(f"{origin}: a feature config needs `label:` (a mapping) and `features:` (a list)")
    label = from_mappings(LabelSpec, [(f"{origin}: label", mapping["label"])])
    features = [
        from_mappings(FeatureSpec, [(f"{origin}: features[{k}]", spec)]) for k, spec in enumerate(mapping["features"])
    ]
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        raise GrecError(f"{origin}: a feature name appears twice in {names}")
    return label, features


def _number(value, column: str, where: str) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text or text == "?":
        return None
    try:
        return float(text)
    except ValueError:
        raise GrecError(f"{where}: numeric feature {column!r} has the non-numeric value {text!r}") from None


def raw_values(spec: FeatureSpec, value, where: str) -> list[str]:
    """The string values of one cell: one for categorical, several for sequence, none when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if spec.type == "sequence":
        parts = value if isinstance(value, (list, tuple)) else str(value).split(spec.sep)
        return [str(p).strip() for p in parts if str(p).strip()][: spec.max_len]
    text = str(value).strip()
    return [text] if text else []


class Vocabulary:
    """value -> id with 0 = missing, 1..n = known values, n + 1 = OOV."""

    def __init__(self, values: list[str]):
        self.values = list(values)
        self.ids = {v: k + 1 for k, v in enumerate(self.values)}

    @classmethod
    def from_counts(cls, counts: Counter, min_count: int) -> Vocabulary:
        return cls(sorted((v for v, c in counts.items() if c >= min_count), key=lambda v: (-counts[v], v)))

    def grown(self, counts: Counter, min_count: int) -> Vocabulary:
        """This vocabulary with the unseen values of ``counts`` appended (old ids unchanged)."""
        new = sorted(
            (v for v, c in counts.items() if c >= min_count and v not in self.ids), key=lambda v: (-counts[v], v)
        )
        return Vocabulary(self.values + new)

    @property
    def size(self) -> int:
        return len(self.values) + 2

    def __call__(self, value: str) -> int:
        return self.ids.get(value, len(self.values) + 1)
