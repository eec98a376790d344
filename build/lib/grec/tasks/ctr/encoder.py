"""FeatureEncoder: fits vocabularies and numeric ranges on streamed rows, encodes rows to arrays.

Rows arrive as ``(where, dict)`` pairs (``where`` names the file and line for errors) from any
iterator, so fitting needs one pass and memory for the vocabularies only; encoding fills numpy
arrays of a known length.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Iterable

import numpy as np

from grec.base.errors import GrecError
from grec.tasks.ctr.features import FeatureSpec, LabelSpec, Vocabulary, _number, raw_values

LOG_BUCKETS = 64


class FeatureEncoder:
    def __init__(self, label: LabelSpec, features: list[FeatureSpec]):
        self.label, self.features = label, features
        self.vocabs: dict[str, Vocabulary] = {}
        self.ranges: dict[str, tuple[float, float]] = {}
        self.single = [f for f in features if f.type != "sequence" and not f.dense]
        self.multi = [f for f in features if f.type == "sequence"]
        self.dense = [f for f in features if f.dense]

    # --- fitting --------------------------------------------------------------------------------
    def _needs_vocab(self, spec: FeatureSpec) -> bool:
        return spec.type != "numeric" and spec.hash_buckets == 0

    def _stats(self, rows: Iterable[tuple[str, dict]]) -> tuple[dict[str, Counter], dict[str, list[float]]]:
        counts = {f.name: Counter() for f in self.features if self._needs_vocab(f)}
        ranges = {f.name: [math.inf, -math.inf] for f in self.features if f.type == "numeric"}
        checked = False
        for where, row in rows:
            if not checked:
                self.check_columns(row, where)
                checked = True
            for spec in self.features:
                value = row.get(spec.column)
                if spec.type == "numeric":
                    number = _number(value, spec.column, where)
                    if number is not None:
                        low_high = ranges[spec.name]
                        low_high[0], low_high[1] = min(low_high[0], number), max(low_high[1], number)
                elif spec.name in counts:
                    counts[spec.name].update(raw_values(spec, value, where))
        if not checked:
            raise GrecError("no training rows to build the feature vocabularies from")
        return counts, ranges

    def check_columns(self, row: dict, where: str) -> None:
        missing = [f.column for f in self.features if f.column not in row] + (
            [self.label.column] if self.label.column not in row else []
        )
        if missing:
            raise GrecError(
                f"{where}: the feature config names column(s) {', '.join(missing)} that the data lacks; "
                f"the data has: {', '.join(sorted(row))}"
            )

    def fit(self, rows: Iterable[tuple[str, dict]]) -> FeatureEncoder:
        counts, ranges = self._stats(rows)
        for spec in self.features:
            if spec.name in counts:
                self.vocabs[spec.name] = Vocabulary.from_counts(counts[spec.name], spec.min_count)
            elif spec.type == "numeric":
                low, high = ranges[spec.name]
                self.ranges[spec.name] = (low, high) if low <= high else (0.0, 1.0)
        return self

    def grow(self, rows: Iterable[tuple[str, dict]]) -> dict[str, tuple[int, int]]:
        """Append the new values of ``rows`` to every vocabulary; return {name: (old size, new size)}."""
        counts, _ = self._stats(rows)
        changes = {}
        for name, counter in counts.items():
            old = self.vocabs[name]
            spec = next(f for f in self.features if f.name == name)
            self.vocabs[name] = old.grown(counter, spec.min_count)
            changes[name] = (old.size, self.vocabs[name].size)
        return changes

    # --- encoding -------------------------------------------------------------------------------
    def size(self, spec: FeatureSpec) -> int:
        if spec.hash_buckets:
            return spec.hash_buckets + 2
        if spec.type == "numeric":
            return (spec.buckets if spec.transform == "bucket" else LOG_BUCKETS) + 2
        return self.vocabs[spec.name].size

    def _id(self, spec: FeatureSpec, value: str) -> int:
        if spec.hash_buckets:
            return 1 + zlib.crc32(value.encode("utf-8")) % spec.hash_buckets
        return self.vocabs[spec.name](value)

    def _numeric(self, spec: FeatureSpec, value, where: str) -> float:
        number = _number(value, spec.column, where)
        low, high = self.ranges[spec.name]
        if spec.dense:
            return 0.0 if number is None else min(max((number - low) / ((high - low) or 1.0), 0.0), 1.0)
        if number is None:
            return 0
        if spec.transform == "log":
            return 1 + min(int(math.log2(1 + max(number, 0.0))), LOG_BUCKETS - 1)
        share = (number - low) / ((high - low) or 1.0)
        return 1 + min(max(int(share * spec.buckets), 0), spec.buckets - 1)

    def encode(self, rows: Iterable[tuple[str, dict]], count: int) -> dict[str, np.ndarray]:
        """Arrays ``single`` (N x fields, int64), ``multi`` (N x fields x max_len), ``dense``, ``labels``."""
        max_len = max((f.max_len for f in self.multi), default=1)
        out = {
            "single": np.zeros((count, len(self.single)), np.int64),
            "multi": np.zeros((count, len(self.multi), max_len), np.int64),
            "dense": np.zeros((count, len(self.dense)), np.float32),
            "labels": np.zeros(count, np.float32),
        }
        n = 0
        for n, (where, row) in enumerate(rows):
            if n == 0:
                self.check_columns(row, where)
            out["labels"][n] = self.label(row.get(self.label.column), where)
            for k, spec in enumerate(self.single):
                value = row.get(spec.column)
                if spec.type == "numeric":
                    out["single"][n, k] = self._numeric(spec, value, where)
                else:
                    values = raw_values(spec, value, where)
                    out["single"][n, k] = self._id(spec, values[0]) if values else 0
            for k, spec in enumerate(self.multi):
                ids = [self._id(spec, v) for v in raw_values(spec, row.get(spec.column), where)]
                out["multi"][n, k, : len(ids)] = ids
            for k, spec in enumerate(self.dense):
                out["dense"][n, k] = self._numeric(spec, row.get(spec.column), where)
        return out

    def fields(self) -> dict:
        """The model's input layout (goes into task.json and the model's constructor)."""
        return {
            "single": [[f.name, self.size(f)] for f in self.single],
            "multi": [[f.name, self.size(f)] for f in self.multi],
            "dense": [f.name for f in self.dense],
        }

    # --- saving -----------------------------------------------------------------------------------
    def state(self) -> dict:
        import dataclasses

        return {
            "label": dataclasses.asdict(self.label),
            "features": [dataclasses.asdict(f) for f in self.features],
            "vocabularies": {k: v.values for k, v in self.vocabs.items()},
            "ranges": {k: list(v) for k, v in self.ranges.items()},
        }

    @classmethod
    def from_state(cls, state: dict) -> FeatureEncoder:
        encoder = cls(LabelSpec(**state["label"]), [FeatureSpec(**f) for f in state["features"]])
        encoder.vocabs = {k: Vocabulary(v) for k, v in state["vocabularies"].items()}
        encoder.ranges = {k: tuple(v) for k, v in state["ranges"].items()}
        return encoder

    def check_compatible(self, saved: FeatureEncoder, where: str) -> None:
        """Refuse continuing a checkpoint whose features differ in name, type or transform."""
        old = {f.name: f for f in saved.features}
        for spec in self.features:
            before = old.get(spec.name)
            if before is None:
                raise GrecError(
                    f"{where}: feature {spec.name!r} is not in the checkpoint's feature config; "
                    f"incremental training needs the same features"
                )
            for attr in ("type", "transform", "hash_buckets", "buckets", "max_len"):
                if getattr(before, attr) != getattr(spec, attr):
                    raise GrecError(
                        f"{where}: feature {spec.name!r} changed {attr} from {getattr(before, attr)!r} "
                        f"to {getattr(spec, attr)!r}; train from scratch or restore the old setting"
                    )
        if set(old) != {f.name for f in self.features}:
            raise GrecError(
                f"{where}: the checkpoint has features {sorted(old)}, the config "
                f"{sorted(f.name for f in self.features)}; incremental training needs the same ones"
            )
