"""Bad input: one clear line naming the file/line/field, exit status 1, nothing written."""

import json

import pytest
from helpers import leftovers

GOOD_ITEMS = "item_id,title\n1,One\n2,Two\n3,Three\n"


@pytest.fixture
def files(tmp_path):
    def write(name: str, text: str):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def check_error(grec_cli, tmp_path, args, *expected):
    out = tmp_path / "out"
    code, stdout, stderr = grec_cli("prepare", *args, "--out", out)
    assert code == 1, stderr
    message = stderr.strip().splitlines()[-1]
    assert message.startswith("error: ")
    for part in expected:
        assert part in message, message
    assert not out.exists()
    assert leftovers(tmp_path) == []
    return message


def test_missing_file(grec_cli, tmp_path, files):
    meta = files("meta.json", "{}\n")
    missing = tmp_path / "reviews.json.gz"
    check_error(
        grec_cli,
        tmp_path,
        ["--dataset", "amazon", "--reviews", missing, "--meta", meta],
        f"{missing}: file not found",
        "--reviews",
    )


def test_missing_grouplens_file(grec_cli, tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.item").write_text("")
    check_error(grec_cli, tmp_path, ["--source", folder], f"{folder / 'u.data'}: file not found")


def test_unknown_dataset(grec_cli, tmp_path):
    check_error(grec_cli, tmp_path, ["--dataset", "ml-2m"], "unknown data set 'ml-2m'", "ml-100k, ml-1m, ml-10m")


def test_flag_for_another_dataset(grec_cli, tmp_path, files):
    reviews = files("r.json", "")
    check_error(
        grec_cli,
        tmp_path,
        ["--reviews", reviews],
        "--reviews: not read by --dataset ml-100k (only by amazon, yelp, steam)",
    )


def test_bad_json_line(grec_cli, tmp_path, files):
    good = json.dumps({"reviewerID": "u", "asin": "a", "unixReviewTime": 1})
    reviews = files("reviews.json", f"{good}\n{good}\n{{'reviewerID': oops\n")
    meta = files("meta.json", json.dumps({"asin": "a", "title": "A"}) + "\n")
    check_error(
        grec_cli,
        tmp_path,
        ["--dataset", "amazon", "--reviews", reviews, "--meta", meta],
        f"{reviews}:3: not valid JSON",
    )


def test_wrong_column_count(grec_cli, tmp_path, files):
    inter = files("log.csv", "user_id,item_id,timestamp\nu,1,5\nu,2,6\nu,3,7,extra\n")
    items = files("items.csv", GOOD_ITEMS)
    check_error(
        grec_cli,
        tmp_path,
        ["--dataset", "csv", "--interactions", inter, "--items", items],
        f"{inter}:4: expected 3 columns like the header, got 4",
    )


def test_grouplens_wrong_column_count(grec_cli, tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "u.item").write_text("1|One|||x|" + "|".join(["0"] * 19) + "\n")
    (folder / "u.data").write_text("1\t1\t5\t100\n1\t1\t5\n")
    check_error(grec_cli, tmp_path, ["--source", folder], f"{folder / 'u.data'}:2: expected 4 tab-separated fields")


def test_non_numeric_timestamp(grec_cli, tmp_path, files):
    inter = files("log.tsv", "user_id\titem_id\ttimestamp\nu\t1\t5\nu\t2\tyesterday\n")
    items = files("items.csv", GOOD_ITEMS)
    check_error(
        grec_cli,
        tmp_path,
        ["--dataset", "csv", "--interactions", inter, "--items", items],
        f"{inter}:3: column 'timestamp' must be a timestamp (unix seconds, or ISO-8601",
        "'yesterday'",
    )


def test_missing_column(grec_cli, tmp_path, files):
    inter = files("log.csv", "user,item_id,timestamp\nu,1,5\n")
    items = files("items.csv", GOOD_ITEMS)
    check_error(
        grec_cli,
        tmp_path,
        ["--dataset", "csv", "--interactions", inter, "--items", items],
        f"{inter}:1: missing column 'user_id'",
        "header has: user, item_id, timestamp",
        "--*_col",
    )


def test_missing_jsonl_field(grec_cli, tmp_path, files):
    inter = files("log.jsonl", '{"user_id": 1, "item_id": 2, "timestamp": 3}\n{"user_id": 1, "item_id": 3}\n')
    items = files("items.csv", GOOD_ITEMS)
    check_error(
        grec_cli,
        tmp_path,
        ["--dataset", "csv", "--interactions", inter, "--items", items],
        f"{inter}:2: missing field 'timestamp'",
    )


def test_not_utf8(grec_cli, tmp_path, files):
    inter = files("log.csv", "user_id,item_id,timestamp\nu,1,5\n")
    items = tmp_path / "items.csv"
    items.write_bytes("item_id,title\n1,Amélie\n".encode("latin-1"))
    check_error(
        grec_cli,
        tmp_path,
        ["--dataset", "csv", "--interactions", inter, "--items", items],
        f"{items}:2: not utf-8 text at byte 18",
        "--encoding latin-1",
    )


def test_filtering_empties_dataset(grec_cli, tmp_path, files):
    inter = files("log.csv", "user_id,item_id,timestamp\nu,1,5\nu,2,6\nu,3,7\nv,1,1\n")
    items = files("items.csv", GOOD_ITEMS)
    check_error(
        grec_cli,
        tmp_path,
        ["--dataset", "csv", "--interactions", inter, "--items", items, "--min_user_inter", 4],
        "no interactions left after filtering",
        "--min_user_inter",
    )


def test_no_item_matches_metadata(grec_cli, tmp_path, files):
    inter = files("log.csv", "user_id,item_id,timestamp\nu,7,5\nu,8,6\nu,9,7\n")
    items = files("items.csv", GOOD_ITEMS)
    message = check_error(
        grec_cli,
        tmp_path,
        ["--dataset", "csv", "--interactions", inter, "--items", items],
        "no interactions left after filtering",
    )
    assert "'interactions_without_item_metadata': 3" in message


def test_items_without_metadata_are_counted_not_fatal(grec_cli, tmp_path, files):
    inter = files("log.csv", "user_id,item_id,timestamp\nu,1,5\nu,2,6\nu,3,7\nu,99,8\n")
    items = files("items.csv", GOOD_ITEMS)
    out = tmp_path / "out"
    code, _, _ = grec_cli("prepare", "--dataset", "csv", "--interactions", inter, "--items", items, "--out", out)
    assert code == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["removed"]["interactions_without_item_metadata"] == 1
    assert stats["interactions"] == 3


def test_existing_output_with_other_settings(grec_cli, tmp_path, files):
    inter = files("log.csv", "user_id,item_id,timestamp\nu,1,5\nu,2,6\nu,3,7\nv,3,1\nv,2,2\nv,1,3\n")
    items = files("items.csv", GOOD_ITEMS)
    out = tmp_path / "out"
    base = ["prepare", "--dataset", "csv", "--interactions", inter, "--items", items, "--out", out]
    assert grec_cli(*base)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    code, _, stderr = grec_cli(*base, "--max_history", 1)
    assert code == 1
    assert f"{out}: already holds a run with different settings (max_history differ)" in stderr
    assert "--overwrite" in stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    code, _, stderr = grec_cli(*base)
    assert code == 0 and "nothing to do" in stderr

    # an overwrite that fails on bad input leaves the previous result intact
    bad = files("bad.csv", "user_id,item_id,timestamp\nu,1,soon\n")
    code, _, stderr = grec_cli(
        "prepare", "--dataset", "csv", "--interactions", bad, "--items", items, "--out", out, "--overwrite"
    )
    assert code == 1 and f"{bad}:2" in stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert leftovers(tmp_path) == []

    code, _, _ = grec_cli(*base, "--max_history", 1, "--overwrite")
    assert code == 0
    assert json.loads((out / "test.jsonl").read_text().splitlines()[0])["history"] == ["2"]


def test_unrelated_files_in_output_folder_are_kept(grec_cli, tmp_path, files):
    inter = files("log.csv", "user_id,item_id,timestamp\nu,1,5\nu,2,6\nu,3,7\n")
    items = files("items.csv", GOOD_ITEMS)
    out = tmp_path / "out"
    (out / "sid").mkdir(parents=True)
    (out / "sid" / "keep.txt").write_text("later stage")
    args = ("prepare", "--dataset", "csv", "--interactions", inter, "--items", items, "--out", out)
    code, _, err = grec_cli(*args)  # a folder prepare did not write is refused: it may be anything
    assert code == 1 and "not empty (sid) and holds no settings.json of this stage" in err
    code, _, _ = grec_cli(*args, "--overwrite")
    assert code == 0
    assert (out / "sid" / "keep.txt").read_text() == "later stage"
    assert (out / "settings.json").is_file()
