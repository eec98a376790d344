"""MovieLens 1M / 10M / 20M / 25M / latest in GroupLens's own layouts.

- ``.dat`` (ML-1M, ML-10M): ``ratings.dat`` lines ``UserID::MovieID::Rating::Timestamp`` and
  ``movies.dat`` lines ``MovieID::Title::Genres`` (genres ``|``-separated; ML-1M's titles are
  latin-1, ML-10M's UTF-8).
- ``.csv`` (ML-20M, ML-25M, ml-latest, ml-latest-small): ``ratings.csv`` with header
  ``userId,movieId,rating,timestamp`` and ``movies.csv`` with ``movieId,title,genres`` (UTF-8).

An item's text is ``"<title>. Genres: <g1>, <g2>."``, as for ML-100K.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from grec.base.errors import GrecError, where
from grec.base.io import cache_dir, numbered_lines
from grec.base.tables import read_table
from grec.prepare.log import CatalogBuilder, LogBuilder, RawLog, clean_id, parse_rating, parse_time, read_log_columns

DAT_ENCODINGS = {"ml-1m": "latin-1", "ml-10m": "utf-8"}


def movie_item(item_id: str, title: str, genres: list[str]) -> dict:
    genres = [g for g in genres if g and g != "(no genres listed)"]
    text = f"{title}. Genres: {', '.join(genres)}." if genres else f"{title}."
    return {"item_id": item_id, "title": title, "text": text, "genres": genres}


def _dat_fields(path: Path, number: int, line: str, names: tuple[str, ...]) -> list[str]:
    parts = line.rstrip("\r\n").split("::")
    if len(parts) != len(names):
        raise GrecError(
            f"{where(path, number)}: expected {len(names)} '::'-separated fields ({'::'.join(names)}), got "
            f"{len(parts)}; is this a GroupLens {path.name}?"
        )
    return parts


def read_dat(folder: Path, encoding: str) -> RawLog:
    """``ratings.dat`` + ``movies.dat`` (ML-1M, ML-10M)."""
    ratings, movies = folder / "ratings.dat", folder / "movies.dat"
    log = LogBuilder()
    for number, line in numbered_lines(ratings, encoding):
        user, item, rating, time = _dat_fields(ratings, number, line, ("UserID", "MovieID", "Rating", "Timestamp"))
        log.add(
            user, item, parse_time(time, ratings, number, "Timestamp"), parse_rating(rating, ratings, number, "Rating")
        )
    catalog = CatalogBuilder(log.item_ids())
    for number, line in numbered_lines(movies, encoding):
        item, title, genres = _dat_fields(movies, number, line, ("MovieID", "Title", "Genres"))
        if catalog.accepts(item, title.strip()):
            catalog.add(movie_item(item, title.strip(), genres.split("|")))
    return log.build(catalog.records, [ratings, movies], catalog.dropped)


def read_csv_layout(folder: Path, encoding: str = "utf-8") -> RawLog:
    """``ratings.csv`` + ``movies.csv`` (ML-20M, ML-25M, ml-latest)."""
    ratings, movies = folder / "ratings.csv", folder / "movies.csv"
    log = read_log_columns(ratings, "userId", "movieId", "timestamp", "rating", ",", encoding)
    if log is None:  # not plainly clean: row by row, so the error names the line
        log = LogBuilder()
        for number, row in read_table(ratings, ["userId", "movieId", "rating", "timestamp"], ",", encoding):
            log.add(
                clean_id(row["userId"], ratings, number, "userId"),
                clean_id(row["movieId"], ratings, number, "movieId"),
                parse_time(row["timestamp"], ratings, number, "timestamp"),
                parse_rating(row["rating"], ratings, number, "rating"),
            )
    catalog = CatalogBuilder(log.item_ids())
    for number, row in read_table(movies, ["movieId", "title", "genres"], ",", encoding):
        item, title = clean_id(row["movieId"], movies, number, "movieId"), str(row["title"] or "").strip()
        if catalog.accepts(item, title):
            catalog.add(movie_item(item, title, str(row["genres"] or "").split("|")))
    return log.build(catalog.records, [ratings, movies], catalog.dropped)


def read_grouplens_folder(dataset: str, source: str | Path) -> RawLog:
    """The MovieLens folder ``source`` in whichever GroupLens layout it holds."""
    folder = Path(source)
    if (folder / "ratings.dat").is_file():
        return read_dat(folder, DAT_ENCODINGS.get(dataset, "utf-8"))
    if (folder / "ratings.csv").is_file():
        return read_csv_layout(folder)
    raise GrecError(
        f"{folder}: holds neither ratings.dat + movies.dat (ML-1M, ML-10M) nor ratings.csv + movies.csv "
        f"(ML-20M, ML-25M, ml-latest); give the unpacked GroupLens {dataset} folder as --source"
    )


GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/"


def download_grouplens(dataset: str) -> Path:
    """Fetch ``<dataset>.zip`` and the ``.md5`` GroupLens publishes beside it (from ``$GREC_GROUPLENS_URL``
    if set, a mirror), check the checksum, unpack into grec's cache once; return the data folder."""
    base = os.environ.get("GREC_GROUPLENS_URL", GROUPLENS_URL).rstrip("/") + "/"
    target = cache_dir() / "grouplens" / dataset
    if target.is_dir():
        return _data_folder(target, dataset)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive = Path(tmp) / f"{dataset}.zip"
        try:
            with urllib.request.urlopen(base + archive.name, timeout=60) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
            with urllib.request.urlopen(base + archive.name + ".md5", timeout=60) as response:
                published = re.search(r"\b[0-9a-fA-F]{32}\b", response.read().decode("ascii", "replace"))
        except OSError as err:
            raise GrecError(
                f"cannot download {base}{archive.name} ({err}); download it elsewhere, unpack it and pass the folder as --source"
            ) from None
        digest = hashlib.md5(archive.read_bytes()).hexdigest()
        if published is None or published.group(0).lower() != digest:
            raise GrecError(
                f"{base}{archive.name}: its md5 {digest} is not the published {published.group(0) if published else '(none found)'}; "
                f"the download is damaged or the mirror differs: try again, or pass an unpacked folder as --source"
            )
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(Path(tmp) / "unpacked")
        os.replace(Path(tmp) / "unpacked", target)
    return _data_folder(target, dataset)


def _data_folder(root: Path, dataset: str) -> Path:
    """The folder inside an unpacked archive that holds the ratings file (ML-10M unpacks to ml-10M100K/)."""
    for name in ("ratings.dat", "ratings.csv", "u.data"):
        found = sorted(root.rglob(name))
        if found:
            return found[0].parent
    raise GrecError(f"{root}: the {dataset} archive holds no ratings file; delete the folder and download again")
