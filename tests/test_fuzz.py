"""Fuzzing the readers: random bytes, cut lines, wrong types, huge fields and odd unicode give a GrecError
that names the file (or the flag), and nothing is written; never another exception type."""

import json
import random

import pytest

from grec.base.config import load_config
from grec.base.errors import GrecError
from grec.base.io import read_jsonl
from grec.base.records import load_records
from grec.evaluate.run import score_file
from grec.prepare import PrepareConfig, prepare
from grec.recipes import RunConfig, check_stages, load_recipe

ODD = ["", "null", "[]", "{}", "1e999", "-0", '"\\ud800"', "\u202e\u0000", "x" * 100_000, "🙂" * 50, "NaN", "true"]


def mutate(text: str, rng: random.Random) -> bytes:
    """One random damage to ``text``: bytes, a cut, a swapped value, a dropped or doubled line."""
    data = text.encode("utf-8")
    kind = rng.randrange(6)
    if kind == 0:  # random bytes somewhere
        at = rng.randrange(len(data) + 1)
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12))) + data[at:]
    if kind == 1:  # cut short
        return data[: rng.randrange(len(data) + 1)]
    if kind == 2:  # a value replaced by an odd one
        pieces = text.split(":")
        k = rng.randrange(len(pieces))
        pieces[k] = " " + rng.choice(ODD) + (pieces[k][pieces[k].find(",") :] if "," in pieces[k] else "")
        return ":".join(pieces).encode("utf-8", "surrogatepass")
    lines = text.splitlines(keepends=True)
    k = rng.randrange(len(lines))
    if kind == 3:
        del lines[k]
    elif kind == 4:
        lines.insert(k, lines[k])
    else:
        lines[k] = rng.choice(ODD) + "\n"
    return "".join(lines).encode("utf-8", "surrogatepass")


def outcome(call, name: str) -> str:
    try:
        call()
    except GrecError as err:
        assert name in str(err), f"the message does not name {name}: {err}"
        return "refused"
    return "read"


RESULTS = "".join(json.dumps({"target": str(t), "predict": [str(t), "9"], "history": ["1"]}) + "\n" for t in range(8))
RECORDS = json.dumps(
    [{"instruction": "Recommend.", "input": f"<a_{k}>", "output": "<b_1>", "target": str(k)} for k in range(6)]
)


@pytest.mark.parametrize(
    "reader, text, name",
    [
        (lambda p: list(read_jsonl(p)), RESULTS, "results.jsonl"),
        (lambda p: score_file(p, [1, 5], {"1", "2", "9"}), RESULTS, "results.jsonl"),
        (lambda p: load_records([str(p)]), RECORDS, "records.json"),
    ],
    ids=["jsonl", "result-file", "records"],
)
def test_damaged_files_are_read_or_refused_by_name(tmp_path, reader, text, name):
    rng = random.Random(7)
    seen = {"read": 0, "refused": 0}
    for _ in range(150):
        path = tmp_path / name
        path.write_bytes(mutate(text, rng))
        seen[outcome(lambda: reader(path), name)] += 1
    assert seen["refused"] > 30 and seen["read"] > 5  # both kinds of case were exercised


def test_damaged_interaction_logs_are_refused_by_file_and_nothing_is_written(tmp_path):
    rng = random.Random(11)
    log = "user_id,item_id,timestamp\n" + "".join(f"u{u},{i},{u * 10 + i}\n" for u in range(4) for i in range(5))
    items = tmp_path / "items.csv"
    items.write_text("item_id,title\n" + "".join(f"{i},Title {i}\n" for i in range(5)))
    refused = 0
    for case in range(60):
        inter = tmp_path / "log.csv"
        inter.write_bytes(mutate(log, rng))
        out = tmp_path / f"out{case}"
        config = PrepareConfig(dataset="csv", interactions=str(inter), items=str(items), out=str(out))
        if outcome(lambda: prepare(config), "log.csv") == "refused":
            refused += 1
            assert not out.exists()
    assert refused > 10
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_damaged_overrides_are_refused_by_flag():
    rng = random.Random(3)
    good = "{records: {sample: 8}, train: {num_epochs: 1, learning_rate: 0.001}, infer: {sample: 4}}"
    refused = 0
    for _ in range(120):
        text = mutate(good, rng).decode("utf-8", "replace")
        try:
            check_stages(load_recipe(load_config(RunConfig, None, recipe="tiger", overrides=text)))
        except GrecError as err:
            refused += 1
            assert "--overrides" in str(err) or "recipe" in str(err), err
    assert refused > 20
