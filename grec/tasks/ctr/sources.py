"""Where CTR rows come from: the packaged ML-100K and Adult tables, or any CSV/TSV/JSONL file.

A source gives its default feature config and a ``rows()`` iterator of ``(where, row)``; rows of
a file are streamed, never loaded whole. Registered in ``TASK_DATASETS`` so configs name them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.registry import TASK_DATASETS


@dataclass
class RowSource:
    name: str
    rows: Callable[[], Iterator[tuple[str, dict]]]
    features: dict | None  # the default feature config, or None when the user must give one


ML100K_FEATURES = {
    "label": {"column": "rating", "threshold": 4},
    "features": [
        {"name": "user_id"},
        {"name": "item_id"},
        {"name": "age", "type": "numeric", "transform": "bucket", "buckets": 10},
        {"name": "gender"},
        {"name": "occupation"},
        {"name": "zip_prefix"},
        {"name": "genres", "type": "sequence", "sep": "|", "max_len": 6},
        {"name": "year", "type": "numeric", "transform": "bucket", "buckets": 16},
    ],
}

ADULT_FEATURES = {
    "label": {"column": "income", "classes": ["<=50K", ">50K"]},
    "features": [
        {"name": "age", "type": "numeric", "transform": "bucket", "buckets": 10},
        {"name": "workclass"},
        {"name": "education"},
        {"name": "marital-status"},
        {"name": "occupation"},
        {"name": "relationship"},
        {"name": "race"},
        {"name": "gender"},
        {"name": "native-country"},
        {"name": "capital-gain", "type": "numeric", "transform": "log"},
        {"name": "capital-loss", "type": "numeric", "transform": "log"},
        {"name": "hours-per-week", "type": "numeric", "transform": "bucket", "buckets": 10},
        {"name": "educational-num", "type": "numeric", "transform": "minmax"},
    ],
}


@TASK_DATASETS.register("ml-100k")
def ml100k() -> RowSource:
    """ML-100K ratings joined with user and movie attributes, in time order."""
    import pandas as pd

    from grec.base.assets import dataset_file

    ratings = pd.read_parquet(dataset_file("ml-100k-ratings")).rename(columns={"movie_id": "item_id"})
    users = pd.read_parquet(dataset_file("ml-100k-users"))
    items = pd.read_parquet(dataset_file("ml-100k-items")).rename(columns={"movie_id": "item_id"})
    genre_columns = list(items.columns[5:])
    items["genres"] = [
        "|".join(g for g, flag in zip(genre_columns, flags) if flag) for flags in items[genre_columns].to_numpy()
    ]
    items["year"] = items["release_date"].str[-4:]
    users["zip_prefix"] = users["zip_code"].astype(str).str[:3]
    table = ratings.merge(users[["user_id", "age", "gender", "occupation", "zip_prefix"]], on="user_id")
    table = table.merge(items[["item_id", "genres", "year"]], on="item_id")
    table = table.sort_values(["timestamp", "user_id", "item_id"], kind="stable").reset_index(drop=True)
    records = table.astype({"user_id": str, "item_id": str}).to_dict("records")

    def rows() -> Iterator[tuple[str, dict]]:
        for k, row in enumerate(records):
            yield f"ml-100k row {k + 1}", row

    return RowSource("ml-100k", rows, ML100K_FEATURES)


@TASK_DATASETS.register("adult")
def adult() -> RowSource:
    """The Adult census table (label: income > 50K), in a fixed seeded shuffle."""
    import pandas as pd

    from grec.base.assets import dataset_file

    table = pd.read_parquet(dataset_file("adult")).sample(frac=1.0, random_state=0).reset_index(drop=True)
    records = table.to_dict("records")

    def rows() -> Iterator[tuple[str, dict]]:
        for k, row in enumerate(records):
            yield f"adult row {k + 1}", row

    return RowSource("adult", rows, ADULT_FEATURES)


def file_source(path: str) -> RowSource:
    """A CSV/TSV (header row) or JSONL file, streamed; rows keep their order."""
    from grec.base.tables import read_table

    if not Path(path).is_file():
        raise GrecError(
            f"{path}: data file not found (given as --data); or name a dataset: {', '.join(TASK_DATASETS.names())}"
        )

    def rows() -> Iterator[tuple[str, dict]]:
        for line, row in read_table(path, []):
            yield f"{path}:{line}", row

    return RowSource(str(path), rows, None)


def resolve(data: str | None) -> RowSource:
    name = data or "ml-100k"
    if name in TASK_DATASETS:
        return TASK_DATASETS.get(name)()
    return file_source(name)
