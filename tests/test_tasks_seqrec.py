"""The task registry, `grec train-task`, SASRec and HSTU (task seqrec) on real MovieLens-100K."""

import json

import pytest
from helpers import read_jsonl

from grec.base.errors import GrecError
from grec.base.registry import MODELS, TASKS, load_plugins
from grec.tasks import TaskConfig, train_task

PLUGIN = """
import torch
from grec.base.registry import MODELS
from grec.models.ctr import _CtrModel


@MODELS.register("plugin_lr")
class PluginLR(_CtrModel):
    def __init__(self, fields, embed_dim=1, scale=1.0):
        super().__init__(fields, embed_dim)
        self.scale = scale

    def logit(self, emb, first):
        return self.scale * first.sum(1)
"""


def test_registry_lists_builtins_and_refuses_unknown_names(grec_cli):
    code, out, _ = grec_cli("list")
    assert code == 0
    assert "tasks: ctr, " in out and "seqrec" in out and "lm_pretrain" in out
    assert "models: " in out and all(m in out for m in ("sasrec", "fm", "deepfm", "dcnv2", "lr"))
    prepared = "datasets (grec prepare --dataset): ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-latest, amazon, yelp, "
    assert prepared + "steam, recbole, minionerec, csv\n" in out  # every data set prepare reads, not the CTR ones
    assert "task datasets (grec train-task --task ctr --data NAME): adult, ml-100k\n" in out
    with pytest.raises(GrecError, match="unknown model .nope.; registered models: causal_lm, cnn, dcnv2, deepfm"):
        MODELS.get("nope")
    code, _, err = grec_cli("train-task", "--task", "nope", "--output_dir", "x")
    assert code == 1 and "unknown task 'nope'" in err and "--plugin" in err


def test_plugin_file_registers_a_model_usable_from_a_config(tmp_path, grec_cli):
    plugin = tmp_path / "my_models.py"
    plugin.write_text(PLUGIN)
    code, out, _ = grec_cli("list", "--kind", "models", "--plugin", plugin)
    assert code == 0 and "plugin_lr" in out
    config = tmp_path / "run.yaml"
    config.write_text(
        f"task: ctr\ndata: adult\nmodel: plugin_lr\nmodel_args: {{scale: 2.0}}\nplugin: [{plugin}]\n"
        f"num_epochs: 1\nbatch_size: 2048\nlearning_rate: 0.05\noutput_dir: {tmp_path / 'run'}\n"
    )
    code, out, err = grec_cli("train-task", "--config", config)
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert metrics["auc"] > 0.8  # logistic regression on Adult's one-hot features
    task = json.loads((tmp_path / "run" / "best" / "task.json").read_text())
    assert task["model"] == "plugin_lr" and task["model_args"] == {"scale": 2.0}
    with pytest.raises(GrecError, match="plugin file not found"):
        load_plugins([str(tmp_path / "missing.py")])
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(GrecError, match="importing it failed: RuntimeError: boom"):
        load_plugins([str(broken)])


def test_unknown_model_args_are_refused_with_the_settable_ones(ml100k, tmp_path):
    cfg = TaskConfig(task="seqrec", data=str(ml100k), model_args={"width": 3}, output_dir=str(tmp_path))
    with pytest.raises(
        GrecError, match="model 'sasrec' has no setting width; its settings are: attn_dropout, dim, dropout, heads"
    ):
        train_task(cfg)
    with pytest.raises(GrecError, match="--data_args: unknown setting 'maxlen'"):
        train_task(TaskConfig(task="seqrec", data=str(ml100k), data_args={"maxlen": 3}, output_dir=str(tmp_path)))
    assert "seqrec" in TASKS


def test_sasrec_learns_ml100k_and_writes_results_evaluate_scores(ml100k, tmp_path, grec_cli):
    out = tmp_path / "sasrec"
    code, stdout, err = grec_cli(
        "train-task",
        "--task",
        "seqrec",
        "--data",
        ml100k,
        "--output_dir",
        out,
        "--num_epochs",
        2,
        "--batch_size",
        128,
        "--learning_rate",
        5e-3,
        "--data_args",
        "{repeat: 6, with_history_too: true}",
        "--model_args",
        "{dim: 32}",
    )
    assert code == 0, err
    assert "best valid_ndcg@10" in stdout
    for name in (
        "best/model.safetensors",
        "best/task.json",
        "last/training_state.json",
        "log.json",
        "loss.png",
        "training_state.json",
        "test_metrics.json",
        "test_results.jsonl",
    ):
        assert (out / name).is_file(), name
    state = json.loads((out / "training_state.json").read_text())
    assert state["metric"] == "valid_ndcg@10" and state["epoch"] == 2
    test = json.loads((out / "test_metrics.json").read_text())
    popular = most_popular(ml100k, tmp_path)  # HR@10 .0647, NDCG@10 .0313; random ranking about .006
    assert test["hr@10"] > 1.3 * popular["HR@10"] and test["ndcg@10"] > 1.5 * popular["NDCG@10"]
    results = read_jsonl(out / "test_results.jsonl")
    assert len(results) == 943 and all(len(r["predict"]) == 50 for r in results)
    assert all(not set(r["predict"]) & set(r["history"]) for r in results)  # history excluded
    kept = read_jsonl(out / "test_results.with_history.jsonl")  # the same ranking, the history left in
    assert [r["user_id"] for r in kept] == [r["user_id"] for r in results]
    assert sum(bool(set(r["predict"]) & set(r["history"])) for r in kept) > 800 and not kept[0]["exclude_history"]
    code, _, _ = grec_cli("evaluate", "--input_dir", out, "--topk", "[10]")
    scored = json.loads((out / "metrics.json").read_text())["test_results.jsonl"]
    assert scored["HR@10"] == pytest.approx(test["hr@10"]) and scored["NDCG@10"] == pytest.approx(test["ndcg@10"])


def most_popular(data, tmp_path) -> dict:
    """The most-popular baseline's scores on the same split (history excluded, as the models rank)."""
    from grec.evaluate.run import score_file
    from grec.infer.popularity import PopularityConfig, popularity

    popularity(PopularityConfig(data=str(data), out=str(tmp_path / "popularity.jsonl")))
    return score_file(tmp_path / "popularity.jsonl", [10], None)


def test_hstu_beats_most_popular_on_ml100k_in_a_small_budget(ml100k, tmp_path, grec_cli):
    out = tmp_path / "hstu"
    args = ("--num_epochs", 2, "--batch_size", 128, "--learning_rate", 5e-3, "--data_args", "{repeat: 6}")
    model = "{dim: 32, loss: ce, l2_norm: false, temperature: 1.0}"
    code, stdout, err = grec_cli(
        "train-task", "--task", "seqrec", "--model", "hstu", "--data", ml100k, "--output_dir", out, *args,
        "--model_args", model,
    )  # fmt: skip
    assert code == 0, err
    test = json.loads((out / "test_metrics.json").read_text())
    popular = most_popular(ml100k, tmp_path)
    assert test["hr@10"] > 1.2 * popular["HR@10"] and test["ndcg@10"] > 1.2 * popular["NDCG@10"]
    task = json.loads((out / "best" / "task.json").read_text())
    assert task["model"] == "hstu" and task["shapes"] == {"num_items": 1682, "max_len": 50}


def test_task_configs_state_their_command_and_load(tmp_path):
    from pathlib import Path

    from grec.base.config import load_config

    folder = Path(__file__).resolve().parent.parent / "configs" / "tasks"
    configs = sorted(folder.glob("*.yaml"))
    assert len(configs) >= 5
    for path in configs:
        assert path.read_text().splitlines()[0].startswith("# grec train-task --config configs/tasks/")
        cfg = load_config(TaskConfig, path)
        assert cfg.task in TASKS and (cfg.model is None or cfg.model in MODELS)


def test_train_py_with_task_runs_the_task_trainer(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "train.py"
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--task",
            "image_cls",
            "--data",
            "digits",
            "--num_epochs",
            "1",
            "--output_dir",
            str(tmp_path),
            "--batch_size",
            "128",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trained image_cls" in done.stdout and (tmp_path / "best" / "task.json").is_file()


def test_train_task_checks_the_shared_flags_as_grec_train_does(tmp_path):
    from grec.train import TrainConfig

    records = tmp_path / "train.json"
    records.write_text('[{"instruction": "i", "input": "", "output": "o"}]')
    for flag, value, message in (
        ("lr_scheduler", "cosin", "--lr_scheduler: expected one of"),
        ("warmup_ratio", 1.5, r"--warmup_ratio: a share of the steps in \[0, 1\)"),
        ("learning_rate", -1.0, "--learning_rate: must be 0 .no updates. or positive"),
        ("early_stopping_patience", -1, "--early_stopping_patience: must be 0"),
    ):
        with pytest.raises(GrecError, match=message):
            TaskConfig(output_dir=str(tmp_path / "t"), **{flag: value})
        with pytest.raises(GrecError, match=message):
            TrainConfig(
                base_model="smollm2", train_data_path=[str(records)], output_dir=str(tmp_path / "t"), **{flag: value}
            )
