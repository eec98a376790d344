"""Fault injection: train.py killed (SIGKILL) at random moments and resumed with `auto` until done ends
where an uninterrupted run ends: the same weights, each epoch logged once, best/ the best epoch's."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from helpers import ROOT, leftovers
from transformers import LlamaForCausalLM

from grec.records import RecordsConfig, build_records
from grec.train import TrainConfig, train


@pytest.mark.slow
def test_training_killed_at_random_moments_resumes_to_the_uninterrupted_result(
    ml100k, ml100k_sid, tiny_llama_dir, tmp_path
):
    build_records(
        RecordsConfig(data=str(ml100k), sid=str(ml100k_sid), out=str(tmp_path / "r"), max_history=5, sample=64)
    )
    settings = {
        "base_model": str(tiny_llama_dir),
        "train_data_path": [str(tmp_path / "r" / "train.json")],
        "val_data_path": str(tmp_path / "r" / "valid.json"),
        "val_sample": 16,
        "sid": str(ml100k_sid),
        "batch_size": 16,
        "micro_batch_size": 8,
        "num_epochs": 4,
        "learning_rate": 1e-2,
        "finetune": "full",
        "warmup_ratio": 0.0,
        "seed": 0,
    }
    train(TrainConfig(**settings, output_dir=str(tmp_path / "whole")))
    killed = tmp_path / "killed"
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({**settings, "output_dir": str(killed)}))
    command = [sys.executable, str(ROOT / "train.py"), "--config", str(tmp_path / "run.yaml")]
    command += ["--resume_from_checkpoint", "auto"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(5)
    kills = mid_run = 0

    def checkpoints() -> int:
        return len(list(killed.glob("checkpoint-*")))

    # when each kill lands: during start-up; a moment after a checkpoint appeared (inside the next steps or
    # saves); the instant a new checkpoint folder appears (inside its write, before the epoch is booked)
    moments = [("start", rng.uniform(1.0, 4.0)), ("after", rng.uniform(0.0, 1.5)), ("new", 0.0)]
    for when, delay in moments:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
        before = checkpoints()
        while when != "start" and process.poll() is None and checkpoints() == before:
            time.sleep(0.02)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
            mid_run += checkpoints() > 0
        process.wait()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert kills >= 2 and mid_run >= 1  # at least one kill after training had saved a checkpoint
    whole, cut = (
        LlamaForCausalLM.from_pretrained(tmp_path / name / "last").state_dict() for name in ("whole", "killed")
    )
    for key in whole:
        assert torch.allclose(whole[key], cut[key], atol=1e-6), key
    log = json.loads((killed / "log.json").read_text())
    assert [row["epoch"] for row in log] == [1, 2, 3, 4]  # each epoch once
    reference = json.loads((tmp_path / "whole" / "log.json").read_text())
    assert [r["valid_loss"] for r in log] == pytest.approx([r["valid_loss"] for r in reference], abs=1e-6)
    state = json.loads((killed / "training_state.json").read_text())
    best = min(log, key=lambda row: row["valid_loss"])["epoch"]
    assert (
        state["best_epoch"] == best == json.loads((killed / "best" / "training_state.json").read_text())["best_epoch"]
    )
    assert leftovers(killed) == [] and not [p.name for p in killed.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_a_recipe_killed_inside_training_continues_to_the_uninterrupted_table(ml100k, tmp_path):
    import shutil

    from grec.recipes import RunConfig, run_recipe

    data = tmp_path / "ml-100k"
    shutil.copytree(ml100k, data)
    small = "{train-task: {num_epochs: 2, model_args: {dim: 32, layers: 1}, data_args: {repeat: 2, max_len: 20}}}"
    overrides = yaml.safe_load(small)
    whole = run_recipe(RunConfig(recipe="sasrec", data=str(data), out=str(tmp_path / "whole"), overrides=overrides))
    out = tmp_path / "killed"
    grec = str(Path(sys.executable).parent / "grec")
    command = [grec, "run", "--recipe", "sasrec", "--data", str(data), "--out", str(out), "--overrides", small]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    while process.poll() is None and not list((out / "sasrec").glob("checkpoint-*")):
        time.sleep(0.02)
    killed = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert killed and not (out / "results" / "metrics.json").exists()  # killed inside the training stage
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from" in done.stderr
    table = json.loads((out / "results" / "metrics.json").read_text())
    assert sorted(table) == sorted(whole) == ["popularity.jsonl", "sasrec.jsonl"]
    for name in table:
        assert table[name] == pytest.approx(whole[name], abs=1e-6), name
