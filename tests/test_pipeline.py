"""The whole pipeline through the grec command on real MovieLens-100K: prepare -> index -> records -> train -> infer -> evaluate."""

import json

import pytest


@pytest.mark.slow  # a launcher / the whole chain end to end: make test runs it, make test-fast does not
def test_command_line_pipeline(tmp_path, grec_cli, tiny_llama_dir):
    data, sid, records, run = tmp_path / "ml", tmp_path / "ml" / "sid", tmp_path / "records", tmp_path / "run"
    assert grec_cli("prepare", "--dataset", "ml-100k", "--out", data, "--max_history", 10)[0] == 0
    code, out, _ = grec_cli("index", "--data", data, "--out", sid, "--balanced", "--seed", 1)
    assert code == 0 and "0.00% after" in out
    code, out, _ = grec_cli(
        "records", "--data", data, "--sid", sid, "--out", records, "--sample", 48, "--max_history", 5
    )
    assert code == 0 and "train 48" in out
    (tmp_path / "valid8.json").write_text(json.dumps(json.loads((records / "valid.json").read_text())[:8]))
    code, out, err = grec_cli(
        "train",
        "--base_model",
        tiny_llama_dir,
        "--train_data_path",
        f"[{records / 'train.json'}]",
        "--val_data_path",
        tmp_path / "valid8.json",
        "--sid",
        sid,
        "--output_dir",
        run,
        "--batch_size",
        16,
        "--micro_batch_size",
        8,
        "--num_epochs",
        2,
        "--lora_r",
        4,
        "--lora_target_modules",
        "[q_proj,v_proj]",
        "--learning_rate",
        1e-2,
    )
    assert code == 0, err
    assert "best valid loss" in out and (run / "best" / "adapter_model.safetensors").is_file()
    results = tmp_path / "results"
    code, out, err = grec_cli(
        "infer",
        "--lora_weights",
        run / "best",
        "--test_data_path",
        records / "test.json",
        "--result_json_data",
        results / "test.jsonl",
        "--num_beams",
        10,
        "--sample",
        20,
        "--exclude_history",
    )
    assert code == 0 and "ranked items for 20 records" in out, err
    code, out, _ = grec_cli("evaluate", "--input_dir", results, "--topk", "[1,5,10]", "--items", data / "items.jsonl")
    assert code == 0 and out.splitlines()[2].startswith("| test.jsonl | 20 |")
    metrics = json.loads((results / "metrics.json").read_text())["test.jsonl"]
    assert metrics["invalid_rate"] == 0.0 and metrics["duplicate_rate"] == 0.0 and 0 < metrics["coverage@10"] <= 1
