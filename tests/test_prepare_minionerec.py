"""MiniOneRec's processed CSVs read as they were split (``--split given``), and their bad-input cases."""

import csv
import random

import pytest
from helpers import read_jsonl

from grec.base.errors import GrecError
from grec.prepare import PrepareConfig, prepare

HEADER = ["user_id", "history_item_title", "item_title", "history_item_id", "item_id", "history_item_sid", "item_sid"]
CATEGORY = "Industrial_and_Scientific_5_2016-10-2018-11"


def title(item):
    return f'Item {item}, "model" {item % 7}'  # a comma and quotes: the CSV must quote them


def minionerec_rows(users=12, seed=0):
    """Rows as MiniOneRec's pipeline makes them: per user, every item after the first is a target with
    at most 10 items before it; all rows sorted by target time and cut 8:1:1 by row count."""
    rng = random.Random(seed)
    events = []
    for user in range(users):
        items = [rng.randrange(30) for _ in range(rng.randrange(3, 16))]
        times = sorted(rng.randrange(1000) for _ in items)
        for i in range(1, len(items)):
            events.append((times[i], user, items[max(0, i - 10) : i], items[i]))
    events.sort(key=lambda e: e[0])
    rows = [
        [f"A{user}", repr([title(h) for h in hist]), title(item), repr([str(h) for h in hist]), str(item),
         repr([f"<a_{h}><b_{h % 3}>" for h in hist]), f"<a_{item}><b_{item % 3}>"]
        for _, user, hist, item in events
    ]  # fmt: skip
    train, valid = int(len(rows) * 0.8), int(len(rows) * 0.9)
    return {"train": rows[:train], "valid": rows[train:valid], "test": rows[valid:]}


def write_split(root, splits, nested=True, delimiter=",", encoding="utf-8", header=HEADER):
    for name, rows in splits.items():
        path = root / name / f"{CATEGORY}.csv" if nested else root / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding=encoding) as f:
            writer = csv.writer(f, delimiter=delimiter)
            writer.writerow(header)
            writer.writerows(rows)
    return root


def test_rows_become_records_of_their_own_split(tmp_path):
    splits = minionerec_rows()
    source = write_split(tmp_path / "Amazon", splits)
    out = tmp_path / "o"
    stats = prepare(PrepareConfig(dataset="minionerec", source=str(source), out=str(out), max_history=10))
    for name in ("train", "valid", "test"):
        written = read_jsonl(out / f"{name}.jsonl")
        given = [(r[0], eval(r[3]), r[4]) for r in splits[name]]
        assert sorted((r["user_id"], r["history"], r["target"]) for r in written) == sorted(given)
        assert stats["examples"][name] == len(given)
    assert stats["split"]["protocol"] == "given"
    assert stats["split"]["tags"]["test"].startswith("given:")
    items = {r["item_id"]: r for r in read_jsonl(out / "items.jsonl")}
    assert items["7"]["title"] == title(7)
    # the whole sequences are rebuilt: with the default 50 a long user's test history goes past MiniOneRec's 10
    prepare(PrepareConfig(dataset="minionerec", source=str(source), out=str(tmp_path / "p")))
    longest = max(len(r["history"]) for r in read_jsonl(tmp_path / "p" / "test.jsonl"))
    assert longest > 10


def test_flat_layout_category_choice_and_flags_a_split_log_refuses(tmp_path):
    splits = minionerec_rows(users=6, seed=1)
    flat = write_split(tmp_path / "flat", splits, nested=False)
    stats = prepare(PrepareConfig(dataset="minionerec", source=str(flat), out=str(tmp_path / "o")))
    assert stats["examples"]["test"] == len(splits["test"])
    nested = write_split(tmp_path / "two", splits)
    (nested / "train" / "Office_Products_5.csv").write_text(",".join(HEADER) + "\n")
    with pytest.raises(GrecError, match=r"train: 2 CSV files \(Industrial.*Office_Products_5.csv\); name the one"):
        prepare(PrepareConfig(dataset="minionerec", source=str(nested), out=str(tmp_path / "p")))
    prepare(PrepareConfig(dataset="minionerec", source=str(nested), category="Industrial", out=str(tmp_path / "p")))
    with pytest.raises(GrecError, match="comes already split; drop --split"):
        PrepareConfig(dataset="minionerec", source=str(flat), split="temporal", out=str(tmp_path / "q"))
    with pytest.raises(GrecError, match="--sample_users, --min_user_inter: --dataset minionerec comes already split"):
        PrepareConfig(dataset="minionerec", source=str(flat), sample_users=3, min_user_inter=2, out=str(tmp_path / "q"))
    with pytest.raises(GrecError, match="--split given: only for data sets that come split"):
        PrepareConfig(dataset="ml-100k", split="given", out=str(tmp_path / "q"))


def broken_history(splits):
    row = list(splits["test"][-1])
    row[3], row[1] = repr(["29", "28"]), repr([title(29), title(28)])
    return {**splits, "test": [*splits["test"][:-1], row]}


@pytest.mark.parametrize(
    "case, message",
    [
        ("tabs", r"train/Industrial\S*.csv:1: missing column 'user_id'.*--sep if the delimiter is wrong"),
        ("no_title_column", r"valid/Industrial\S*.csv:1: missing column 'item_title'"),
        ("latin1", r"train/Industrial\S*.csv:\d+: not utf-8 text at byte"),
        ("bad_list", r"train/Industrial\S*.csv:3: column 'history_item_id' must be a Python list"),
        ("unchained", r"test/Industrial\S*.csv:\d+: the history of user 'A\d+' does not continue their earlier rows"),
    ],
)
def test_bad_files_name_file_line_and_leave_nothing(tmp_path, case, message):
    splits = minionerec_rows(users=8, seed=2)
    source = tmp_path / "Amazon"
    if case == "tabs":
        write_split(source, splits, delimiter="\t")
    elif case == "no_title_column":
        write_split(source, {"train": splits["train"]})
        write_split(source, {n: [r[:2] + r[3:] for r in splits[n]] for n in ("valid", "test")},
                    header=HEADER[:2] + HEADER[3:])  # fmt: skip
    elif case == "latin1":
        splits["train"][0][2] = "Crème brûlée torch"
        write_split(source, splits, encoding="latin-1")
    elif case == "bad_list":
        splits["train"][1][3] = "[12, 7"
        write_split(source, splits)
    else:
        write_split(source, broken_history(splits))
    with pytest.raises(GrecError, match=message):
        prepare(PrepareConfig(dataset="minionerec", source=str(source), out=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()
