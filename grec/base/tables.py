"""Streaming reader for CSV, TSV and JSON-lines tables (optionally gzipped).

Rows come out as dicts keyed by column name with the file's line number, so every error can
name the file, the line and the column.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from grec.base.errors import GrecError, where
from grec.base.io import read_jsonl, text_lines

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


def table_kind(path: str | os.PathLike, sep: str | None = None) -> str:
    """``"jsonl"``, or the delimiter of a delimited file: from ``sep``, else from the suffix."""
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if sep is not None:
        return {"tab": "\t", "\\t": "\t", "comma": ","}.get(sep, sep)
    if name.endswith((".tsv", ".tab", ".txt", ".data")):
        return "\t"
    return ","


def read_table(
    path: str | os.PathLike, required: list[str], sep: str | None = None, encoding: str = "utf-8"
) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, row)`` from a CSV/TSV file with a header row, or a JSONL file.

    Every row is checked for the ``required`` columns; a missing column, a row with the wrong
    number of fields or a malformed JSON line is a GrecError naming the file and line.
    """
    kind = table_kind(path, sep)
    if kind == "jsonl":
        yield from _read_jsonl_rows(path, required, encoding)
    else:
        yield from _read_delimited(path, required, kind, encoding)


def _read_jsonl_rows(path, required, encoding):
    for number, record in read_jsonl(path, encoding):
        missing = [c for c in required if c not in record]
        if missing:
            raise GrecError(
                f"{where(path, number)}: missing field {missing[0]!r} (fields here: {', '.join(record)}); "
                f"name the right field with the matching --*_col flag"
            )
        yield number, record


def _read_delimited(path, required, delimiter, encoding):
    reader = csv.reader(text_lines(path, encoding), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise GrecError(f"{path}: the file is empty; expected a header row naming the columns")
        header = [h.strip().lstrip("\ufeff") for h in header]  # Excel writes a byte-order mark
        missing = [c for c in required if c not in header]
        if missing:
            raise GrecError(
                f"{where(path, 1)}: missing column {missing[0]!r} (header has: {', '.join(header)}); "
                f"name the right column with the matching --*_col flag, or --sep if the delimiter is wrong"
            )
        width = len(header)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                raise GrecError(
                    f"{where(path, reader.line_num)}: expected {width} columns like the header, got {len(row)}; "
                    f"fix the line or quote fields that contain the delimiter"
                )
            yield reader.line_num, dict(zip(header, row))
    except csv.Error as err:
        raise GrecError(f"{where(path, reader.line_num)}: malformed CSV ({err})") from None


def read_columns(
    path: str | os.PathLike, ids: list[str], numbers: list[str], sep: str | None = None, encoding: str = "utf-8"
) -> dict[str, tuple[np.ndarray, list[str]] | np.ndarray] | None:
    """Whole columns of a clean CSV/TSV at once (pyarrow, multi-threaded): for each of ``ids``
    ``(codes, values)`` with ``values[codes[k]]`` the k-th row's text, for each of ``numbers`` a
    float64 array (NaN where empty).

    The fast path for logs of millions of rows. It returns None whenever the file is not plainly
    clean (JSONL, a malformed row, bad text encoding, an empty or padded id, a non-numeric number),
    so that the caller reads it row by row with :func:`read_table` and reports the line at fault.
    """
    kind = table_kind(path, sep)
    if kind == "jsonl":
        return None
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv as pacsv

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=encoding),
            parse_options=pacsv.ParseOptions(delimiter=kind),
            convert_options=pacsv.ConvertOptions(
                include_columns=[*ids, *numbers],
                column_types={**{c: pa.string() for c in ids}, **{c: pa.float64() for c in numbers}},
            ),
        )
    except (pa.ArrowException, ValueError, LookupError, UnicodeError):
        return None
    columns: dict[str, tuple[np.ndarray, list[str]] | np.ndarray] = {}
    for name in ids:
        column = table.column(name)
        if column.null_count:
            return None
        encoded = pc.dictionary_encode(column.combine_chunks())
        values = encoded.dictionary.to_pylist()
        if any(not v or v != v.strip() for v in values):
            return None
        columns[name] = (encoded.indices.to_numpy(), values)
    for name in numbers:
        columns[name] = table.column(name).to_numpy()
    return columns
