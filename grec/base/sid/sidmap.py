"""``SidMap``: item <-> codes <-> token strings, saved as ``sid_map.json`` (LC-Rec / MiniOneRec layout).

``sid_map.json`` is ``{"item_id": ["<a_12>", "<b_7>", "<c_201>", "<d_0>"], ...}``: level k's
token is ``<{letter k}_{code}>``. A checkpoint keeps a copy, so inference maps generated tokens
back to the very items the model was trained on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import string
from pathlib import Path

import numpy as np

from grec.base.errors import GrecError
from grec.base.files import SID_MAP
from grec.base.io import atomic_open, read_json

TOKEN = re.compile(r"^<([a-z])_(\d+)>$")


def level_name(level: int) -> str:
    return string.ascii_lowercase[level]


def token(level: int, code: int) -> str:
    """The token string of ``code`` on ``level`` (0-based): ``token(2, 201) == "<c_201>"``."""
    return f"<{level_name(level)}_{code}>"


def row_groups(codes: np.ndarray) -> np.ndarray:
    """An integer per row of ``codes`` (items x levels), equal for equal rows, numbered in the rows'
    lexicographic order. Rows are packed into one integer (mixed radix, first code most significant)
    when they fit in 63 bits, so a 1-D unique does the work: several times faster than one over rows."""
    if codes.shape[1] == 0 or len(codes) == 0:
        return np.zeros(len(codes), dtype=np.int64)
    shifted = codes.astype(np.int64) - codes.min(0)
    radix = shifted.max(0) + 1
    if float(np.prod(radix.astype(np.float64))) >= 2.0**63:
        return np.unique(codes, axis=0, return_inverse=True)[1].reshape(-1)
    key = np.zeros(len(codes), dtype=np.int64)
    for column, base in zip(shifted.T, radix):
        key = key * base + column
    return np.unique(key, return_inverse=True)[1].reshape(-1)


class SidMap:
    """A one-to-one map between item ids and fixed-depth code tuples."""

    def __init__(self, item_ids: list[str], codes: np.ndarray):
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or len(codes) != len(item_ids):
            raise GrecError(f"semantic IDs: {len(item_ids)} items but codes of shape {codes.shape}")
        self.item_ids = list(item_ids)
        self.codes = codes
        self._row = {item: k for k, item in enumerate(self.item_ids)}
        if len(self._row) != len(self.item_ids):
            raise GrecError("semantic IDs: an item id appears twice")
        if len(codes) and row_groups(codes).max() + 1 != len(codes):
            raise GrecError("semantic IDs: two items share the same codes; rebuild the index (grec index)")
        self._strings: dict[str, str] = {}  # sid_string per item, filled on first use

    @functools.cached_property
    def _by_codes(self) -> dict[tuple[int, ...], str]:
        """codes -> item, built on first use (a million tuples take a second)."""
        return {tuple(c): item for item, c in zip(self.item_ids, self.codes.tolist())}

    @property
    def levels(self) -> int:
        return self.codes.shape[1]

    def __len__(self) -> int:
        return len(self.item_ids)

    def __eq__(self, other: object) -> bool:
        """The same items with the same codes, in the same order."""
        if not isinstance(other, SidMap):
            return NotImplemented
        return self.item_ids == other.item_ids and np.array_equal(self.codes, other.codes)

    __hash__ = None  # mutable caches inside; equal maps need not hash alike

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._row

    def level_sizes(self) -> list[int]:
        """Codes per level: one more than the largest code used."""
        return (self.codes.max(0) + 1).tolist()

    def codes_of(self, item_id: str) -> tuple[int, ...]:
        return tuple(self.codes[self._row[item_id]].tolist())

    def tokens_of(self, item_id: str) -> list[str]:
        return [token(level, code) for level, code in enumerate(self.codes_of(item_id))]

    def sid_string(self, item_id: str) -> str:
        """``"<a_12><b_7><c_201>"``: what a model reads and writes for the item."""
        text = self._strings.get(item_id)
        if text is None:
            text = self._strings[item_id] = "".join(self.tokens_of(item_id))
        return text

    def item_of(self, codes: tuple[int, ...] | list[int]) -> str | None:
        """The item with these codes, or None if no item has them."""
        return self._by_codes.get(tuple(int(c) for c in codes))

    def item_of_tokens(self, tokens: list[str]) -> str | None:
        """The item spelled by token strings, or None for a malformed or unknown ID."""
        codes = []
        for level, text in enumerate(tokens):
            match = TOKEN.match(text)
            if match is None or match.group(1) != level_name(level):
                return None
            codes.append(int(match.group(2)))
        return self.item_of(codes) if len(codes) == self.levels else None

    def vocabulary(self) -> list[str]:
        """Every token the map uses, level by level, codes ascending."""
        return [token(level, int(code)) for level in range(self.levels) for code in np.unique(self.codes[:, level])]

    def fingerprint(self) -> str:
        """A hash of the whole map: equal maps, equal fingerprints."""
        digest = hashlib.sha256()
        for item, row in zip(self.item_ids, self.codes.tolist()):
            digest.update(f"{item}\t{row}\n".encode())
        return digest.hexdigest()[:16]

    def to_json(self) -> dict[str, list[str]]:
        return {item: self.tokens_of(item) for item in self.item_ids}

    def save(self, folder: str | Path) -> Path:
        """Write ``sid_map.json`` into ``folder`` (atomically), one item per line.

        The lines are assembled column by column over numpy object arrays (a million items in about
        a second; an indented ``json.dump`` runs json's pure-Python encoder, several times slower).
        """
        path = Path(folder) / SID_MAP
        lines = np.array([json.encoder.encode_basestring(item) for item in self.item_ids], dtype=object)
        lines = "  " + lines + ": ["
        for level in range(self.levels):
            spelled = np.array(
                [f'"{token(level, c)}"' for c in range(int(self.codes[:, level].max(initial=-1)) + 1)], dtype=object
            )
            lines = lines + (", " if level else "") + spelled[self.codes[:, level]]
        with atomic_open(path) as handle:
            handle.write("{\n" + ",\n".join((lines + "]").tolist()) + "\n}\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> SidMap:
        """Read a ``sid_map.json`` file, or the one inside a folder (a SID folder or a checkpoint)."""
        path = Path(path)
        path = path / SID_MAP if path.is_dir() else path
        data = read_json(path)
        if not isinstance(data, dict) or not data:
            raise GrecError(f"{path}: expected a non-empty JSON object of item id -> list of SID tokens")
        item_ids, rows = [], []
        for item, tokens in data.items():
            codes = []
            for level, text in enumerate(tokens if isinstance(tokens, list) else []):
                match = TOKEN.match(str(text))
                if match is None or match.group(1) != level_name(level):
                    raise GrecError(f"{path}: item {item!r}: token {text!r} is not <{level_name(level)}_N>")
                codes.append(int(match.group(2)))
            if not codes or (rows and len(codes) != len(rows[0])):
                raise GrecError(f"{path}: item {item!r} has {len(codes)} tokens; every item needs the same number")
            item_ids.append(item)
            rows.append(codes)
        try:
            return cls(item_ids, np.array(rows, dtype=np.int64))
        except GrecError as err:
            raise GrecError(f"{path}: {err}") from None

    def check_same(self, other: SidMap, where: str) -> None:
        """Raise if ``other`` differs: a checkpoint must be used with the map it was trained on."""
        if self.fingerprint() != other.fingerprint():
            raise GrecError(
                f"{where}: the semantic-ID map differs from the one the checkpoint was trained with "
                f"({len(other)} vs {len(self)} items, fingerprints {other.fingerprint()} vs {self.fingerprint()}); "
                f"use the checkpoint's own sid_map.json"
            )
