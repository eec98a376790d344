"""``PrepareConfig``: every flag of ``grec prepare``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.fields import neutral, unrecorded
from grec.base.io import check_output
from grec.prepare.datasets import DATASETS, FILE_FLAGS, dataset_help
from grec.prepare.log import parse_time

SPLITS = ("loo", "temporal", "given")
# Flags that filter or cut a log; a log that comes split (minionerec) must keep their defaults.
GIVEN_FIXED = {
    "start": None,
    "end": None,
    "min_rating": None,
    "sample_users": -1,
    "min_user_inter": None,
    "min_item_inter": None,
}


def parse_ratios(value) -> list[float]:
    """``0.8,0.1,0.1`` (text or a sequence) as three shares summing to 1, train and test positive."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        ratios = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        ratios = ()
    if len(ratios) != 3 or min(ratios) < 0 or ratios[0] <= 0 or ratios[2] <= 0 or abs(sum(ratios) - 1) > 1e-6:
        raise GrecError(f"--ratios: expected train,valid,test shares summing to 1 such as 0.8,0.1,0.1, got {value!r}")
    return list(ratios)


def window_time(value, flag: str) -> float:
    """A --start / --end bound as a number: unix seconds as given, or ISO-8601 text read as UTC."""
    try:
        return parse_time(value, flag, 0, flag)
    except GrecError:
        raise GrecError(
            f"{flag}: expected unix seconds or an ISO-8601 date such as 2014-07-01, got {value!r}"
        ) from None


@dataclass
class PrepareConfig:
    """grec prepare: turn interaction logs into time-ordered splits (leave-one-out or a global temporal cut).

    Writes items.jsonl, train.jsonl, valid.jsonl, test.jsonl, stats.json and settings.json to --out
    (formats: docs/formats.md). Example: grec prepare --dataset ml-100k --out data/ml-100k

    Args:
        dataset: the data set and the files it reads ({datasets}).
        out: output folder; default data/<dataset>.
        source: the data set's folder (MovieLens, RecBole; see --dataset); ml-100k and ml-1m default to a packaged copy.
        reviews: amazon, yelp, steam: the reviews file (its fields: see --dataset).
        meta: amazon, yelp, steam: the item metadata file (its fields: see --dataset).
        interactions: csv only: interactions file (.csv, .tsv or .jsonl, optionally .gz) with user, item and timestamp columns.
        items: csv only: items file with an id column and a title column; other columns are kept and added to the item text.
        user_col: csv only: user column of the interactions file.
        item_col: csv only: item column of the interactions file.
        time_col: csv only: timestamp column of the interactions file (unix seconds or milliseconds, or ISO-8601 text such as 2014-07-01T12:30:00Z; without an offset read as UTC).
        item_id_col: csv only: id column of the items file; default: the same as item_col.
        title_col: csv (and recbole, where the default looks for title, movie_title, item_name or name): title column of the items file.
        sep: csv only: delimiter (',' or 'tab'); default from the file suffix (.tsv: tab, else comma).
        encoding: text encoding of csv, recbole and minionerec files.
        category: minionerec: read the CSVs whose names start with this (e.g. Industrial_and_Scientific) when a folder holds several; amazon with --download: the category to fetch (Beauty, Sports, Toys, Office, Industrial, Instruments).
        amazon_version: amazon with --download: the release, 2014 or 2018 (5-core review files) or 2023 (raw reviews, k-cored here).
        min_user_inter: k-core: drop users with fewer interactions (at least 3, which leave-one-out needs); default 5 for amazon, 3 otherwise.
        min_item_inter: k-core: drop items with fewer interactions; applied together with min_user_inter until both hold; default 5 for amazon, 1 otherwise.
        download: MovieLens (ml-100k ... ml-latest): fetch the official GroupLens archive and check it against the published md5 (needs internet; unpacked once into grec's cache) instead of reading --source.
        rating_col: csv only: a rating column, read for --min_rating.
        split: loo (default): each user's last item is the test target, the one before it the validation target (SASRec, TIGER, LC-Rec, BIGRec); temporal: the whole log sorted by time and cut at --ratios, so no validation or test event is earlier than a training event (MiniOneRec, D3); given: the files' own split (minionerec, its default and only choice); rules in docs/formats.md.
        ratios: temporal only: train, validation and test shares of the interactions, e.g. 0.8,0.1,0.1.
        unseen_items: temporal only: drop (default) or keep validation and test events whose item no training event has.
        start: keep interactions at or after this time: unix seconds or ISO-8601 (2014-07-01, 2014-07-01T12:30:00Z).
        end: keep interactions before this time (same forms as --start).
        min_rating: keep only interactions rated at least this (sources with ratings: ml-100k, amazon, csv with --rating_col).
        max_history: most recent items kept in each history.
        train_windows: all: every prefix before the validation item is a training example; last: only the last one per user.
        train_format: windows: train.jsonl holds one line per training interaction with its history (readable by any tool); sequences: one line per user with the whole training sequence, the windows derived when read (a log of millions of interactions stays small); needs --train_windows all.
        dedup: keep only the first interaction of a user with an item.
        sample_users: keep a random subset of this many users (seeded); -1 keeps all.
        seed: random seed for sample_users.
        overwrite: replace an output folder prepared with different settings.
    """

    dataset: str = "ml-100k"
    out: str | None = unrecorded(None)
    source: str | None = None
    reviews: str | None = None
    meta: str | None = None
    interactions: str | None = None
    items: str | None = None
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    item_id_col: str | None = None
    title_col: str = "title"
    sep: str | None = None
    encoding: str = "utf-8"
    download: bool = False
    rating_col: str | None = None
    category: str | None = None
    amazon_version: str = "2018"
    split: str | None = None
    ratios: list[float] | str = "0.8,0.1,0.1"
    unseen_items: str = "drop"
    start: str | float | None = None
    end: str | float | None = None
    min_rating: float | None = None
    min_user_inter: int | None = None
    min_item_inter: int | None = None
    max_history: int = 50
    train_windows: str = "all"
    train_format: str = "windows"
    dedup: bool = True
    sample_users: int = -1
    seed: int = 42
    overwrite: bool = neutral(False)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise GrecError(f"--dataset: unknown data set {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        self.out = self.out or str(Path("data") / self.dataset)
        check_output(self.out, "--out")
        self._check_given()
        user_default, item_default = DATASETS[self.dataset].kcore
        self.min_user_inter = user_default if self.min_user_inter is None else self.min_user_inter
        self.min_item_inter = item_default if self.min_item_inter is None else self.min_item_inter
        self.item_id_col = self.item_id_col or self.item_col
        if self.min_user_inter < (3 if self.split == "loo" else 1):
            raise GrecError(
                "--min_user_inter: must be at least 3 with --split loo (one training, one validation and one test item)"
                if self.split == "loo"
                else "--min_user_inter: must be at least 1"
            )
        if self.min_item_inter < 1:
            raise GrecError("--min_item_inter: must be at least 1")
        if self.max_history < 1:
            raise GrecError("--max_history: must be at least 1")
        if self.train_windows not in ("all", "last"):
            raise GrecError(f"--train_windows: expected 'all' or 'last', got {self.train_windows!r}")
        if self.rating_col is not None and self.dataset != "csv":
            raise GrecError(
                "--rating_col: only used with --dataset csv (ml-100k and amazon ratings are read as they are)"
            )
        if self.train_format not in ("windows", "sequences"):
            raise GrecError(f"--train_format: expected 'windows' or 'sequences', got {self.train_format!r}")
        if self.train_format == "sequences" and self.train_windows != "all":
            raise GrecError("--train_format sequences holds every window; use it with --train_windows all")
        if self.split not in SPLITS:
            raise GrecError(f"--split: expected one of {', '.join(SPLITS)}, got {self.split!r}")
        self.ratios = parse_ratios(self.ratios)
        if self.unseen_items not in ("drop", "keep"):
            raise GrecError(f"--unseen_items: expected 'drop' or 'keep', got {self.unseen_items!r}")
        self.start, self.end = (
            None if v is None else window_time(v, flag) for v, flag in ((self.start, "--start"), (self.end, "--end"))
        )
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise GrecError(f"--start {self.start} is not before --end {self.end}: the time window is empty")
        if self.sample_users == 0 or self.sample_users < -1:
            raise GrecError("--sample_users: give a positive number of users, or -1 for all")
        self._check_files()

    def _check_given(self) -> None:
        """A log that arrives split (``Dataset.given``) takes ``--split given`` and none of the flags that cut it."""
        given = DATASETS[self.dataset].given
        self.amazon_version = str(self.amazon_version)
        self.split = self.split or ("given" if given else "loo")
        if self.category is not None and self.dataset not in ("minionerec", "amazon"):
            raise GrecError("--category: only read by --dataset minionerec and amazon; remove it")
        if self.dataset == "amazon" and self.download:
            from grec.prepare.readers.amazon_files import category_name

            if self.category is None:
                raise GrecError("--download with --dataset amazon: name the --category to fetch (e.g. Beauty)")
            category_name(self.category, str(self.amazon_version))
        elif self.dataset == "amazon" and self.category is not None:
            raise GrecError(
                "--category with --dataset amazon: add --download to fetch it, or give --reviews and --meta"
            )
        if given != (self.split == "given"):
            raise GrecError(
                f"--split {self.split}: --dataset {self.dataset} comes already split; drop --split"
                if given
                else f"--split given: only for data sets that come split (minionerec); use loo or temporal for {self.dataset}"
            )
        changed = [f"--{flag}" for flag, default in GIVEN_FIXED.items() if given and getattr(self, flag) != default]
        if changed:
            raise GrecError(
                f"{', '.join(changed)}: --dataset {self.dataset} comes already split and filtered; these flags would "
                f"change its rows, so they are not applied to it; remove them"
            )

    def _check_files(self) -> None:
        dataset = DATASETS[self.dataset]
        for flag in FILE_FLAGS:
            value = getattr(self, flag)
            if value is not None and flag not in dataset.flags:
                users = ", ".join(name for name, d in DATASETS.items() if flag in d.flags)
                raise GrecError(f"--{flag}: not read by --dataset {self.dataset} (only by {users}); remove it")
            if value is None and flag in dataset.required and not self.download:
                raise GrecError(f"--{flag}: required with --dataset {self.dataset} ({dataset.files})")
            if value is not None and flag != "source" and not Path(value).is_file():
                raise GrecError(f"{value}: file not found (given as --{flag})")
        if self.download and not dataset.downloads:
            raise GrecError(f"--download: not available for --dataset {self.dataset}; give its files ({dataset.files})")
        if self.download and self.source is not None:
            raise GrecError("--download and --source: give one; --download fetches what --source would name")
        if self.source is not None and not Path(self.source).exists():
            raise GrecError(
                f"{self.source}: not found (given as --source; --dataset {self.dataset} reads {dataset.files})"
            )


PrepareConfig.__doc__ = (PrepareConfig.__doc__ or "").replace("{datasets}", dataset_help())
