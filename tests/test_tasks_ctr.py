"""Task ctr on real ML-100K and Adult: learning, resume, incremental vocabulary growth, bad input."""

import json
import logging

import pytest
import torch
from safetensors.torch import load_file

from grec.base.errors import GrecError
from grec.tasks import TaskConfig, train_task
from grec.tasks.ctr import CtrTask


def ctr(out, **overrides) -> TaskConfig:
    settings = dict(
        task="ctr",
        data="ml-100k",
        model="fm",
        output_dir=str(out),
        num_epochs=2,
        batch_size=2048,
        learning_rate=5e-3,
        logging_steps=10,
        model_args={"embed_dim": 8},
    )
    return TaskConfig(**{**settings, **overrides})


@pytest.mark.parametrize("model", ["deepfm", "dcnv2"])
def test_ml100k_ctr_models_beat_chance_and_write_the_shared_layout(model, tmp_path):
    state = train_task(ctr(tmp_path / model, model=model, model_args={"embed_dim": 8, "hidden": [64]}))
    assert state["metric"] == "valid_auc" and state["epoch"] == 2
    assert state["test"]["auc"] > 0.66  # ML-100K, time-ordered split: a constant predictor scores 0.5
    for name in ("best/model.safetensors", "best/task.json", "last/model.safetensors", "log.json", "loss.png"):
        assert (tmp_path / model / name).is_file()
    log = json.loads((tmp_path / model / "log.json").read_text())
    assert [row["epoch"] for row in log] == [1, 2] and all(row["valid_auc"] > 0.6 for row in log)


def test_adult_fm_auc(tmp_path):
    state = train_task(ctr(tmp_path, data="adult", num_epochs=3, learning_rate=1e-2))
    assert state["test"]["auc"] > 0.87 and state["test"]["accuracy"] > 0.8


def test_resume_equals_an_uninterrupted_run(tmp_path):
    window = {"window": [0.0, 0.3]}  # the first 30,000 ratings: resuming does not need them all
    whole = train_task(ctr(tmp_path / "whole", data_args=window))
    train_task(ctr(tmp_path / "cut", num_epochs=1, data_args=window))
    resumed = train_task(ctr(tmp_path / "cut", resume_from_checkpoint="auto", data_args=window))
    assert resumed["global_step"] == whole["global_step"]
    assert resumed["test"]["auc"] == pytest.approx(whole["test"]["auc"], abs=1e-6)


def test_incremental_training_grows_vocabularies_and_keeps_old_rows(tmp_path, caplog):
    first = tmp_path / "first"
    old_state = train_task(ctr(first, data_args={"window": [0.0, 0.5]}))
    old = load_file(str(first / "best" / "model.safetensors"))
    later = ctr(tmp_path / "second", data_args={"window": [0.5, 1.0]}, init_from=str(first / "best"), num_epochs=1)
    with caplog.at_level(logging.INFO, logger="grec"):
        task = CtrTask(later)
        model = task.build_model()
        task.init_model(model, later.init_from)
    new = model.state_dict()
    for name in ("user_id", "item_id"):
        before, after = old[f"inputs.embed.{name}.weight"], new[f"inputs.embed.{name}.weight"]
        assert after.shape[0] > before.shape[0]  # users and movies first seen in the second half
        assert torch.equal(after[: before.shape[0] - 1], before[:-1])  # padding + known values: bit-identical
        assert torch.equal(after[-1], before[-1])  # the OOV row moved to the end
        n1, n2, d = before.shape[0], after.shape[0], before.shape[1]
        assert f"embed.{name} shape mismatched, current: ({n2}, {d}) != history: ({n1}, {d})" in caplog.text
        assert f"embed.{name} is updated from history:{n1} to current:{n2}" in caplog.text
    assert torch.equal(new["inputs.embed.gender.weight"], old["inputs.embed.gender.weight"])  # nothing new: unchanged
    # the continued model still ranks the first half's test rows well (encoded with the grown vocabulary)
    grown = train_task(later)
    check = CtrTask(
        ctr(tmp_path / "check", data_args={"window": [0.0, 0.5]}, init_from=str(tmp_path / "second" / "best"))
    )
    model = check.build_model()
    check.init_model(model, check.cfg.init_from)
    model.eval()
    assert check.evaluate(model, "test")["auc"] > old_state["test"]["auc"] - 0.05
    assert grown["test"]["auc"] > 0.6


def write_features(path, extra: str = "", label: str = "{column: clicked, classes: ['no', 'yes']}"):
    path.write_text(
        f"label: {label}\nfeatures:\n  - {{name: city}}\n  - {{name: price, type: numeric, transform: minmax}}\n{extra}"
    )
    return path


def test_bad_input_names_the_file_row_and_field(tmp_path, grec_cli):
    data = tmp_path / "clicks.csv"
    data.write_text("city,price,clicked\n" + "paris,3.5,yes\nrome,2,no\n" * 10 + "oslo,cheap,no\n")
    features = write_features(tmp_path / "f.yaml")
    base = [
        "train-task",
        "--task",
        "ctr",
        "--data",
        data,
        "--output_dir",
        tmp_path / "run",
        "--num_epochs",
        1,
        "--data_args",
    ]
    code, _, err = grec_cli(*base, f"{{features: {features}}}")
    assert code == 1 and f"{data}:22: numeric feature 'price' has the non-numeric value 'cheap'" in err
    data.write_text("city,price,clicked\n" + "paris,3.5,yes\nrome,2,maybe\n" * 10)
    code, _, err = grec_cli(*base, f"{{features: {features}}}")
    assert code == 1 and f"{data}:3: label column 'clicked' has 'maybe', not one of the declared classes" in err
    missing = write_features(tmp_path / "g.yaml", "  - {name: country}\n")
    code, _, err = grec_cli(*base, f"{{features: {missing}}}")
    assert code == 1 and "names column(s) country that the data lacks" in err
    code, _, err = grec_cli(*base, "{}")
    assert code == 1 and "give a feature config for this file" in err
    assert not (tmp_path / "run" / "best").exists()


def test_incremental_training_refuses_a_changed_feature_type(tmp_path):
    data = tmp_path / "clicks.csv"
    data.write_text("city,price,clicked\n" + "paris,3.5,yes\nrome,2,no\nnice,1,no\n" * 20)
    features = write_features(tmp_path / "f.yaml")
    train_task(
        TaskConfig(
            task="ctr",
            data=str(data),
            model="lr",
            data_args={"features": str(features)},
            output_dir=str(tmp_path / "a"),
            num_epochs=1,
            batch_size=16,
        )
    )
    changed = tmp_path / "h.yaml"
    changed.write_text(features.read_text().replace("type: numeric, transform: minmax", "type: categorical"))
    with pytest.raises(GrecError, match="feature 'price' changed type from 'numeric' to 'categorical'"):
        train_task(
            TaskConfig(
                task="ctr",
                data=str(data),
                model="lr",
                data_args={"features": str(changed)},
                init_from=str(tmp_path / "a" / "best"),
                output_dir=str(tmp_path / "b"),
            )
        )


@pytest.mark.slow  # a launcher / the whole chain end to end: make test runs it, make test-fast does not
def test_two_process_accelerate_launch_runs_a_task(tmp_path):
    import os
    import subprocess
    from pathlib import Path

    from helpers import two_process_launcher

    root = Path(__file__).resolve().parent.parent
    launcher = [
        *two_process_launcher(root / "train.py"),
        "--task",
        "ctr",
        "--data",
        "adult",
        "--model",
        "fm",
        "--num_epochs",
        "2",
        "--batch_size",
        "2048",
        "--learning_rate",
        "0.01",
        "--output_dir",
        str(tmp_path),
    ]
    result = subprocess.run(
        launcher, capture_output=True, text=True, timeout=600, cwd=root, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained ctr") == 1  # only rank 0 reports
    state = json.loads((tmp_path / "training_state.json").read_text())
    assert state["global_step"] == 2 * (39073 // 2048 + 1)  # the global batch is 2048 whatever the processes
    assert json.loads((tmp_path / "test_metrics.json").read_text())["auc"] > 0.85
