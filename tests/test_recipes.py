"""`grec run --recipe`: every recipe end to end on real ML-100K with a reduced budget, and skipping."""

import json
import re
import shutil
from pathlib import Path

import pytest
from helpers import read_jsonl

from grec.base.errors import GrecError
from grec.recipes import RECIPE_DIR, RunConfig, load_recipe

slow = pytest.mark.slow


@pytest.fixture
def data(ml100k, tmp_path):
    """A private copy of the prepared folder: recipes write SID folders into it."""
    copy = tmp_path / "ml-100k"
    shutil.copytree(ml100k, copy)
    return copy


def test_every_recipe_states_its_command_and_loads():
    names = sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))
    assert names == [
        "bigrec",
        "demo",
        "hstu",
        "lcrec",
        "lcrec-grpo",
        "lcrec-seq",
        "sasrec",
        "sidlm",
        "sidlm-dpo",
        "sidlm-grpo",
        "tiger",
    ]
    for name in names:
        first = (RECIPE_DIR / f"{name}.yaml").read_text().splitlines()[0]
        assert first.startswith(f"# grec run --recipe {name} ")
        stages = load_recipe(RunConfig(recipe=name, data="D", out="O"))
        assert stages[0] == ("prepare", {"dataset": "ml-100k", "out": "D"}) and stages[-1][0] == "evaluate"
    lcrec_grpo = load_recipe(RunConfig(recipe="lcrec-grpo", data="D", out="O"))
    kinds = ["prepare", "index", "records", "train", "infer", "records", "align", "infer", "evaluate"]
    assert [stage for stage, _ in lcrec_grpo] == kinds
    align_flags, evaluate_flags = lcrec_grpo[6][1], lcrec_grpo[8][1]
    assert (align_flags["method"], align_flags["checkpoint"], evaluate_flags["baseline"]) == (
        "grpo",
        "O/train/best",
        "lcrec",
    )
    with pytest.raises(
        GrecError,
        match="unknown recipe 'nope'; recipes in .*: bigrec, demo, hstu, lcrec, lcrec-grpo, lcrec-seq, sasrec, sidlm, sidlm-dpo, sidlm-grpo, tiger",
    ):
        load_recipe(RunConfig(recipe="nope"))
    with pytest.raises(GrecError, match="--overrides: unknown stage 'trian'"):
        load_recipe(RunConfig(recipe="tiger", overrides={"trian": {}}))


PAPER_FILES = {
    "tiger-beauty": ["raw/amazon2014/reviews_Beauty_5.json.gz", "raw/amazon2014/meta_Beauty.json.gz"],
    "minionerec-industrial": ["raw/MiniOneRec/data/Amazon/index/Industrial_and_Scientific.index.json"],
    "minionerec-office": ["raw/MiniOneRec/data/Amazon/index/Office_Products.index.json"],
    "lcrec-instruments": [
        "raw/amazon2018/Musical_Instruments_5.json.gz",
        "raw/amazon2018/meta_Musical_Instruments.json.gz",
    ],
    "sasrec-ml1m": [],  # packaged data
    "hstu-ml1m": [],
    "hstu-large-ml1m": [],
}


def test_paper_recipes_name_their_files_and_figures_and_every_flag_checks(tmp_path, monkeypatch):
    """Each paper setting loads with its raw files in place (placeholders: the flags checks look for
    the files, not into them) and its header says what the paper reported."""
    assert sorted(p.stem for p in (RECIPE_DIR / "paper").glob("*.yaml")) == sorted(PAPER_FILES)
    monkeypatch.chdir(tmp_path)
    for files in PAPER_FILES.values():
        for name in files:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).touch()
    for name in PAPER_FILES:
        header = (RECIPE_DIR / "paper" / f"{name}.yaml").read_text()
        assert header.startswith(f"# grec run --recipe paper/{name} ") and "Paper" in header
        stages = dict(load_recipe(RunConfig(recipe=f"paper/{name}", data="D", out="O")))
        assert stages["prepare"]["out"] == "D" and "evaluate" in stages
    tiger = dict(load_recipe(RunConfig(recipe="paper/tiger-beauty", data="D", out="O")))
    assert (tiger["index"]["method"], tiger["index"]["codebook_size"], tiger["records"]["max_history"]) == (
        "rqvae",
        256,
        20,
    )
    office = dict(load_recipe(RunConfig(recipe="paper/minionerec-office", data="D", out="O")))
    assert office["prepare"]["dataset"] == "minionerec" and office["prepare"]["category"] == "Office_Products"
    assert office["infer"]["exclude_history"] is False
    large = dict(load_recipe(RunConfig(recipe="paper/hstu-large-ml1m", data="D", out="O")))
    assert (large["prepare"]["max_history"], large["train-task"]["data_args"]["max_len"]) == (200, 200)
    assert large["train-task"]["model_args"] == {
        **{"dim": 50, "layers": 8, "heads": 2, "dqk": 25, "dv": 25, "dropout": 0.2},
        **{"loss": "sampled", "negatives": 128, "temperature": 0.05, "l2_norm": True},
    }


def test_overrides_name_stages_of_the_recipe_and_every_flag_is_checked_before_the_first_stage(tmp_path, grec_cli):
    bigrec = load_recipe(RunConfig(recipe="bigrec", overrides={"infer": {"sample": 3}, "grounded": {"val_sample": 5}}))
    infers = [flags for stage, flags in bigrec if stage == "infer"]
    assert [f["sample"] for f in infers] == [3, 3]  # the kind reaches both infer stages
    assert [f.get("val_sample") for f in infers] == [None, 5]  # the name only the grounded one
    assert all("name" not in f for f in infers)
    with pytest.raises(GrecError, match=r"--overrides: this recipe has no infer stage \(its stages: prepare, "):
        load_recipe(RunConfig(recipe="sasrec", overrides={"infer": {"sample": 3}}))
    with pytest.raises(GrecError, match="--overrides: unknown stage 'grounded'; give a stage kind"):
        load_recipe(RunConfig(recipe="lcrec", overrides={"grounded": {}}))
    with pytest.raises(GrecError, match="--overrides: train: expected a mapping of flag -> value, got 3"):
        load_recipe(RunConfig(recipe="tiger", overrides={"train": 3}))
    code, _, err = grec_cli("run", "--recipe", "tiger", "--overrides", "{train: [")
    assert code != 0 and "--overrides: not valid YAML" in err
    out = tmp_path / "run"
    bad = "{evaluate: {topk: [5, ten]}, infer: {num_beamz: 4}}"
    code, _, err = grec_cli("run", "--recipe", "tiger", "--data", tmp_path / "d", "--out", out, "--overrides", bad)
    assert code != 0 and "recipe stage 6 (infer): unknown setting 'num_beamz'" in err
    assert not (tmp_path / "d").exists() and not out.exists()  # nothing ran: prepare is stage 1
    code, _, err = grec_cli("run", "--recipe", "tiger", "--out", out, "--overrides", "{evaluate: {topk: [5, ten]}}")
    assert code != 0 and "recipe stage 7 (evaluate): --topk: expected a whole number, got 'ten'" in err


def test_a_recipe_extends_another_and_states_only_what_differs(tmp_path):
    demo = load_recipe(RunConfig(recipe="demo", data="D", out="O"))
    sidlm = load_recipe(RunConfig(recipe="sidlm", data="D", out="O"))
    assert demo[:-3] == sidlm[:-1] and demo[-1] == sidlm[-1]  # sidlm's stages, the baselines before evaluate
    assert [stage for stage, _ in demo[-3:-1]] == ["popularity", "train-task"]
    child = tmp_path / "child.yaml"
    child.write_text("extends: sidlm\nset: {train: {num_epochs: 2}}\n")
    stages = load_recipe(RunConfig(recipe=str(child), data="D", out="O"))
    changed = [k for k, (a, b) in enumerate(zip(stages, sidlm)) if a != b]
    assert len(stages) == len(sidlm) and [stages[k][0] for k in changed] == ["train"]
    assert stages[changed[0]][1]["num_epochs"] == 2
    (tmp_path / "a.yaml").write_text(f"extends: {tmp_path / 'b.yaml'}\n")
    (tmp_path / "b.yaml").write_text(f"extends: {tmp_path / 'a.yaml'}\n")
    with pytest.raises(GrecError, match="loops back"):
        load_recipe(RunConfig(recipe=str(tmp_path / "a.yaml")))
    child.write_text("extends: sidlm\nbefore: popularity\nstages: [{stage: evaluate, input_dir: x}]\n")
    with pytest.raises(GrecError, match="before: 'popularity' is not a stage of sidlm"):
        load_recipe(RunConfig(recipe=str(child)))


def test_data_or_dataset_retargets_a_recipes_prepare_stage(tmp_path):
    def prepared(**flags):
        stages = load_recipe(RunConfig(recipe="sasrec", out="O", **flags))
        return next(f for stage, f in stages if stage == "prepare")["dataset"]

    assert prepared(data="data/ml-100k") == "ml-100k"
    assert prepared(data="data/ml-1m") == "ml-1m"  # the folder names a data set
    assert prepared(data=str(tmp_path / "mine")) == "ml-100k"  # it does not: the recipe's own
    assert prepared(data="D", dataset="ml-1m") == "ml-1m"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "settings.json").write_text('{"settings": {"dataset": "steam"}}')
    assert prepared(data=str(tmp_path / "mine")) == "steam"  # what the folder was prepared from
    assert prepared(data="data/ml-1m", overrides={"prepare": {"dataset": "yelp"}}) == "yelp"  # overrides win
    with pytest.raises(GrecError, match="--dataset: unknown data set 'ml-2m'"):
        prepared(data="D", dataset="ml-2m")


def run_small(grec_cli, recipe: str, data, out, small: str) -> list[dict]:
    """Run ``recipe`` with the ``small`` overrides; check its 24 results are 20 catalog items outside the history."""
    code, stdout, err = grec_cli("run", "--recipe", recipe, "--data", data, "--out", out, "--overrides", small)
    assert code == 0, err
    assert f"| {recipe}.jsonl | 24 |" in stdout
    results = read_jsonl(out / "results" / f"{recipe}.jsonl")
    catalog = {r["item_id"] for r in read_jsonl(data / "items.jsonl")}
    assert all(len(r["predict"]) == 20 and set(r["predict"]) <= catalog for r in results)
    assert all(not set(r["predict"]) & set(r["history"]) for r in results)
    return results


@slow
def test_tiger_recipe_runs_end_to_end_then_skips_finished_stages(data, tmp_path, grec_cli, caplog):
    out = tmp_path / "tiger"
    small = "{records: {sample: 256}, train: {num_epochs: 1, val_sample: 16}, infer: {sample: 24}}"
    run_small(grec_cli, "tiger", data, out, small)
    assert (out / "results" / "metrics.png").is_file()
    code, stdout, err = grec_cli("run", "--recipe", "tiger", "--data", data, "--out", out, "--overrides", small)
    assert code == 0 and err.count("done before with these settings; skipped") == 6
    assert "| tiger.jsonl | 24 |" in stdout


@slow
def test_sidlm_recipe_trains_on_whole_sequences_of_a_temporal_split_end_to_end(data, tmp_path, grec_cli):
    out = tmp_path / "sidlm"
    results = run_small(
        grec_cli,
        "sidlm",
        data,
        out,
        "{prepare: {split: temporal, overwrite: true}, records: {sample: 64}, train: {num_epochs: 1, val_sample: 16}, "
        "infer: {sample: 24}}",
    )
    train = json.loads((out / "records" / "train.json").read_text())
    assert len(train) == 64 and {r["template"] for r in train} == {"sequence"}
    test_tag = json.loads((data / "stats.json").read_text())["split"]["tags"]["test"]
    assert test_tag.startswith("temporal:") and {r["split"] for r in results} == {test_tag}
    records = json.loads((out / "train" / "best" / "records.json").read_text())
    assert records["split"]["tags"]["test"] == test_tag
    state = json.loads((out / "train" / "last" / "training_state.json").read_text())
    assert state["arguments"]["from_scratch"].endswith("sid_llama.json")


@slow
def test_sasrec_recipe_beats_popularity(data, tmp_path, grec_cli):
    out = tmp_path / "sasrec"
    code, stdout, err = grec_cli(
        "run",
        "--recipe",
        "sasrec",
        "--data",
        data,
        "--out",
        out,
        "--overrides",
        "{train-task: {num_epochs: 1, learning_rate: 0.005, data_args: {repeat: 6}}}",
    )
    assert code == 0, err
    table = json.loads((out / "results" / "metrics.json").read_text())
    assert table["sasrec.jsonl"]["records"] == table["popularity.jsonl"]["records"] == 943
    assert table["popularity.jsonl"]["NDCG@10"] > 0.02  # popularity is a real baseline on ML-100K
    assert table["sasrec.jsonl"]["NDCG@10"] > table["popularity.jsonl"]["NDCG@10"]


@slow
def test_sweep_script_runs_a_two_seed_grid_resumes_and_tables_mean_and_std(data, tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    script = root / "scripts" / "sweep.sh"
    for lint in (["bash", "-n", str(script)], [str(Path(sys.executable).parent / "shellcheck"), str(script)]):
        assert subprocess.run(lint, capture_output=True).returncode == 0, lint
    out = tmp_path / "sweep"
    env = {**os.environ, "GREC": str(Path(sys.executable).parent / "grec"), "PYTHON": sys.executable}
    env["OMP_NUM_THREADS"] = "1"  # two runs at once on two cores
    command = [
        "bash",
        str(script),
        "--recipe",
        "sasrec",
        "--data",
        str(data),
        "--out",
        str(out),
        "--seeds",
        "1 2",
        "--lrs",
        "0.002",
        "--parallel",
        "2",
        "--overrides",
        "{train-task: {num_epochs: 1, model_args: {dim: 32, layers: 1}, data_args: {repeat: 3, max_len: 20}}}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["seed1_lr0.002", "seed2_lr0.002"]
    groups = json.loads((out / "sweep.json").read_text())
    sasrec = groups["seed*_lr0.002/results/sasrec.jsonl"]
    runs = json.loads((out / "metrics.json").read_text())
    values = [runs[f"seed{s}_lr0.002/results/sasrec.jsonl"]["NDCG@10"] for s in (1, 2)]
    assert sasrec["seeds"] == 2 and sasrec["NDCG@10"]["mean"] == pytest.approx(sum(values) / 2)
    assert values[0] != values[1] and sasrec["NDCG@10"]["std"] > 0  # the seeds really differ
    assert "mean ± std across seeds" in done.stdout
    state = json.loads((out / "seed1_lr0.002" / "sasrec" / "training_state.json").read_text())
    assert state["seed"] == 1 and state["arguments"]["learning_rate"] == 0.002
    again = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)  # resumable: all skipped
    assert again.returncode == 0 and "skipped" in (out / "seed1_lr0.002.log").read_text()


def llm_smoke(recipe: str) -> str:
    """A few steps of each LLM recipe: 8 training records, 2 users ranked (lcrec: 2 epochs of 2 steps
    at a high rate, so its validation loss has to fall)."""
    train = {"num_epochs": 1, "batch_size": 8, "micro_batch_size": 8, "cutoff_len": 160, "val_sample": 2}
    if recipe == "lcrec":
        train |= {"num_epochs": 2, "batch_size": 4, "micro_batch_size": 4, "learning_rate": 2e-3}
    overrides = {
        "records": {"sample": 8},
        "train": train,
        "infer": {"sample": 2, "num_beams": 4, "num_return_sequences": 4},
    }
    if recipe == "bigrec":
        overrides["grounded"] = {"num_beams": 1, "val_sample": 2, "gamma_grid": [0.0, 1.0], "delta_grid": [0.0, 1.0]}
    return json.dumps(overrides)


@slow
@pytest.mark.parametrize("recipe", ["lcrec", "bigrec"])
def test_llm_recipes_run_a_few_steps_of_smollm2_end_to_end(recipe, data, tmp_path, grec_cli, grec_cache):
    """The packaged SmolLM2-135M-Instruct (GGUF -> safetensors, converted once into grec's cache), LoRA,
    SID tokens added (lcrec), through every stage of the recipe."""
    out = tmp_path / recipe
    code, stdout, err = grec_cli(
        "run", "--recipe", recipe, "--data", data, "--out", out, "--overrides", llm_smoke(recipe)
    )
    assert code == 0, err
    table = json.loads((out / "results" / "metrics.json").read_text())
    expected = ["lcrec.jsonl"] if recipe == "lcrec" else ["bigrec-grounded.jsonl", "bigrec-trie.jsonl"]
    assert sorted(table) == expected
    catalog = {r["item_id"] for r in read_jsonl(data / "items.jsonl")}
    for name in expected:
        assert table[name]["records"] == 2 and table[name]["invalid_rate"] == 0.0
        for record in read_jsonl(out / "results" / name):
            assert record["predict"] and set(record["predict"]) <= catalog
    from grec.base import assets
    from grec.lm.gguf import gguf_cache_dir

    converted = gguf_cache_dir(assets.smollm2_gguf())  # whichever test came first converted it
    assert converted.parent == grec_cache / "gguf" and (converted / "model.safetensors").is_file()
    if recipe == "bigrec":  # the grounded stage keeps the fusion it chose and what each choice scored
        fusion = json.loads((out / "results" / "bigrec-grounded.fusion.json").read_text())
        grid = {(row["gamma"], row["delta"]): row["ndcg@10"] for row in fusion["valid_ndcg@10"]}
        assert len(grid) == 4 and fusion["validation_records"] == 2
        assert grid[(fusion["gamma"], fusion["delta"])] == max(grid.values())
    if recipe == "lcrec":
        from grec.base.sid import SidMap
        from grec.lm.checkpoint import load_trained

        log = json.loads((out / "train" / "log.json").read_text())
        assert len(log) == 2 and log[1]["valid_loss"] < log[0]["valid_loss"]
        model, tokenizer, _ = load_trained(out / "train" / "best")
        added = len(SidMap.load(data / "sid").vocabulary())
        assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) == 49152 + added
        pair = tokenizer("<a_1><b_2>", add_special_tokens=False)["input_ids"]
        assert pair == tokenizer.convert_tokens_to_ids(["<a_1>", "<b_2>"])  # each SID token one id


@pytest.mark.parametrize("name", ["gpu_check.sh", "gpu_quality.sh", "align_seeds.sh"])
def test_long_scripts_are_lint_clean_and_their_recipes_check(name):
    """Scripts too long for a test (the GPU ones run only where a GPU is lent, align_seeds.sh takes over
    an hour) must at least parse, pass shellcheck, and name recipes whose every stage's flags check
    (the GPU scripts' CPU plumbing runs with *_TINY=1)."""
    import subprocess
    import sys

    from grec.recipes import check_stages

    script = Path(__file__).resolve().parent.parent / "scripts" / name
    for lint in (["bash", "-n", str(script)], [str(Path(sys.executable).parent / "shellcheck"), str(script)]):
        assert subprocess.run(lint, capture_output=True).returncode == 0, lint
    for recipe in re.findall(r"--recipe ([\w-]+)", script.read_text()):
        check_stages(load_recipe(RunConfig(recipe=recipe, data="D", out="O")))
