"""The grec command: stage listing, per-stage --help, config files, exit codes."""

import subprocess
import sys

import pytest

from grec.base.config import load_config
from grec.base.errors import GrecError
from grec.evaluate import EvaluateConfig
from grec.prepare import PrepareConfig


def test_console_help_lists_stages():
    result = subprocess.run([sys.executable, "-m", "grec", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "prepare" in result.stdout and "leave-one-out" in result.stdout


def test_stage_help_lists_flags_with_their_help(grec_cli):
    code, out, _ = grec_cli("prepare", "--help")
    assert code == 0
    assert "--min_user_inter" in out and "k-core" in out
    assert "--config" in out and "flags given on the command line override it" in out


def test_every_flag_of_every_stage_has_one_help_line_and_shared_flags_one_owner():
    """--help of each stage lists each of its flags exactly once; train and align inherit their common
    flags (and the help text) from grec.training.flags.RunFlags instead of spelling them twice."""
    import dataclasses
    import importlib
    import re

    from grec.align import AlignConfig
    from grec.base.config import command
    from grec.stages import STAGES
    from grec.train import TrainConfig
    from grec.training.flags import RunFlags

    for stage in STAGES.values():
        cls = getattr(importlib.import_module(stage.module), stage.config)
        listed = re.findall(r"^    (\w+): ", command(cls, print).__doc__, re.MULTILINE)
        assert sorted(listed) == sorted(["config", *(f.name for f in dataclasses.fields(cls))]), stage.name
    shared = {f.name for f in dataclasses.fields(RunFlags)}
    for cls in (TrainConfig, AlignConfig):
        assert issubclass(cls, RunFlags)
        restated = {n for n in shared if f"        {n}: " in cls.__doc__}
        assert restated <= {"lora_r", "lora_target_modules"}, (cls.__name__, restated)  # only where the meaning differs
    assert "LoRA rank of the fresh adapter" in command(AlignConfig, print).__doc__
    assert "    lora_r: LoRA rank.\n" in command(TrainConfig, print).__doc__


def test_unknown_command_and_flag(grec_cli, tmp_path):
    code, _, err = grec_cli("bogus")
    assert code == 2 and "unknown command 'bogus'" in err
    code, _, err = grec_cli("prepare", "--no_such_flag", "1", "--out", tmp_path / "o")
    assert code == 2 and "unknown flag --no_such_flag" in err
    code, _, err = grec_cli("prepare", "ml-100k", "--out", tmp_path / "o")
    assert code == 2 and "unexpected argument 'ml-100k'" in err
    assert not (tmp_path / "o").exists()  # nothing ran


def test_yaml_config_with_flag_override(tmp_path, grec_cli):
    config = tmp_path / "prep.yaml"
    config.write_text("dataset: ml-100k\nmax_history: 7\ntrain_windows: last\nout: 123\n")
    cfg = load_config(PrepareConfig, config, max_history="9")
    assert (cfg.max_history, cfg.train_windows, cfg.out) == (9, "last", "123")
    assert (cfg.min_user_inter, cfg.min_item_inter) == (3, 1)
    out = tmp_path / "from-config"
    code, stdout, _ = grec_cli("prepare", "--config", config, "--out", out)
    assert code == 0 and "users 943" in stdout
    assert sum(1 for _ in open(out / "train.jsonl")) == 943


def test_config_errors_name_the_field(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("dataset: ml-100k\nmax_histroy: 7\n")
    with pytest.raises(GrecError, match=r"bad.yaml: unknown setting 'max_histroy'"):
        load_config(PrepareConfig, config)
    with pytest.raises(GrecError, match="--max_history: expected a whole number, got 'many'"):
        load_config(PrepareConfig, None, max_history="many")
    with pytest.raises(GrecError, match="--min_user_inter: must be at least 3"):
        load_config(PrepareConfig, None, min_user_inter=2)
    empty = tmp_path / "empty.yaml"
    empty.write_text("input_dir:\n")  # a path left empty: not the folder "None"
    with pytest.raises(GrecError, match=r"empty.yaml: --input_dir: expected a value, got null"):
        load_config(EvaluateConfig, empty)
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: [ml-100k\n")
    with pytest.raises(GrecError, match=r"broken.yaml:\d+: not valid YAML"):
        load_config(PrepareConfig, broken)


def test_console_script_exit_status_on_bad_input(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "grec", "prepare", "--dataset", "nope", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    from grec.prepare.datasets import DATASETS

    assert result.stderr.strip() == f"error: --dataset: unknown data set 'nope'; choose one of {', '.join(DATASETS)}"
    assert "ml-100k, ml-1m, ml-10m" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_output_that_cannot_be_written_is_refused_before_any_input_is_read(ml100k, tmp_path, grec_cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    where = blocker / "out"
    commands = [
        ("prepare", "--dataset", "ml-100k", "--out", where),
        ("index", "--data", ml100k, "--out", where),
        ("records", "--data", ml100k, "--style", "title", "--out", where),
        ("train-task", "--task", "sasrec", "--data", ml100k, "--output_dir", where),
        ("train", "--base_model", "x", "--train_data_path", blocker, "--output_dir", where),
    ]
    for command in commands:
        code, _, err = grec_cli(*command)
        assert code == 1 and f"{where}: cannot be created: {blocker} is a file, not a folder" in err, command
    code, _, err = grec_cli("index", "--data", ml100k, "--out", blocker)
    assert code == 1 and "a-file: is a file; --out takes a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_every_short_flag_help_shows_is_accepted_as_its_long_flag(grec_cli):
    """fire's --help shows -t beside --topk where no other flag starts with t: each such pair works."""
    import re

    from grec.cli import COMMANDS, UsageError, check_flags

    pairs = 0
    for name, (_, build) in COMMANDS.items():
        if name == "run":
            continue  # its flags are checked the same way; building it is the same code path
        code, out, _ = grec_cli(name, "--help")
        assert code == 0 and not re.search(r"^\s+-h, --", out, re.MULTILINE)  # -h is always help
        for letter, flag in re.findall(r"^\s+-(\w), --(\w+)", out, re.MULTILINE):
            pairs += 1
            assert check_flags(name, build(), [f"-{letter}", "7"]) == [f"--{flag}", "7"]
    assert pairs >= 10
    code, _, err = grec_cli("evaluate", "-t", "5", "-p", "false", "--input_dir", "/nonexistent-folder")
    assert code == 1 and "folder not found (given as --input_dir)" in err  # parsed; the folder failed, not the flags
    with pytest.raises(UsageError, match="unknown flag -z"):
        check_flags("evaluate", COMMANDS["evaluate"][1](), ["-z", "1"])


def test_decoding_commands_let_idle_openmp_threads_sleep_and_training_ones_do_not():
    """grec/base/threads.py: passive waiting keeps beam search fast on a busy machine; it is set before torch
    loads, for the decoding commands only, and never over the user's own choice."""
    import os

    # main() as the grec command runs it, up to the command lookup (emptied: no stage, no torch, a second each)
    probe = "import os, sys, grec.cli as c; c.COMMANDS = {'list': c.COMMANDS['list']}; c.main(sys.argv[1:]); print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}

    def policy(*argv, **extra):
        done = subprocess.run(
            [sys.executable, "-c", probe, *argv], capture_output=True, text=True, env={**env, **extra}
        )
        return done.stdout.strip().splitlines()[-1]

    assert policy("infer", "--help") == "PASSIVE"  # serve and generate share infer's path (grec.cli.DECODING)
    assert policy("train", "--help") == "None"
    assert policy("infer", "--help", OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


def test_the_python_api_reaches_every_stage_of_the_one_table():
    import grec
    from grec.base.errors import GrecError
    from grec.stages import STAGES

    assert set(grec.STAGES) == {n for n, s in STAGES.items() if s.module == f"grec.{n}"}
    assert {"prepare", "index", "tokenizer", "records", "train", "align", "infer", "evaluate"} <= set(grec.STAGES)
    for name in grec.STAGES:
        assert callable(getattr(grec, name)), name
    with pytest.raises(GrecError, match="--checkpoint: required"):
        grec.align(method="dpo")  # the flags are checked as the CLI checks them
