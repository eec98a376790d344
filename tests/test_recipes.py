"""`grec run --recipe`: every recipe end to end on real ML-100K with a reduced budget, and skipping."""

import json
import shutil

import pytest
from helpers import read_jsonl

from grec.errors import GrecError
from grec.recipes import RECIPE_DIR, RunConfig, load_recipe


@pytest.fixture
def data(ml100k, tmp_path):
    """A private copy of the prepared folder: recipes write SID folders into it."""
    copy = tmp_path / "ml-100k"
    shutil.copytree(ml100k, copy)
    return copy


def test_every_recipe_states_its_command_and_loads():
    names = sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))
    assert names == ["bigrec", "demo", "lcrec", "sasrec", "tiger"]
    for name in names:
        first = (RECIPE_DIR / f"{name}.yaml").read_text().splitlines()[0]
        assert first.startswith(f"# grec run --recipe {name} ")
        stages = load_recipe(RunConfig(recipe=name, data="D", out="O"))
        assert stages[0] == ("prepare", {"dataset": "ml-100k", "out": "D"}) and stages[-1][0] == "evaluate"
    with pytest.raises(GrecError, match="unknown recipe 'nope'; recipes in .*: bigrec, demo, lcrec, sasrec, tiger"):
        load_recipe(RunConfig(recipe="nope"))
    with pytest.raises(GrecError, match="--overrides: unknown stage 'trian'"):
        load_recipe(RunConfig(recipe="tiger", overrides={"trian": {}}))


def test_tiger_recipe_runs_end_to_end_then_skips_finished_stages(data, tmp_path, grec_cli, caplog):
    out = tmp_path / "tiger"
    small = "{records: {sample: 256}, train: {num_epochs: 1, val_sample: 16}, infer: {sample: 24}}"
    code, stdout, err = grec_cli("run", "--recipe", "tiger", "--data", data, "--out", out, "--overrides", small)
    assert code == 0, err
    assert "| tiger.json | 24 |" in stdout
    results = json.loads((out / "results" / "tiger.json").read_text())
    catalog = {r["item_id"] for r in read_jsonl(data / "items.jsonl")}
    assert all(len(r["predict"]) == 20 and set(r["predict"]) <= catalog for r in results)
    assert all(not set(r["predict"]) & set(r["history"]) for r in results)
    assert (out / "results" / "metrics.png").is_file()
    code, stdout, err = grec_cli("run", "--recipe", "tiger", "--data", data, "--out", out, "--overrides", small)
    assert code == 0 and err.count("done before with these settings; skipped") == 6
    assert "| tiger.json | 24 |" in stdout


def test_sasrec_recipe_beats_popularity(data, tmp_path, grec_cli):
    out = tmp_path / "sasrec"
    code, stdout, err = grec_cli("run", "--recipe", "sasrec", "--data", data, "--out", out, "--overrides",
                                 "{train-task: {num_epochs: 2, data_args: {repeat: 10}}}")  # fmt: skip
    assert code == 0, err
    table = json.loads((out / "results" / "metrics.json").read_text())
    assert table["sasrec.jsonl"]["records"] == table["popularity.jsonl"]["records"] == 943
    assert table["popularity.jsonl"]["NDCG@10"] > 0.02  # popularity is a real baseline on ML-100K
    assert table["sasrec.jsonl"]["NDCG@10"] > table["popularity.jsonl"]["NDCG@10"]
