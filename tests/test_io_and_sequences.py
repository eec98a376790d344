"""Atomic writes, staged folders, k-core and leave-one-out against brute force."""

import json

import numpy as np
import pytest

from grec.base.errors import GrecError
from grec.base.folders import StagedDir
from grec.base.io import atomic_open, write_json
from grec.base.sid import SidMap
from grec.prepare.sequences import Sequences, kcore
from grec.prepare.splits import leave_one_out


def test_atomic_open_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "result.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write('{"v": 2')
            raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n  "v": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_staged_dir_replaces_own_files_keeps_others(tmp_path):
    final = tmp_path / "out"
    with StagedDir(final, "done.json") as tmp:
        (tmp / "a.txt").write_text("1")
        (tmp / "done.json").write_text("{}")
    (final / "other").mkdir()
    with pytest.raises(ValueError):
        with StagedDir(final, "done.json") as tmp:
            (tmp / "a.txt").write_text("2")
            raise ValueError
    assert (final / "a.txt").read_text() == "1"
    with StagedDir(final, "done.json") as tmp:
        (tmp / "a.txt").write_text("3")
        (tmp / "done.json").write_text("{}")
    assert (final / "a.txt").read_text() == "3" and (final / "other").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def brute_force_kcore(pairs, min_user, min_item):
    pairs = list(pairs)
    while True:
        users = {u: sum(1 for x, _ in pairs if x == u) for u, _ in pairs}
        items = {i: sum(1 for _, y in pairs if y == i) for _, i in pairs}
        kept = [(u, i) for u, i in pairs if users[u] >= min_user and items[i] >= min_item]
        if len(kept) == len(pairs):
            return kept
        pairs = kept


@pytest.mark.parametrize("seed", range(5))
def test_kcore_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 30, size=300)
    items = rng.zipf(1.6, size=300) % 40
    keep, _ = kcore(users, items, 5, 4)
    expected = brute_force_kcore(zip(users.tolist(), items.tolist()), 5, 4)
    assert list(zip(users[keep].tolist(), items[keep].tolist())) == expected


def test_leave_one_out_windows():
    seqs = Sequences(users=["u"], sequences=[list("abcdef")], times=[np.zeros(6)], removed=None, kcore_rounds=0)
    split = leave_one_out(seqs)
    train, valid, test = (list(split.records(name, max_history=2)) for name in ("train", "valid", "test"))
    assert test == [{"user_id": "u", "history": ["d", "e"], "target": "f", "split": split.tag("test")}]
    assert valid == [{"user_id": "u", "history": ["c", "d"], "target": "e", "split": split.tag("valid")}]
    assert [(r["history"], r["target"]) for r in train] == [(["a"], "b"), (["a", "b"], "c"), (["b", "c"], "d")]
    train = leave_one_out(seqs, train_windows="last").records("train", max_history=50)
    assert list(train) == [{"user_id": "u", "history": ["a", "b", "c"], "target": "d"}]


def test_staging_folders_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    import os
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()  # a process id that no longer runs
    final = tmp_path / "sid"
    stale = tmp_path / f".sid.{gone.pid}.k2j4.tmp"
    live = tmp_path / f".sid.{os.getpid()}.x8q1.tmp"  # another run of this process, still writing
    other = tmp_path / f".records.{gone.pid}.a1.tmp"  # another stage's: not this one's to remove
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "part.npy").write_bytes(b"half")
    with StagedDir(final, "done.json") as tmp:
        write_json(tmp / "done.json", {})
    assert not stale.exists() and live.exists() and other.exists()
    assert (final / "done.json").is_file()


def test_progress_in_a_log_file_is_a_few_plain_lines(capsys):
    """Not a terminal (as under pytest, CI or nohup): one line per tenth of the work and one at the end."""
    from grec.base.progress import LineProgress, progress

    bar = progress(range(250), desc="index: embed items", unit="batch")
    assert isinstance(bar, LineProgress)
    assert sum(1 for _ in bar) == 250
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and "\r" not in "".join(lines)
    assert lines[0].startswith("index: embed items: 25/250 batch (10%)")
    assert lines[-1].startswith("index: embed items: 250/250 batch (100%)")
    counter = progress(total=3, desc="infer: rank items", unit="user")
    counter.update(3)
    counter.set_postfix(users_per_s="4.2")
    counter.close()
    (line,) = capsys.readouterr().err.splitlines()  # reaching the total prints nothing until close
    assert line.startswith("infer: rank items: 3/3 user (100%), ") and line.endswith("s, users_per_s=4.2")


def test_sid_map_file_round_trips_ids_that_need_escaping(tmp_path):
    ids = ['say "hi"', "back\\slash", "Crème brûlée", "tab\there", "12"]
    sid_map = SidMap(ids, np.array([[0, 3], [1, 0], [0, 1], [2, 2], [11, 0]]))
    path = sid_map.save(tmp_path)
    assert json.loads(path.read_text()) == sid_map.to_json()
    assert len(path.read_text().splitlines()) == len(ids) + 2  # one item per line
    again = SidMap.load(tmp_path)
    assert again.item_ids == ids and np.array_equal(again.codes, sid_map.codes)
    assert again.item_of((11, 0)) == "12" and again.item_of((5, 5)) is None
    with pytest.raises(GrecError, match="share the same codes"):
        SidMap(["a", "b"], np.array([[1, 2], [1, 2]]))


def test_records_files_in_either_layout_round_trip(tmp_path):
    from grec.base.io import read_records, write_records

    rows = [{"target": "1", "predict": ["1", "2"]}, {"target": "3", "predict": []}]
    assert write_records(tmp_path / "bigrec.json", rows) == write_records(tmp_path / "grec.jsonl", rows) == 2
    assert (tmp_path / "bigrec.json").read_text().startswith("[\n")  # the name says a JSON list, as BIGRec writes
    assert json.loads((tmp_path / "grec.jsonl").read_text().splitlines()[1]) == rows[1]
    for name in ("bigrec.json", "grec.jsonl"):
        assert list(read_records(tmp_path / name)) == [(1, rows[0]), (2, rows[1])]
    (tmp_path / "bad.json").write_text('[{"target": "1"}, 7]')
    with pytest.raises(GrecError, match="bad.json: element 2 of the list is int, not a JSON object"):
        list(read_records(tmp_path / "bad.json"))
