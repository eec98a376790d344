"""Inputs a hostile or careless user gives: each a one-line error naming the file, line or field, exit 1."""

import json
import re
import shutil

import numpy as np
import pytest

from grec.base.errors import GrecError


@pytest.fixture
def prepared(ml100k, tmp_path):
    """A copy of prepared ML-100K whose files a test may spoil, its splits cut to their first 300 lines."""
    folder = tmp_path / "data"
    shutil.copytree(ml100k, folder)
    for name in ("train", "valid", "test"):
        path = folder / f"{name}.jsonl"
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:300]))
    return folder


def spoil_first_row(path, **change):
    lines = path.read_text().splitlines()
    row = json.loads(lines[0])
    row.update(change)
    for key in [k for k, v in change.items() if v is None]:
        del row[key]
    path.write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"history": "12"}, r"test.jsonl:1: 'history' must be a list of item ids \(strings or integers\), got \"12\""),
        ({"history": None}, r"test.jsonl:1: 'history' must be a list of item ids .*got nothing"),
        ({"history": ["1", None]}, r"test.jsonl:1: 'history' must be a list of item ids .*got \[\"1\", null\]"),
        ({"target": ["5"]}, r"test.jsonl:1: 'target' must be an item id, got \[\"5\"\]"),
        ({"user_id": None}, r"test.jsonl:1: no 'user_id' field"),
    ],
)
def test_a_split_row_of_the_wrong_shape_is_named_by_every_reader(grec_cli, prepared, tmp_path, change, message):
    spoil_first_row(prepared / "test.jsonl", **change)
    for args in (
        ("popularity", "--data", prepared, "--out", tmp_path / "pop.jsonl"),
        ("records", "--data", prepared, "--style", "title", "--out", tmp_path / "records"),
    ):
        code, _, err = grec_cli(*args)
        assert code == 1 and len(err.strip().splitlines()) == 1 and re.search(message, err), err


def test_embeddings_that_cannot_tell_items_apart_are_refused(grec_cli, prepared, tmp_path):
    for name, rows in (("zeros", np.zeros((1682, 8))), ("constant", np.ones((1682, 8)))):
        np.save(tmp_path / f"{name}.npy", rows.astype(np.float32))
        code, _, err = grec_cli(
            "index", "--data", prepared, "--out", tmp_path / name, "--embeddings", tmp_path / f"{name}.npy"
        )
        assert code == 1 and f"all 1682 rows are the same vector ({name})" in err, err
        assert not (tmp_path / name).exists()


@pytest.mark.parametrize(
    "args",
    [
        ("evaluate", "--input_dir", ".", "--topk", "0"),
        ("evaluate", "--input_dir", ".", "--topk", "[5, -1]"),
        ("popularity", "--data", "{data}", "--topk", "0"),
        ("infer", "--checkpoint", "x", "--test_data_path", "y", "--result_json_data", "z.jsonl", "--sample", "-5"),
        ("records", "--data", "{data}", "--style", "title", "--sample", "-2"),
    ],
)
def test_counts_below_one_are_refused(grec_cli, ml100k, args):
    code, _, err = grec_cli(*[str(a).replace("{data}", str(ml100k)) for a in args])
    assert code == 1 and ("must be at least 1" in err or "a positive number of records, or -1" in err), err


def test_a_checkpoints_prompt_settings_are_checked(tmp_path):
    from grec.base.templates import check_prompt_settings

    check_prompt_settings({"style": "sid", "prompt": "plain", "max_history": 50}, "records.json")
    for bad, message in (
        ({"style": "banana"}, "style must be one of sid, title, got 'banana'"),
        ({"prompt": "haiku"}, "prompt must be one of alpaca, plain, chat, got 'haiku'"),
        ({"max_history": "50"}, "max_history must be an integer >= 1, got '50'"),
        ({"max_history": True}, "max_history must be an integer >= 1, got True"),
    ):
        with pytest.raises(GrecError, match=f"^ckpt/records.json: {message}$"):
            check_prompt_settings(bad, "ckpt/records.json")
