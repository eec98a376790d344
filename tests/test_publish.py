"""Publishing output folders under hostile use: a kill at every step of a commit, two writers at once,
folders a stage did not write."""

import json
import subprocess
import sys
import textwrap

import pytest

from grec.base.errors import GrecError
from grec.base.folders import StagedDir, claim
from grec.base.io import read_json, read_jsonl, stage_is_current, write_json

# a child process that publishes version 2 of a folder and SIGKILLs itself at its KILL-th rename
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from grec.base.folders import StagedDir
    from grec.base.io import write_json
    final, merge, kill = sys.argv[1], sys.argv[2] == "merge", int(sys.argv[3])
    real, calls = os.replace, [0]
    def replace(*args):
        calls[0] += 1
        if calls[0] == kill:
            os.kill(os.getpid(), signal.SIGKILL)
        real(*args)
    os.replace = replace
    with StagedDir(final, "done.json", merge=merge) as tmp:
        for name in ("a.json", "b.json", "new.json", "done.json"):
            write_json(tmp / name, {"v": 2})
    """
)


def publish_v1(final):
    with StagedDir(final, "done.json") as tmp:
        for name in ("a.json", "b.json", "done.json"):
            write_json(tmp / name, {"v": 1})
    (final / "later-stage").mkdir()  # a later stage's folder inside this one


@pytest.mark.parametrize("mode", ["merge", "whole"])
def test_a_kill_at_any_step_of_a_commit_leaves_the_old_output_or_the_new_one(tmp_path, mode):
    outcomes = []
    for kill in range(1, 14):
        final = tmp_path / f"k{kill}" / "out"
        publish_v1(final)
        code = subprocess.run([sys.executable, "-c", CHILD, str(final), mode, str(kill)]).returncode
        versions = {read_json(final / name)["v"] for name in ("a.json", "b.json", "done.json")}  # readers recover
        assert len(versions) == 1, f"killed at rename {kill}: a mix of outputs {versions}"
        (version,) = versions
        assert (final / "new.json").exists() == (version == 2)
        assert (final / "later-stage").is_dir() == (mode == "merge" or version == 1)
        left = sorted(p.name for p in final.parent.iterdir() if not p.name.endswith((".tmp", ".lock")))
        assert left == ["out"], f"killed at rename {kill}: left {left}"  # a dead writer's .tmp and .lock are harmless
        outcomes.append((code, version))
    assert outcomes[0] == (-9, 1) and outcomes[-1] == (0, 2)  # killed before any rename; never killed
    assert {v for _, v in outcomes} == {1, 2}


HOLDER = textwrap.dedent(
    """
    import sys, time
    from grec.base.folders import claim
    with claim(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
    """
)


def test_a_second_writer_of_a_folder_is_refused_while_the_first_runs(tmp_path, ml100k):
    from grec.prepare import PrepareConfig, prepare

    out = tmp_path / "data"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(GrecError, match=rf"another grec run \(process {holder.pid}\) is writing this folder"):
            prepare(PrepareConfig(dataset="ml-100k", out=str(out), max_history=5))
    finally:
        holder.kill()
        holder.wait()
    with claim(out):  # the lock dies with its process
        with claim(out):  # and is re-entrant within one
            pass


def test_a_stage_refuses_a_non_empty_folder_it_did_not_write(tmp_path):
    out = tmp_path / "home"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(GrecError, match=r"not empty \(thesis.tex\) and holds no settings.json of this stage"):
        stage_is_current(out, {"seed": 1}, ("items.jsonl",), overwrite=False, marker="settings.json")
    assert stage_is_current(out, {"seed": 1}, ("items.jsonl",), overwrite=True, marker="settings.json") is False
    from grec.tokenizer import TokenizerConfig

    (tmp_path / "corpus.txt").write_text("a b c\n")
    with pytest.raises(GrecError, match=r"home: not empty \(thesis.tex\) and holds no tokenizer_config.json"):
        TokenizerConfig(corpus=[str(tmp_path / "corpus.txt")], out=str(out))
    TokenizerConfig(corpus=[str(tmp_path / "corpus.txt")], out=str(out), overwrite=True)
    assert (out / "thesis.tex").read_text() == "years of work"


def test_readers_roll_back_a_commit_cut_short(tmp_path):
    final = tmp_path / "prepared"
    publish_v1(final)
    (final / "train.jsonl").write_text('{"user_id": "u", "history": ["1"], "target": "2"}\n')
    backup = tmp_path / ".prepared.99999999.x.old"
    backup.mkdir()
    (final / "train.jsonl").rename(backup / "train.jsonl")  # as a killed commit leaves it: old file moved away
    (final / "train.jsonl").write_text('{"user_id": "u", "history": ["9"], "target": "8"}\n')
    journal = {"backup": backup.name, "names": ["train.jsonl", "done.json"], "existed": ["train.jsonl", "done.json"]}
    (tmp_path / ".prepared.commit.json").write_text(json.dumps(journal))
    assert [row["history"] for _, row in read_jsonl(final / "train.jsonl")] == [["1"]]
    assert not backup.exists() and not (tmp_path / ".prepared.commit.json").exists()
