"""eval/evaluate.py: the metric semantics on hand-computed cases, folders of result files, bad input."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from grec.base.errors import GrecError
from grec.evaluate import EvaluateConfig, RankingMetrics, evaluate, target_rank

CASES = [
    (["a", "b", "a", "t", "c"], "t"),  # duplicate "a" removed: rank 2
    ([], "x"),  # no predictions: a miss, still counted
    (["t"], "t"),  # rank 0
    (["zz", "t"], "t"),  # invalid id keeps its place: rank 1
]


def test_semantics_by_hand():
    assert target_rank(["a", "b", "a", "t"], "t") == 2 and target_rank(["a"], "t") is None
    metrics = RankingMetrics((1, 3), catalog={"a", "b", "c", "t", "u", "v", "w", "y"})
    for predictions, target in CASES:
        metrics.add(predictions, target)
    got = metrics.result()
    assert got["records"] == 4
    assert got["HR@1"] == pytest.approx(1 / 4) and got["HR@3"] == pytest.approx(3 / 4)
    assert got["NDCG@3"] == pytest.approx((1 / math.log2(4) + 1 + 1 / math.log2(3)) / 4)
    assert got["MRR@3"] == pytest.approx((1 / 3 + 1 + 1 / 2) / 4)
    assert got["NDCG@1"] == pytest.approx(1 / 4) and got["MRR@1"] == pytest.approx(1 / 4)
    assert got["invalid_rate"] == pytest.approx(1 / 8) and got["duplicate_rate"] == pytest.approx(1 / 8)
    assert got["coverage@10"] == pytest.approx(4 / 8)


def write(path: Path, records, lines=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    if lines:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        path.write_text(json.dumps(records))


def test_folder_of_runs(tmp_path, caplog):
    records = [{"target": t, "predict": p, "input": "..."} for p, t in CASES]
    write(tmp_path / "seed1" / "test.jsonl", records)
    write(tmp_path / "seed0" / "test.jsonl", records[:2])
    write(tmp_path / "list" / "test.json", records, lines=False)  # a JSON list: read as well as JSON lines
    bigrec = [  # BIGRec's inference.py: quoted titles generated, the quoted target title in "output"
        {"instruction": "...", "input": "...", "output": '"Heat (1995)"\n', "predict": ['"Heat (1995)"', '"Up"', "X"]},
        {"instruction": "...", "input": "...", "output": '"Up"\n', "predict": ['"Heat (1995)"', '"Up"\n']},
    ]
    (tmp_path / "bigrec").mkdir()
    (tmp_path / "bigrec" / "result.json").write_text(json.dumps(bigrec, indent=4))
    write(tmp_path / "records" / "train.json", [{"instruction": "x", "input": "", "output": "y"}], lines=False)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "test.jsonl").write_text('{"target": "t", "predict": ["t"]}\n{"predict": []}\n')
    table = evaluate(EvaluateConfig(input_dir=str(tmp_path), topk=[1, 3]))
    assert list(table) == ["bigrec/result.json", "list/test.json", "seed0/test.jsonl", "seed1/test.jsonl"]
    assert "broken/test.jsonl: record 2 needs 'target' and 'predict'" in caplog.text  # skipped; records ignored
    assert table["list/test.json"] == {**table["seed1/test.jsonl"], "records": 4}
    assert table["bigrec/result.json"]["HR@1"] == 0.5 and table["bigrec/result.json"]["MRR@3"] == 0.75
    assert table["seed1/test.jsonl"]["HR@3"] == pytest.approx(0.75)
    assert table["seed0/test.jsonl"]["HR@3"] == pytest.approx(0.5) and table["seed0/test.jsonl"]["records"] == 2
    assert json.loads((tmp_path / "metrics.json").read_text()) == table
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0].startswith("file,records,HR@1,HR@3")


def test_script_prints_markdown_and_fails_clearly(tmp_path):
    root = Path(__file__).resolve().parent.parent
    write(tmp_path / "run" / "test.jsonl", [{"target": "t", "predict": ["t", "a"]}])
    result = subprocess.run(
        [sys.executable, str(root / "eval" / "evaluate.py"), "--input_dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "| run/test.jsonl | 1 | 1.0000" in result.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GrecError, match="no result files"):
        evaluate(EvaluateConfig(input_dir=str(empty)))
    result = subprocess.run(
        [sys.executable, str(root / "eval" / "evaluate.py"), "--input_dir", str(empty)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "no result files" in result.stderr


def test_one_unreadable_result_file_is_reported_and_the_others_are_scored(tmp_path, grec_cli):
    write(tmp_path / "good" / "test.jsonl", [{"target": "t", "predict": ["t", "a"]}])
    bad = tmp_path / "bad" / "test.jsonl"
    bad.parent.mkdir()
    bad.write_bytes(b'{"target": "t", "predict": ["t"]}\n{"target": "caf\xe9", "predict": []}\n')  # latin-1
    code, stdout, err = grec_cli("evaluate", "--input_dir", tmp_path, "--topk", "1,5")
    assert code == 1  # after the table, not instead of it
    assert "| good/test.jsonl | 1 | 1.0000" in stdout and "bad/test.jsonl" not in stdout
    assert "bad/test.jsonl:2: not utf-8 text at byte 49" in err
    assert "error: 1 file(s) could not be used and were left out: bad/test.jsonl" in err
    assert list(json.loads((tmp_path / "metrics.json").read_text())) == ["good/test.jsonl"]


def test_the_table_shows_the_cutoffs_the_rows_hold():
    from grec.evaluate import markdown

    row = {"records": 3, "HR@5": 0.5, "HR@10": 0.6, "NDCG@5": 0.2, "NDCG@10": 0.3, "MRR@10": 0.1}
    table = {"a.jsonl": {**row, "invalid_rate": 0.0, "duplicate_rate": 0.0}}
    header = markdown(table).splitlines()[0]
    assert header == "| file | records | HR@5 | HR@10 | NDCG@5 | NDCG@10 | MRR@10 | invalid_rate | duplicate_rate |"


def test_a_recipe_whose_evaluate_lacks_k_20_prints_its_table(tmp_path, grec_cli):
    write(tmp_path / "results" / "run.jsonl", [{"target": "t", "predict": ["a", "t"]}])
    recipe = tmp_path / "only-evaluate.yaml"
    recipe.write_text("stages:\n  - stage: evaluate\n    input_dir: '{out}/results'\n    topk: [1, 2]\n")
    code, stdout, err = grec_cli("run", "--recipe", recipe, "--out", tmp_path)
    assert code == 0, err
    assert "| run.jsonl | 1 | 0.0000 | 1.0000 |" in stdout and "@20" not in stdout


def write_run(path: Path, ranks: list[int], catalog: int = 100) -> None:
    """A result file whose record u's target ("t<u>") sits at 0-based ``ranks[u]`` (-1: not in the list)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for user, rank in enumerate(ranks):
            predict = [f"x{k}" for k in range(20)]
            if rank >= 0:
                predict[rank] = f"t{user}"
            handle.write(json.dumps({"user_id": str(user), "target": f"t{user}", "predict": predict}) + "\n")


def test_paired_test_finds_a_known_shift_and_nothing_between_identical_runs(tmp_path, grec_cli):
    import numpy as np

    rng = np.random.default_rng(0)
    base = [int(r) if r < 20 else -1 for r in rng.integers(0, 40, size=600)]
    better = list(base)
    for user in rng.choice(600, size=60, replace=False):  # 60 records move their target to the top
        better[user] = 0
    write_run(tmp_path / "popularity.jsonl", base)
    write_run(tmp_path / "model.jsonl", better)
    write_run(tmp_path / "copy.jsonl", base)
    code, stdout, err = grec_cli("evaluate", "--input_dir", tmp_path, "--baseline", "popul", "--topk", "[10]")
    assert code == 0, err
    table = json.loads((tmp_path / "metrics.json").read_text())
    moved = table["model.jsonl"]["paired"]["NDCG@10"]
    truth = table["model.jsonl"]["NDCG@10"] - table["popularity.jsonl"]["NDCG@10"]
    assert moved["records"] == 600 and moved["significant"] and moved["p"] < 1e-6
    assert math.isclose(moved["difference"], truth) and moved["ci"][0] < truth < moved["ci"][1] and moved["ci"][0] > 0
    same = table["copy.jsonl"]["paired"]["NDCG@10"]
    assert same["difference"] == 0 and same["p"] == 1.0 and not same["significant"]
    paired_table = stdout.split("paired differences from popularity.jsonl (ttest, * p < 0.05)")[1]
    assert (
        "| model.jsonl | 600 | +0.0783* (p 2.8e-12) |" in paired_table
        and "| copy.jsonl | 600 | +0.0000 (p 1) |" in paired_table
    )
    per_record = json.loads((tmp_path / "per_record.json").read_text())
    assert per_record["model.jsonl"]["rank"][:5] == better[:5] and per_record["model.jsonl"]["key"][0] == "0\tt0"
    # the bootstrap agrees; a shift on 3 records of 600 is not significant
    evaluate(EvaluateConfig(input_dir=str(tmp_path), baseline="popularity.jsonl", bootstrap=True, plot=False))
    boot = json.loads((tmp_path / "metrics.json").read_text())["model.jsonl"]["paired"]["NDCG@10"]
    assert boot["significant"] and boot["ci"][0] < truth < boot["ci"][1]
    small = list(base)
    for user in [k for k, r in enumerate(base) if r < 0][:3]:
        small[user] = 5
    write_run(tmp_path / "model.jsonl", small)
    evaluate(EvaluateConfig(input_dir=str(tmp_path), baseline="popularity", plot=False))
    assert not json.loads((tmp_path / "metrics.json").read_text())["model.jsonl"]["paired"]["NDCG@10"]["significant"]


def test_sweeps_test_seed_means_against_the_baseline(tmp_path):
    import numpy as np

    rng = np.random.default_rng(1)
    base = [int(r) if r < 20 else -1 for r in rng.integers(0, 40, size=400)]
    write_run(tmp_path / "popularity" / "results.jsonl", base)
    for seed in range(3):
        shifted = [0 if (u + seed) % 5 == 0 else r for u, r in enumerate(base)]  # a fifth of the users helped
        write_run(tmp_path / f"model-seed{seed}" / "results.jsonl", shifted)
    evaluate(EvaluateConfig(input_dir=str(tmp_path), seeds=True, baseline="popularity", topk=[10], plot=False))
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    paired = sweep["model-seed*/results.jsonl"]["paired"]
    assert paired["baseline"] == "popularity/results.jsonl" and paired["NDCG@10"]["significant"]
    assert "*" in (tmp_path / "sweep.md").read_text()
    with pytest.raises(GrecError, match="--baseline 'results': matches every one of the result files"):
        evaluate(EvaluateConfig(input_dir=str(tmp_path), baseline="results", plot=False))


def test_baseline_by_name_prefers_the_file_of_exactly_that_name_and_each_run_its_own():
    from grec.evaluate.run import baseline_files, nearest_baseline

    names = ["sidlm-sdpo.jsonl", "sidlm.jsonl", "seed1/popularity.jsonl"]
    assert baseline_files("sidlm", names) == ["sidlm.jsonl"]
    assert baseline_files("popularity", names) == ["seed1/popularity.jsonl"]
    assert baseline_files("sid", names) == ["sidlm-sdpo.jsonl", "sidlm.jsonl"]
    sweep = ["seed0_lr1/results/popularity.jsonl", "seed1_lr1/results/popularity.jsonl"]  # scripts/sweep.sh's layout
    assert nearest_baseline("seed1_lr1/results/sidlm.jsonl", sweep, "popularity") == sweep[1]
    with pytest.raises(GrecError, match="is as near to seed0_lr1/results/popularity.jsonl and seed1"):
        nearest_baseline("elsewhere/sidlm.jsonl", sweep, "popularity")


def test_tables_mark_what_cannot_be_compared(tmp_path):
    from grec.evaluate import markdown

    write(tmp_path / "sidlm.jsonl", [{"target": "a", "predict": ["a", "b"], "exclude_history": False}] * 4)
    write(tmp_path / "pop.jsonl", [{"target": "b", "predict": ["a", "b", "c"], "exclude_history": True}] * 2)
    write(tmp_path / "old.jsonl", [{"target": "c", "predict": ["a", "b", "c"]}] * 2)
    table = evaluate(EvaluateConfig(input_dir=str(tmp_path), topk=[1, 3], plot=False))
    assert table["sidlm.jsonl"]["HR@3"] is None and table["sidlm.jsonl"]["HR@1"] == 1.0  # 2 items listed
    assert table["pop.jsonl"]["HR@3"] == 1.0 and table["pop.jsonl"]["list_length"] == 3
    assert [table[n]["exclude_history"] for n in ("sidlm.jsonl", "pop.jsonl", "old.jsonl")] == [False, True, None]
    text = markdown(table)
    assert "| sidlm.jsonl | 4 | 1.0000 | n/m |" in text
    assert "n/m: not measured, K beyond the items a run listed: sidlm.jsonl (2)" in text
    assert "scored on different numbers of records (2, 4)" in text
    assert "(not recorded: old.jsonl; history left out: pop.jsonl; history kept: sidlm.jsonl)" in text
    assert (tmp_path / "metrics.csv").read_text().splitlines()[3].startswith("sidlm.jsonl,4,1.0,,")
