"""Atomic file writing and line-numbered reading shared by every stage.

A stage never leaves a half-written file behind: it writes ``name.tmp``, flushes, fsyncs and
``os.replace``-s it over the final name, or it stages a whole folder and publishes it at the end
(``grec.base.folders``). Readers of a folder whose commit was cut short see the previous output.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from grec.base.errors import GrecError, where
from grec.base.folders import check_published


def cache_dir() -> Path:
    """grec's cache (converted GGUF models, downloads): $GREC_CACHE, else ~/.cache/grec."""
    return Path(os.environ.get("GREC_CACHE", Path.home() / ".cache" / "grec"))


def check_output(path: str | os.PathLike, flag: str, kind: str = "folder") -> None:
    """Refuse an output ``path`` that cannot be written, before any input is read: a file where a
    folder is meant (or the reverse), a parent that is a file, or a place without write permission."""
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise GrecError(f"{path}: is a folder; {flag} takes a file path (e.g. {path / 'results.jsonl'})")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise GrecError(f"{path}: is a file; {flag} takes a folder")
    parent = path if kind == "folder" else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise GrecError(f"{path}: cannot be created: {parent} is a file, not a folder; choose another {flag}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GrecError(f"{path}: cannot write there (no permission on {parent}); choose another {flag}")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open ``path.tmp`` for writing; on success flush, fsync and rename it to ``path``."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + ".tmp")
    kwargs = {} if "b" in mode else {"encoding": encoding}
    try:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path) as handle:
        json.dump(obj, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def save_npy(path: str | os.PathLike, array: Any) -> None:
    """``numpy.save``, atomically."""
    import numpy as np

    with atomic_open(path, "wb") as handle:
        np.save(handle, array)


def save_npz(path: str | os.PathLike, **arrays: Any) -> None:
    """``numpy.savez``, atomically."""
    import numpy as np

    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)


# one encoder for every line (json.dumps with options builds a new one per call); json's C encoder
_encode = json.JSONEncoder(ensure_ascii=False).encode


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write one JSON object per line, atomically. Returns the number of lines."""
    count = 0
    with atomic_open(path) as handle:
        for row in rows:
            handle.write(_encode(row))
            handle.write("\n")
            count += 1
    return count


def write_json_rows(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write a JSON list with one object per line, atomically (BIGRec's record files: still one JSON
    document, and readable line by line). Each row goes through json's C encoder: an indented
    ``json.dump`` runs the pure-Python one, several times slower. Returns the number of rows."""
    count = 0
    with atomic_open(path) as handle:
        handle.write("[")
        for row in rows:
            handle.write(",\n" if count else "\n")
            handle.write(_encode(row))
            count += 1
        handle.write("\n]\n")
    return count


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or malformed file is a GrecError naming it."""
    path = Path(path)
    check_published(path.parent)
    if not path.is_file():
        raise GrecError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise GrecError(f"{where(path, err.lineno)}: not valid JSON ({err.msg})") from None


def _open_binary(path: Path) -> IO[bytes]:
    check_published(path.parent)
    if not path.is_file():
        raise GrecError(f"{path}: file not found; check the path")
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def text_lines(path: str | os.PathLike, encoding: str = "utf-8") -> Iterator[str]:
    """Stream the lines of a (possibly gzipped) text file, decoded one line at a time.

    Decoding per line lets an encoding error name the exact line and byte offset, and
    suggest the fix. A missing file raises a GrecError naming it.
    """
    path = Path(path)
    offset, number = 0, 0
    with _open_binary(path) as handle:
        try:
            for number, raw in enumerate(handle, 1):
                try:
                    yield raw.decode(encoding)
                except UnicodeDecodeError as err:
                    raise GrecError(
                        f"{where(path, number)}: not {encoding} text at byte {offset + err.start} ({err.reason}); "
                        f"convert the file to {encoding}, or pass the commands that read it with --encoding "
                        f"(prepare, tokenizer) the file's encoding (e.g. --encoding latin-1)"
                    ) from None
                offset += len(raw)
        except (OSError, EOFError) as err:
            raise GrecError(f"{where(path, number + 1)}: cannot read ({err}); is the file complete?") from None


def numbered_lines(path: str | os.PathLike, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` for each non-blank line of a (possibly gzipped) text file."""
    for number, line in enumerate(text_lines(path, encoding), 1):
        if line.strip():
            yield number, line


def read_jsonl(path: str | os.PathLike, encoding: str = "utf-8") -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for each line of a JSON-lines file.

    A line that is not a JSON object is a GrecError naming the file and line.
    """
    for number, line in numbered_lines(path, encoding):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise GrecError(f"{where(path, number)}: not valid JSON ({err.msg}); fix or remove this line") from None
        if not isinstance(record, dict):
            raise GrecError(f"{where(path, number)}: expected a JSON object per line, got {type(record).__name__}")
        yield number, record


def read_records(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield ``(number, record)`` from a JSON-lines file or a JSON list of objects (BIGRec's result and
    record files), told apart by the first character. A list's records are numbered by position."""
    path = Path(path)
    with _open_binary(path) as handle:
        first = handle.read(256).lstrip()[:1]
    if first != b"[":
        yield from read_jsonl(path)
        return
    rows = read_json(path)
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise GrecError(f"{path}: element {number} of the list is {type(row).__name__}, not a JSON object")
        yield number, row


def write_records(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write records in the layout the file name says, atomically: ``.json`` a JSON list (as BIGRec's
    inference writes it), anything else JSON lines. Returns the number of records."""
    return (write_json_rows if Path(path).suffix == ".json" else write_jsonl)(path, rows)


def stage_is_current(out: Path, settings: dict, outputs: tuple[str, ...], overwrite: bool, marker: str) -> bool:
    """True if ``out`` already holds a finished run with exactly ``settings`` (nothing to do).

    ``marker`` is the JSON file, written last, that records ``{"settings": ...}``. A folder
    finished with other settings, or holding files but no marker (not this stage's output), is
    refused (GrecError) unless ``overwrite``; with it, the stage's files replace their namesakes
    and the rest stays.
    """
    if not out.exists():
        return False
    if not out.is_dir():
        raise GrecError(f"{out}: exists and is not a folder; choose another --out")
    if (out / marker).is_file():
        previous = read_json(out / marker).get("settings") or {}
        if previous == settings and all((out / name).is_file() for name in outputs):
            return not overwrite
        if not overwrite:
            changed = sorted(k for k in settings.keys() | previous.keys() if settings.get(k) != previous.get(k))
            raise GrecError(
                f"{out}: already holds a run with different settings ({', '.join(changed)} differ); "
                f"pass --overwrite to replace it, or choose another --out"
            )
    else:
        refuse_foreign(out, marker, overwrite)
    return False


def refuse_foreign(out: Path, marker: str, overwrite: bool, flag: str = "--out") -> None:
    """Refuse a folder ``out`` that holds files but no ``marker`` (so this stage did not write it: it may be
    anything, a home folder included), unless ``overwrite``; hidden files do not count."""
    found = sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() else []
    if found and not (out / marker).exists() and not overwrite:
        raise GrecError(
            f"{out}: not empty ({', '.join(found[:3])}{', ...' if len(found) > 3 else ''}) and holds no {marker} "
            f"of this stage: it was not written by it; choose another {flag}, or pass --overwrite to write "
            f"this stage's files into it (the others stay)"
        )
