"""The global temporal split, time windows and ratings filters, and the split tag later files carry."""

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from helpers import read_jsonl

from grec.base import assets
from grec.base.errors import GrecError
from grec.evaluate.run import EvaluateConfig, evaluate
from grec.prepare import PrepareConfig, prepare
from grec.prepare.sequences import Sequences
from grec.prepare.splits import leave_one_out, temporal


def seqs(rows: dict[str, list[tuple[str, float]]]) -> Sequences:
    users = list(rows)
    return Sequences(
        users,
        [[i for i, _ in rows[u]] for u in users],
        [np.array([t for _, t in rows[u]]) for u in users],
        Counter(),
        0,
    )


def by_split(split, max_history=50):
    return {name: list(split.records(name, max_history)) for name in ("train", "valid", "test")}


def test_temporal_cut_rules_on_a_small_log():
    log = seqs(
        {
            "u1": [("a", 1), ("b", 2), ("c", 3), ("d", 8)],
            "u2": [("d", 4), ("a", 5), ("b", 5), ("e", 9)],  # e: an item no training event has
            "u3": [("c", 5), ("a", 10)],
            "late": [("a", 11), ("b", 12)],  # first event after the cuts: no history to recommend from
        }
    )
    # 12 events; the training period ends at the 7th in time order (t=5), validation at the 10th (t=10);
    # three events share t=5 across the first cut: all of them are trained on
    split = temporal(log, (0.6, 0.2, 0.2))
    assert (split.info["train_end"], split.info["valid_end"]) == (5, 10)
    records = by_split(split)
    assert [(r["user_id"], r["target"]) for r in records["train"]] == [
        ("u1", "b"),
        ("u1", "c"),
        ("u2", "a"),
        ("u2", "b"),
    ]
    assert [(r["user_id"], r["history"], r["target"]) for r in records["valid"]] == [
        ("u1", ["a", "b", "c"], "d"),
        ("u3", ["c"], "a"),
    ]
    assert [(r["user_id"], r["history"], r["target"]) for r in records["test"]] == [("late", ["a"], "b")]
    assert split.info["dropped"] == {"test_events_without_history": 1, "valid_events_with_items_not_in_train": 1}
    assert all(r["split"].startswith("temporal:") for r in records["valid"] + records["test"])
    assert "split" not in records["train"][0]
    kept = temporal(log, (0.6, 0.2, 0.2), unseen="keep")
    assert [r["target"] for r in kept.records("valid", 50)] == ["d", "e", "a"]
    last = temporal(log, (0.6, 0.2, 0.2), train_windows="last")
    assert [r["target"] for r in last.records("train", 50)] == ["c", "b"]
    assert [r["history"] for r in split.records("valid", 2)][0] == ["b", "c"]  # max_history keeps the latest


def test_split_tags_name_the_records_so_equal_splits_match_and_others_differ():
    log = seqs({"u1": [("a", 1), ("b", 2), ("c", 3), ("d", 4)], "u2": [("b", 1), ("c", 2), ("a", 5)]})
    assert leave_one_out(log).tag("test") == leave_one_out(log).tag("test")
    assert leave_one_out(log).tag("test") != leave_one_out(log).tag("valid")
    assert leave_one_out(log).tag("test").startswith("loo:")


def raw_times():
    ratings = pd.read_parquet(assets.dataset_file("ml-100k-ratings"))
    first = ratings.sort_values("timestamp", kind="stable").drop_duplicates(["user_id", "movie_id"])
    return {(str(u), str(i)): t for u, i, t in zip(first.user_id, first.movie_id, first.timestamp)}


def test_temporal_split_of_ml100k_never_tests_before_training(tmp_path):
    out = tmp_path / "t"
    stats = prepare(PrepareConfig(dataset="ml-100k", out=str(out), split="temporal", ratios="0.8,0.1,0.1"))
    times = raw_times()
    span = {}
    for name in ("train", "valid", "test"):
        rows = read_jsonl(out / f"{name}.jsonl")
        assert len(rows) == stats["examples"][name] > 0
        span[name] = [times[r["user_id"], r["target"]] for r in rows]
        for r in rows[:500]:  # a history is the user's earlier events only
            assert all(times[r["user_id"], h] <= times[r["user_id"], r["target"]] for h in r["history"])
    assert max(span["train"]) < min(span["valid"]) and max(span["valid"]) < min(span["test"])
    trained = {r["target"] for r in read_jsonl(out / "train.jsonl")} | {
        h for r in read_jsonl(out / "train.jsonl") for h in r["history"]
    }
    assert {r["target"] for r in read_jsonl(out / "test.jsonl")} <= trained
    assert stats["split"]["protocol"] == "temporal" and stats["split"]["train_end"] == max(span["train"])
    # roughly 10% of the events are tested, counted as one record per event
    assert 0.05 < stats["examples"]["test"] / stats["interactions"] < 0.11
    tags = {r["split"] for r in read_jsonl(out / "test.jsonl")}
    assert tags == {stats["split"]["tags"]["test"]}


def test_time_window_and_min_rating_filter_before_the_split(tmp_path):
    ratings = pd.read_parquet(assets.dataset_file("ml-100k-ratings"))
    start, end = "1998-01-01", "1998-03-01T00:00:00Z"
    low, high = pd.Timestamp(start, tz="UTC").timestamp(), pd.Timestamp(end).timestamp()
    stats = prepare(PrepareConfig(dataset="ml-100k", out=str(tmp_path / "w"), start=start, end=end, min_rating=4))
    inside = ratings[(ratings.timestamp >= low) & (ratings.timestamp < high)]
    assert stats["removed"]["outside_time_window"] == len(ratings) - len(inside)
    assert stats["removed"]["below_min_rating"] == int((inside.rating < 4).sum())
    assert low <= stats["time_range"][0] and stats["time_range"][1] < high


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"split": "random"}, "--split: expected one of loo, temporal"),
        ({"split": "temporal", "ratios": "0.8,0.3"}, "--ratios: expected train,valid,test shares"),
        ({"split": "temporal", "ratios": "0.9,0.2,-0.1"}, "--ratios: expected"),
        ({"start": "2000-01-01", "end": "1999-01-01"}, "is not before --end"),
        ({"start": "yesterday"}, "--start: expected unix seconds or an ISO-8601 date"),
        ({"unseen_items": "maybe"}, "--unseen_items: expected 'drop' or 'keep'"),
        ({"rating_col": "stars"}, "--rating_col: only used with --dataset csv"),
    ],
)
def test_split_flags_are_checked(tmp_path, flags, message):
    with pytest.raises(GrecError, match=message):
        PrepareConfig(dataset="ml-100k", out=str(tmp_path / "x"), **flags)


def test_min_rating_on_a_source_without_ratings_says_so(tmp_path):
    (tmp_path / "i.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u,{k},{k}\n" for k in range(4)))
    (tmp_path / "m.csv").write_text("item_id,title\n" + "".join(f"{k},T{k}\n" for k in range(4)))
    cfg = PrepareConfig(
        dataset="csv", out=str(tmp_path / "o"), interactions=str(tmp_path / "i.csv"), items=str(tmp_path / "m.csv")
    )
    cfg.min_rating = 3
    with pytest.raises(GrecError, match="--min_rating: this source has no ratings"):
        prepare(cfg)


def test_evaluate_refuses_runs_on_different_splits(tmp_path):
    for name, tag in (("a", "loo:1111"), ("b", "temporal:2222")):
        rows = [{"user_id": "1", "target": "5", "predict": ["5", "6"], "split": tag}]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(GrecError, match="different data splits .*a.jsonl: loo:1111; b.jsonl: temporal:2222"):
        evaluate(EvaluateConfig(input_dir=str(tmp_path), plot=False))
    (tmp_path / "b.jsonl").unlink()
    (tmp_path / "c.jsonl").write_text('{"target": "5", "predict": ["6"]}\n')  # records no split: not checked
    assert set(evaluate(EvaluateConfig(input_dir=str(tmp_path), plot=False))) == {"a.jsonl", "c.jsonl"}
    assert np.isclose(evaluate(EvaluateConfig(input_dir=str(tmp_path), plot=False))["a.jsonl"]["HR@1"], 1.0)


def test_compact_train_sequences_give_every_consumer_the_same_examples(ml100k, tmp_path):
    from grec.base.sequences import training_windows, user_training_sequences
    from grec.infer.popularity import item_popularity
    from grec.records import RecordsConfig, build_records

    compact = tmp_path / "compact"
    stats = prepare(PrepareConfig(dataset="ml-100k", out=str(compact), train_format="sequences"))
    windows = read_jsonl(ml100k / "train.jsonl")
    lines = read_jsonl(compact / "train.jsonl")
    assert len(lines) == stats["examples"]["train_lines"] < len(windows) == stats["examples"]["train"]
    assert list(training_windows(lines)) == windows
    assert user_training_sequences(lines) == user_training_sequences(windows)
    assert item_popularity(compact) == item_popularity(ml100k)
    for data, out in ((ml100k, tmp_path / "r1"), (compact, tmp_path / "r2")):
        build_records(RecordsConfig(data=str(data), style="title", max_history=5, sample=300, out=str(out)))
    assert (tmp_path / "r1" / "train.json").read_text() == (tmp_path / "r2" / "train.json").read_text()
    assert (compact / "train.jsonl").stat().st_size < (ml100k / "train.jsonl").stat().st_size / 40  # 0.7 vs 31 MB
    with pytest.raises(GrecError, match="--train_format sequences holds every window"):
        PrepareConfig(dataset="ml-100k", out=str(tmp_path / "x"), train_format="sequences", train_windows="last")
