"""``grec popularity``: the most-popular baseline, written as a result file that evaluate.py scores.

An item's popularity is the number of training users who interacted with it (every item of
every train.jsonl line counts once per user). Each test user gets the most popular items, with
their history removed when ``--exclude_history`` (the protocol of bench/quality.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.io import read_jsonl, write_json, write_records
from grec.base.sequences import read_split, user_training_sequences


@dataclass
class PopularityConfig:
    """grec popularity: rank items by training popularity (or item-kNN) for every test user (a baseline result file).

    Example: grec popularity --data data/ml-100k --out outputs/popularity/test.jsonl

    Args:
        data: a folder written by grec prepare.
        out: the result file to write (JSON lines with "predict" and "predict_scores").
        split: which split's users to rank for (test or valid).
        topk: items per user.
        method: popularity (the items most training users saw) or itemknn (the items most often seen with the user's last 3 items by the same training users, grec/models/itemknn.py; ties by popularity).
        exclude_history: leave the items of the user's split-row history (the last --max_history items prepare kept, not older ones) out of their list.
        scores: also write item id -> popularity in [0, 1] to this JSON file (for inference.py --ci_score).
        cf_model: also write an item-kNN model (item co-occurrence over the training split) to this .npz file (for inference.py --cf_model).
    """

    data: str = "data/ml-100k"
    out: str = "outputs/popularity/test.jsonl"
    split: str = "test"
    topk: int = 50
    method: str = "popularity"
    exclude_history: bool = True
    scores: str | None = None
    cf_model: str | None = None

    def __post_init__(self) -> None:
        if self.method not in ("popularity", "itemknn"):
            raise GrecError(f"--method: expected popularity or itemknn, got {self.method!r}")
        if self.topk < 1:
            raise GrecError(f"--topk: items per user must be at least 1, got {self.topk}")
        if self.split not in ("test", "valid"):
            raise GrecError(f"--split: expected test or valid, got {self.split!r}")
        for name in ("train.jsonl", f"{self.split}.jsonl"):
            if not (Path(self.data) / name).is_file():
                raise GrecError(f"{Path(self.data) / name}: not found; run grec prepare first or fix --data")


def training_sequences(data: str | Path) -> dict:
    """Each training user's whole item sequence (train.jsonl)."""
    return user_training_sequences(read_split(Path(data) / "train.jsonl"))


def item_popularity(data: str | Path, sequences: dict | None = None) -> Counter:
    """Training users per item (``sequences``: the training sequences, when already read)."""
    sequences = training_sequences(data) if sequences is None else sequences
    return Counter(item for items in sequences.values() for item in set(map(str, items)))


def item_knn(data: str | Path, sequences: dict | None = None):
    """The item-kNN model of the training split, columns in items.jsonl order."""
    from grec.models.itemknn import ItemKNN

    catalog = [str(row["item_id"]) for _, row in read_jsonl(Path(data) / "items.jsonl")]
    return ItemKNN.fit(training_sequences(data) if sequences is None else sequences, catalog)


def popularity(cfg: PopularityConfig) -> int:
    """Write the baseline's result file; return the number of users ranked."""
    sequences = training_sequences(cfg.data)  # read once for the counts and the kNN model
    counts = item_popularity(cfg.data, sequences)
    ranked = [item for item, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    knn = item_knn(cfg.data, sequences) if cfg.method == "itemknn" or cfg.cf_model else None

    mark = {"exclude_history": cfg.exclude_history}

    def rows():
        for row in read_split(Path(cfg.data) / f"{cfg.split}.jsonl"):
            history = set(map(str, row["history"])) if cfg.exclude_history else set()
            if cfg.method == "itemknn":
                scores = dict(zip(knn.item_ids, knn.scores([row["history"]])[0].tolist()))
                order = sorted(ranked, key=lambda item: -scores.get(item, 0.0))  # stable: ties stay by popularity
                predict = [item for item in order if item not in history][: cfg.topk]
                yield {
                    **row,
                    "predict": predict,
                    "predict_scores": [round(scores.get(i, 0.0), 6) for i in predict],
                    **mark,
                }
                continue
            predict = [item for item in ranked[: cfg.topk + len(history)] if item not in history][: cfg.topk]
            yield {**row, "predict": predict, "predict_scores": [counts[i] for i in predict], **mark}

    users = write_records(cfg.out, rows())
    if cfg.scores:
        top = max(counts.values())
        write_json(cfg.scores, {item: round(n / top, 6) for item, n in counts.items()})
    if cfg.cf_model:
        knn.save(cfg.cf_model)
    return users
