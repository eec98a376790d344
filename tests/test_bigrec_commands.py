"""BIGRec's published command lines (its README: single-domain and multi-domain training, inference), run
through bash as users paste them, on a tiny LLaMA and records written by grec records.

Only the placeholders change: YOUR_LLAMA_PATH, the loop variables ($lr, $dropout, $seed, $sample),
`python train.py` -> this interpreter and grec's train.py, and --num_epochs 50 -> 2 (time). The
single-domain line as published has an unbalanced quote (`valid_5000.json"]"`): it is run with that
quote fixed.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import read_jsonl

from grec.records import RecordsConfig, build_records

ROOT = Path(__file__).resolve().parent.parent
SINGLE = """python train.py \\
                    --base_model YOUR_LLAMA_PATH/ \\
                    --train_data_path "[\\"./data/movie/train.json\\"]"   \\
                    --val_data_path "[\\"./data/movie/valid_5000.json\\"]" \\
                    --output_dir ./model/movie/${seed}_${sample} \\
                    --batch_size 128 \\
                    --micro_batch_size 4 \\
                    --num_epochs 50 \\
                    --learning_rate $lr \\
                    --cutoff_len 512 \\
                    --lora_r 8 \\
                    --lora_alpha 16\\
                    --lora_dropout $dropout \\
                    --lora_target_modules '[q_proj,v_proj]' \\
                    --train_on_inputs \\
                    --group_by_length \\
                    --resume_from_checkpoint 'XXX' \\
                    --seed $seed \\
                    --sample $sample
"""
MULTI = """python train.py \\
                    --base_model YOUR_LLAMA_PATH/ \\
--train_data_path "[\\"./data/movie/train.json\\", \\"./data/game/train.json\\"]"  \\
                    --val_data_path "[\\"./data/movie/valid_5000.json\\", \\"./data/game/valid_5000.json\\"]"  \\
                    --output_dir ./model/multi/${seed}_${sample} \\
                    --batch_size 128 \\
                    --micro_batch_size 4 \\
                    --num_epochs 50 \\
                    --learning_rate $lr \\
                    --cutoff_len 512 \\
                    --lora_r 8 \\
                    --lora_alpha 16\\
                    --lora_dropout $dropout \\
                    --lora_target_modules '[q_proj,v_proj]' \\
                    --train_on_inputs \\
                    --group_by_length \\
                    --resume_from_checkpoint 'XXX' \\
                    --seed $seed \\
                    --sample $sample
"""
INFERENCE = """python inference.py \\
    --base_model YOUR_LLAMA_PATH/ \\
    --lora_weights YOUR_LORA_PATH \\
    --test_data_path ./data/movie/test/test_5000.json \\
    --result_json_data ./movie_result/movie.json
"""


def domain(ml100k, folder: Path, seed: int, users: slice) -> None:
    """BIGRec's data layout, written by grec records: train.json, valid_5000.json, test/test_5000.json."""
    build_records(RecordsConfig(data=str(ml100k), style="title", out=str(folder), max_history=5, sample=16, seed=seed))
    valid = json.loads((folder / "valid.json").read_text())[users]
    (folder / "valid_5000.json").write_text(json.dumps(valid))
    (folder / "test").mkdir()
    (folder / "test" / "test_5000.json").write_text(json.dumps(json.loads((folder / "test.json").read_text())[:3]))


def bash(command: str, cwd: Path, base: Path, **values: str) -> subprocess.CompletedProcess:
    command = command.replace("python train.py", f"{sys.executable} {ROOT / 'train.py'}")
    command = command.replace("python inference.py", f"{sys.executable} {ROOT / 'inference.py'}")
    command = command.replace("YOUR_LLAMA_PATH", str(base)).replace("--num_epochs 50", "--num_epochs 2")
    for name, value in values.items():
        command = command.replace(name, value)
    script = f"lr=1e-4\ndropout=0.05\nseed=0\nsample=16\n{command}"
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_bigrec_readme_commands_run_unchanged(ml100k, tiny_llama_dir, tmp_path):
    base = tmp_path / "llama"
    shutil.copytree(tiny_llama_dir, base)
    domain(ml100k, tmp_path / "data" / "movie", seed=0, users=slice(0, 4))
    domain(ml100k, tmp_path / "data" / "game", seed=1, users=slice(4, 8))

    single = bash(SINGLE, tmp_path, base)
    assert single.returncode == 0, single.stderr[-3000:]
    assert "--resume_from_checkpoint XXX does not exist: training from scratch" in single.stderr
    log = json.loads((tmp_path / "model" / "movie" / "0_16" / "log.json").read_text())
    assert [row["epoch"] for row in log] == [1, 2] and all(row["valid_loss"] > 0 for row in log)

    multi = bash(MULTI, tmp_path, base)
    assert multi.returncode == 0, multi.stderr[-3000:]
    run = tmp_path / "model" / "multi" / "0_16"
    state = json.loads((run / "training_state.json").read_text())
    assert state["arguments"]["val_data_path"] == ["./data/movie/valid_5000.json", "./data/game/valid_5000.json"]
    for row in json.loads((run / "log.json").read_text()):  # validation per domain and over both
        movie, game, both = row["valid_loss_movie"], row["valid_loss_game"], row["valid_loss"]
        assert movie != game and both == pytest.approx((movie + game) / 2, rel=1e-3)  # 4 records each

    lora = str(tmp_path / "model" / "movie" / "0_16" / "best")
    inference = bash(INFERENCE, tmp_path, base, YOUR_LORA_PATH=lora)
    assert inference.returncode == 0, inference.stderr[-3000:]
    titles = {r["item_id"]: r["title"] for r in read_jsonl(ml100k / "items.jsonl")}
    results = read_jsonl(tmp_path / "movie_result" / "movie.json")  # title mode, the checkpoint's own catalog
    assert len(results) == 3 and all(len(r["predict"]) == 20 and set(r["predict"]) <= set(titles) for r in results)
    assert all(r["predict_titles"] == [titles[i] for i in r["predict"]] for r in results)
