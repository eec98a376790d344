"""train.py on tiny random models with SmolLM2's real tokenizer and real ML-100K records."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from helpers import built_once, free_port, read_jsonl
from transformers import AutoTokenizer, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

from grec.base.errors import GrecError
from grec.base.sid import SidMap
from grec.lm.checkpoint import load_trained
from grec.records import RecordsConfig, build_records, prompt
from grec.train import TrainConfig, train
from grec.train.data import tokenize_records
from grec.train.export import ExportConfig, export


@pytest.fixture(scope="module")
def records(ml100k, ml100k_sid, tmp_path_factory):
    """Small SID record files cut from real ML-100K records: 64 train, 16 valid."""

    def build(folder):
        build_records(
            RecordsConfig(
                data=str(ml100k), sid=str(ml100k_sid), out=str(folder / "all"), max_history=5, sample=64, seed=0
            )
        )
        valid = json.loads((folder / "all" / "valid.json").read_text())[:16]
        (folder / "valid16.json").write_text(json.dumps(valid))

    folder = built_once(tmp_path_factory, "train-records", build)
    return {"train": str(folder / "all" / "train.json"), "valid": str(folder / "valid16.json"), "sid": str(ml100k_sid)}


def config(base, records, out, **overrides):
    settings = dict(
        base_model=str(base),
        train_data_path=[records["train"]],
        val_data_path=records["valid"],
        output_dir=str(out),
        batch_size=16,
        micro_batch_size=8,
        num_epochs=2,
        learning_rate=5e-3,
        finetune="full",
        warmup_ratio=0.0,
        logging_steps=1,
        seed=0,
        sid=records.get("sid"),
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def test_prompt_tokens_are_masked(smol_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    record = {"instruction": "Recommend.", "input": "Seen: Heat", "output": '"Alien (1979)"'}
    (example,), dropped = tokenize_records([record], tokenizer, seq2seq=False, cutoff_len=512)
    prompt_ids = tokenizer(prompt(record), add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(record["output"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert example["input_ids"] == prompt_ids + response_ids
    assert example["labels"] == [-100] * len(prompt_ids) + response_ids
    (full,), _ = tokenize_records([record], tokenizer, seq2seq=False, cutoff_len=512, train_on_inputs=True)
    assert full["labels"] == full["input_ids"]
    (s2s,), _ = tokenize_records([record], tokenizer, seq2seq=True, cutoff_len=512)
    assert s2s["input_ids"] == prompt_ids and s2s["labels"] == response_ids
    # a long prompt keeps its head and its tail; a response that cannot fit drops the record
    (cut,), _ = tokenize_records([record], tokenizer, seq2seq=False, cutoff_len=len(response_ids) + 10)
    assert (
        len(cut["input_ids"]) == len(response_ids) + 10
        and cut["input_ids"][-len(response_ids) - 1 :][1:] == response_ids
    )
    kept, dropped = tokenize_records(
        [record, {**record, "output": "x " * 50}], tokenizer, False, len(response_ids) + 10
    )
    assert len(kept) == 1 and dropped == 1


def test_full_finetune_learns_and_writes_run_files(tiny_llama_dir, records, tmp_path, monkeypatch):
    import grec.training.loss as loss

    shared, forward = [], loss.forward_with_shared_prefix  # batches whose prompt head was encoded once
    monkeypatch.setattr(
        loss,
        "forward_with_shared_prefix",
        lambda model, inputs, prefix: shared.append(prefix) or forward(model, inputs, prefix),
    )
    out = tmp_path / "run"
    state = train(config(tiny_llama_dir, records, out, num_epochs=3, learning_rate=3e-2))
    assert len(shared) == 24 + 3 * 2 and min(shared) > 30  # 3 epochs x 8 micro-batches (+ 2 valid batches each)
    log = json.loads((out / "log.json").read_text())
    assert [row["epoch"] for row in log] == [1, 2, 3]
    assert log[-1]["train_loss"] < log[0]["train_loss"] - 1.0
    assert log[-1]["valid_loss"] < log[0]["valid_loss"]
    assert state["best_epoch"] == 3 and state["best_metric"] == pytest.approx(log[-1]["valid_loss"])
    assert state["arguments"]["learning_rate"] == 3e-2 and state["global_step"] == 12
    for name in ("best", "last"):
        assert (out / name / "model.safetensors").is_file() and (out / name / "training_state.json").is_file()
    assert (out / "loss.png").stat().st_size > 1000
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-4", "checkpoint-8"]


def test_resume_equals_uninterrupted(tiny_llama_dir, records, tmp_path):
    whole = tmp_path / "whole"
    train(config(tiny_llama_dir, records, whole))
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(whole / "checkpoint-4", resumed / "checkpoint-4")  # as if killed after epoch 1 ...
    (resumed / "checkpoint-8").mkdir()  # ... while writing the next checkpoint
    shutil.copy(whole / "checkpoint-8" / "model.safetensors", resumed / "checkpoint-8")
    (resumed / "checkpoint-8" / "trainer_state.json").write_text('{"global_step": 8, "log_hi')
    train(config(tiny_llama_dir, records, resumed, resume_from_checkpoint="auto"))
    a = LlamaForCausalLM.from_pretrained(whole / "last").state_dict()
    b = LlamaForCausalLM.from_pretrained(resumed / "last").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    log_a = json.loads((whole / "log.json").read_text())
    log_b = json.loads((resumed / "log.json").read_text())
    assert log_b[-1]["train_loss"] == pytest.approx(log_a[-1]["train_loss"], abs=1e-6)
    assert log_b[-1]["learning_rate"] == pytest.approx(log_a[-1]["learning_rate"])


def test_a_run_killed_mid_epoch_resumes_from_its_save_steps_checkpoint_exactly(
    tiny_llama_dir, records, tmp_path, monkeypatch
):
    """--save_steps 3 over 2 epochs of 4 steps: checkpoints at steps 3, 6 and the last, 8. A run killed at step 4
    resumes from checkpoint-3 (three quarters into epoch 1) and ends where the uninterrupted run ends."""
    from grec.training.artifacts import RunArtifacts

    steps = dict(save_steps=3, save_total_limit=2, trainer_args={"adam_epsilon": 1e-7})
    whole = tmp_path / "whole"
    state = train(config(tiny_llama_dir, records, whole, **steps))
    assert sorted(p.name for p in whole.glob("checkpoint-*")) == ["checkpoint-6", "checkpoint-8"]  # the newest 2
    log = json.loads((whole / "log.json").read_text())
    assert [(row["step"], row["epoch"]) for row in log] == [(3, 0.75), (6, 1.5), (8, 2.0)]
    assert all(row["valid_loss"] is not None and row["train_loss"] is not None for row in log)
    best = min(log, key=lambda row: row["valid_loss"])
    assert (state["best_step"], state["best_epoch"], state["global_step"]) == (best["step"], best["epoch"], 8)

    book = RunArtifacts.on_step_end

    def killed_at_step_4(self, args, trainer_state, control, **kwargs):
        if trainer_state.global_step == 4:
            raise KeyboardInterrupt("killed")
        return book(self, args, trainer_state, control, **kwargs)

    killed = tmp_path / "killed"
    monkeypatch.setattr(RunArtifacts, "on_step_end", killed_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train(config(tiny_llama_dir, records, killed, **steps))
    monkeypatch.setattr(RunArtifacts, "on_step_end", book)
    assert [p.name for p in killed.glob("checkpoint-*")] == ["checkpoint-3"]
    train(config(tiny_llama_dir, records, killed, resume_from_checkpoint="auto", **steps))
    a = LlamaForCausalLM.from_pretrained(whole / "last").state_dict()
    b = LlamaForCausalLM.from_pretrained(killed / "last").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    resumed = json.loads((killed / "log.json").read_text())
    assert [row["step"] for row in resumed] == [3, 6, 8]
    assert [row["valid_loss"] for row in resumed] == pytest.approx([row["valid_loss"] for row in log], abs=1e-6)
    assert resumed[-1]["train_loss"] == pytest.approx(log[-1]["train_loss"], abs=1e-6)


def test_gpu_flags_are_checked_before_any_work(tiny_llama_dir, records, tmp_path):
    for flags, message in (
        ({"trainer_args": {"learning_rate": 1.0}}, "learning_rate is set by --learning_rate; use that flag"),
        ({"trainer_args": {"adam_epsilonn": 1.0}}, "'adam_epsilonn' is not a transformers.TrainingArguments field"),
        ({"eval_steps": 2}, "--eval_steps: applies with --save_steps"),
        ({"max_steps": 0}, "--max_steps: give a positive number"),
        ({"load_in_4bit": True}, "--load_in_4bit: trains LoRA adapters on a 4-bit base"),
    ):
        with pytest.raises(GrecError, match=re.escape(message)):
            config(tiny_llama_dir, records, tmp_path / "run", **flags)
    state = train(config(tiny_llama_dir, records, tmp_path / "run", max_steps=3, gradient_checkpointing=True))
    assert state["global_step"] == 3


def cut_short(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_cut_short_checkpoints_are_named_and_nothing_is_written(tiny_llama_dir, records, tmp_path, grec_cli):
    from grec.infer import InferConfig
    from grec.training.loop import latest_complete_checkpoint

    run = tmp_path / "run"
    train(config(tiny_llama_dir, records, run))
    cut_short(run / "checkpoint-8" / "optimizer.pt")  # as if the copy stopped halfway
    assert latest_complete_checkpoint(str(run)) == str(run / "checkpoint-4")
    fresh = tmp_path / "fresh"
    resume = str(run / "checkpoint-8")
    with pytest.raises(GrecError, match=r"checkpoint-8: cannot resume from it: optimizer.pt is cut short or damaged"):
        train(config(tiny_llama_dir, records, fresh, resume_from_checkpoint=resume))
    assert not fresh.exists()  # refused before the output folder was made
    cut_short(run / "best" / "model.safetensors")
    whole = r"best: not a whole checkpoint \(model.safetensors is cut short or damaged"
    with pytest.raises(GrecError, match=whole):
        load_trained(run / "best")
    code, _, err = grec_cli("export", "--checkpoint", run / "best", "--out", tmp_path / "merged")
    assert code == 1 and "model.safetensors is cut short or damaged" in err and not (tmp_path / "merged").exists()
    with pytest.raises(GrecError, match=whole):
        InferConfig(checkpoint=str(run / "best"), test_data_path=records["valid"], result_json_data="r.jsonl")
    with pytest.raises(GrecError, match="nowhere: checkpoint folder not found"):
        InferConfig(checkpoint=str(tmp_path / "nowhere"), test_data_path=records["valid"], result_json_data="r.jsonl")


def test_a_kill_between_the_renames_that_publish_best_is_repaired(tiny_llama_dir, records, tmp_path):
    from grec.training.artifacts import recover_published

    run = tmp_path / "run"
    train(config(tiny_llama_dir, records, run, num_epochs=1))
    state = (run / "best" / "training_state.json").read_text()
    os.replace(run / "best", run / ".best.old")  # killed after the first rename: no best/, the new copy staged whole
    shutil.copytree(run / ".best.old", run / ".best.tmp")
    (run / ".best.tmp" / "marker").write_text("new")
    with pytest.raises(GrecError, match="best: not there: the run was killed while publishing it"):
        load_trained(run / "best")
    recover_published(run, "best")
    assert (run / "best" / "marker").read_text() == "new" and not (run / ".best.old").exists()
    os.replace(run / "best", run / ".best.old")  # killed before the staged copy was whole: the previous one returns
    (run / ".best.tmp").mkdir()
    train(config(tiny_llama_dir, records, run, num_epochs=1, resume_from_checkpoint="auto"))  # the next run repairs
    assert (run / "best" / "training_state.json").read_text() == state
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


def test_an_epoch_checkpointed_but_not_booked_is_booked_on_resume(tiny_llama_dir, records, tmp_path):
    whole = tmp_path / "whole"
    train(config(tiny_llama_dir, records, whole))
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copytree(whole / "checkpoint-8", cut / "checkpoint-8")  # killed before epoch 2's callback wrote anything
    state = train(config(tiny_llama_dir, records, cut, resume_from_checkpoint="auto"))
    log_whole, log_cut = (json.loads((d / "log.json").read_text()) for d in (whole, cut))
    assert [r["valid_loss"] for r in log_cut] == pytest.approx([r["valid_loss"] for r in log_whole], abs=1e-6)
    assert state["epoch"] == 2 and state["best_epoch"] == 2  # the one epoch whose weights are left
    assert (cut / "best" / "model.safetensors").is_file()
    a, b = (LlamaForCausalLM.from_pretrained(d / "last").state_dict() for d in (whole, cut))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_with_other_settings_is_not_written_over_or_resumed(tiny_llama_dir, records, tmp_path):
    run = tmp_path / "run"
    train(config(tiny_llama_dir, records, run, num_epochs=1))
    other = dict(num_epochs=1, learning_rate=1e-3)
    with pytest.raises(GrecError, match=r"run: holds a run made with other settings \(--learning_rate 0.005 there, "):
        train(config(tiny_llama_dir, records, run, **other))
    with pytest.raises(GrecError, match="cannot resume a run made with other settings"):
        train(config(tiny_llama_dir, records, run, resume_from_checkpoint="auto", **other))
    with pytest.raises(GrecError, match="--num_epochs 1 there, 2 here"):  # more epochs: only by resuming
        train(config(tiny_llama_dir, records, run, num_epochs=2))
    assert json.loads((run / "training_state.json").read_text())["arguments"]["learning_rate"] == 5e-3  # untouched
    train(config(tiny_llama_dir, records, run, overwrite=True, **other))
    assert json.loads((run / "training_state.json").read_text())["arguments"]["learning_rate"] == 1e-3
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-4"]  # the old run's files are gone


def test_lora_with_sid_tokens_and_export(tiny_llama_dir, records, tmp_path, monkeypatch):
    import huggingface_hub

    out = tmp_path / "lora"
    lora = dict(finetune="lora", num_epochs=1, lora_target_modules=["q_proj", "v_proj"], base_model_id="org/tiny")
    secret = "hf_" + "tOkEn" * 6  # passed the documented way; it must reach no file
    monkeypatch.delenv("HF_TOKEN", raising=False)
    train(config(tiny_llama_dir, records, out, trainer_args={"hub_token": secret}, **lora))
    assert os.environ.pop("HF_TOKEN") == secret  # the hub library's way in, never a pickled TrainingArguments
    assert (out / "best" / "adapter_model.safetensors").is_file() and (out / "best" / "sid_map.json").is_file()
    peft_model, tokenizer, _ = load_trained(out / "best")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"lcrec.jsonl": {"records": 3, "HR@10": 0.5, "NDCG@10": 0.25, "MRR@10": 0.2}}))
    uploads = []  # everything up to the upload runs; the upload itself is one huggingface_hub call
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo, **kw: uploads.append(("repo", repo)))
    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "upload_folder",
        lambda self, **kw: uploads.append(("upload", kw["repo_id"], sorted(os.listdir(kw["folder_path"]))))
        or type("Commit", (), {"commit_url": "https://hub/commit"})(),
    )
    merged_dir = export(
        ExportConfig(
            checkpoint=str(out / "best"), out=str(tmp_path / "merged"), metrics=str(metrics), push_to_hub="me/tiny-rec"
        )
    )
    card = (merged_dir / "README.md").read_text()
    assert 'base_model: "org/tiny"' in card and "LoRA r=8 alpha=16 on q_proj, v_proj, merged" in card
    assert "| lcrec.jsonl | 0.5000 | 0.2500 | 0.2000 |" in card and "sha256" in card
    assert uploads[0] == ("repo", "me/tiny-rec") and uploads[1][:2] == ("upload", "me/tiny-rec")
    assert {"README.md", "sid_map.json", "records.json", "model.safetensors"} <= set(uploads[1][2])
    merged = LlamaForCausalLM.from_pretrained(merged_dir)
    ids = torch.tensor([tokenizer("The user has interacted with: <a_1><b_2><c_3><d_0>")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(peft_model(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-5)
    assert merged.get_input_embeddings().weight.shape[0] == len(tokenizer) > 49152
    for inside in (out, out / "best", out / "best" / "merged"):  # the run, the checkpoint, a folder in it
        with pytest.raises(GrecError, match="holds the checkpoint being exported, or lies inside it"):
            ExportConfig(checkpoint=str(out / "best"), out=str(inside), overwrite=True)
    with pytest.raises(GrecError, match="merged: not empty; pass --overwrite"):
        export(ExportConfig(checkpoint=str(out / "best"), out=str(merged_dir)))
    (merged_dir / "stale.txt").write_text("from the previous export")
    export(ExportConfig(checkpoint=str(out / "best"), out=str(merged_dir), overwrite=True))
    assert not (merged_dir / "stale.txt").exists() and (merged_dir / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging, backup or lock
    written = [p for folder in (out, merged_dir) for p in folder.rglob("*") if p.is_file()]
    assert len(written) > 20 and not [p for p in written if secret.encode() in p.read_bytes()]
    arguments = json.loads((merged_dir / "training_state.json").read_text())["arguments"]
    assert arguments["trainer_args"] == {"hub_token": "<redacted>"}


def test_t5_seq2seq_trains(t5_tokenizer_dir, records, tmp_path):
    from transformers import T5Tokenizer

    tokenizer = T5Tokenizer.from_pretrained(t5_tokenizer_dir)
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(
        T5Config(
            vocab_size=len(tokenizer), d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2, decoder_start_token_id=0
        )
    )
    base = tmp_path / "t5"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    out = tmp_path / "run"
    state = train(config(base, records, out))
    log = json.loads((out / "log.json").read_text())
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert state["arguments"]["model_type"] == "auto" and (out / "best" / "sid_map.json").is_file()


def test_bad_input_fails_before_training(tiny_llama_dir, records, tmp_path):
    with pytest.raises(GrecError, match="model not found"):
        train(config(tmp_path / "nowhere", records, tmp_path / "o"))
    with pytest.raises(GrecError, match="is not a multiple of --micro_batch_size"):
        config(tiny_llama_dir, records, tmp_path / "o", batch_size=10, micro_batch_size=4)
    with pytest.raises(GrecError, match="does not divide into --micro_batch_size 4 x 3 processes"):
        config(tiny_llama_dir, records, tmp_path / "o", batch_size=16, micro_batch_size=4).accumulation_steps(3)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"instruction": "x", "output": "y"}]))
    with pytest.raises(GrecError, match="record 0 has no 'input' field"):
        train(config(tiny_llama_dir, {**records, "train": str(bad)}, tmp_path / "o"))
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    with pytest.raises(GrecError, match="non-empty JSON list"):
        train(config(tiny_llama_dir, {**records, "train": str(empty)}, tmp_path / "o"))
    with pytest.raises(GrecError, match="the semantic-ID token <a_"):
        train(config(tiny_llama_dir, records, tmp_path / "o", sid=None))  # SID records without --sid
    real = SidMap.load(records["sid"])
    SidMap(real.item_ids[::-1], real.codes).save(tmp_path / "other")  # the same tokens, other items
    with pytest.raises(GrecError, match=r"--sid .*other: not the SID map the training records were written with"):
        train(config(tiny_llama_dir, records, tmp_path / "o", sid=str(tmp_path / "other")))
    with pytest.raises(GrecError, match="match nothing in this model; its linear layers are: .*q_proj"):
        train(config(tiny_llama_dir, records, tmp_path / "o", finetune="lora", lora_target_modules=["query"]))
    assert not (tmp_path / "o").exists()


def launch_two_cpu_processes(tiny_llama_dir, records, out: Path, *extra: str) -> str:
    """scripts/train_multi_gpu.sh in its CPU mode (accelerate, torchrun + gloo, two processes); returns stderr."""
    import os
    import subprocess
    import sys

    import yaml

    root = Path(__file__).resolve().parent.parent
    settings = {
        "base_model": str(tiny_llama_dir),
        "train_data_path": [records["train"]],
        "val_data_path": records["valid"],
        "sid": records["sid"],
        "output_dir": str(out),
        "batch_size": 16,
        "micro_batch_size": 8,
        "num_epochs": 2,
        "learning_rate": 3e-2,
        "finetune": "full",
        "warmup_ratio": 0.0,
        "logging_steps": 1,
        "seed": 0,
    }
    (out.parent / f"{out.name}.yaml").write_text(yaml.safe_dump(settings))
    env = {
        **os.environ,
        "TRAIN_CONFIG": str(out.parent / f"{out.name}.yaml"),
        "OMP_NUM_THREADS": "1",
        "MAIN_PROCESS_PORT": str(free_port()),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", str(root / "scripts" / "train_multi_gpu.sh"), "cpu", "2", *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tiny_llama_dir, records, tmp_path):
    """scripts/train_multi_gpu.sh cpu 2: DeepSpeed ZeRO-2 and ZeRO-3 follow one process. (Plain data-parallel
    through the same launcher and training loop: test_align's and the tasks' two-process tests.)"""
    from safetensors.torch import load_file

    root = Path(__file__).resolve().parent.parent
    single = tmp_path / "one"
    train(config(tiny_llama_dir, records, single, learning_rate=3e-2))
    one = json.loads((single / "log.json").read_text())
    zero = {stage: f"--deepspeed={root / 'configs' / 'deepspeed' / f'{stage}.json'}" for stage in ("zero2", "zero3")}
    for name, extra in (("zero2", (zero["zero2"],)), ("zero3", (zero["zero3"],))):
        stderr = launch_two_cpu_processes(tiny_llama_dir, records, tmp_path / name, *extra)
        assert stderr.count("embed_tokens is updated") == 2  # both processes ran
        two = json.loads((tmp_path / name / "log.json").read_text())
        assert [r["train_loss"] for r in two] == pytest.approx([r["train_loss"] for r in one], rel=1e-4), name
        assert [r["valid_loss"] for r in two] == pytest.approx([r["valid_loss"] for r in one], rel=1e-4), name
        state = json.loads((tmp_path / name / "training_state.json").read_text())
        assert state["global_step"] == json.loads((single / "training_state.json").read_text())["global_step"] == 8
    # ZeRO-2 split the optimizer state between the two ranks
    partitions = sorted(p.name for p in (tmp_path / "zero2" / "checkpoint-8" / "global_step8").glob("zero_pp_rank_*"))
    assert partitions == ["zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"]
    # ZeRO-3 shards the weights too; last/ holds them gathered whole, equal to the one process's
    plain, sharded = (load_file(path / "last" / "model.safetensors") for path in (single, tmp_path / "zero3"))
    assert plain.keys() == sharded.keys()
    for key in plain:
        assert torch.allclose(plain[key], sharded[key], atol=1e-5), key


def test_from_scratch_t5_with_tiger_layout(t5_tokenizer_dir, records, tmp_path):
    root = json.loads((Path(__file__).resolve().parent.parent / "configs" / "models" / "tiger_t5.json").read_text())
    assert (root["num_layers"], root["num_decoder_layers"], root["d_model"], root["d_ff"]) == (4, 4, 128, 1024)
    small = {**root, "d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2}
    (tmp_path / "t5.json").write_text(json.dumps(small))
    out = tmp_path / "scratch"
    state = train(config(t5_tokenizer_dir, records, out, from_scratch=str(tmp_path / "t5.json"), finetune="lora"))
    assert state["arguments"]["finetune"] == "full"
    log = json.loads((out / "log.json").read_text())
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    model, tokenizer, seq2seq = load_trained(out / "best")
    assert seq2seq and model.config.d_model == 16 and model.get_input_embeddings().weight.shape[0] == len(tokenizer)


def test_best_by_validation_ndcg(tiny_llama_dir, records, tmp_path):
    out = tmp_path / "ndcg"
    # trained on the validation records themselves, the model soon ranks their targets highly
    memorise = {**records, "train": records["valid"]}
    state = train(
        config(
            tiny_llama_dir,
            memorise,
            out,
            eval_metric="ndcg",
            eval_beams=10,
            learning_rate=3e-2,
            batch_size=8,
            num_epochs=8,
        )
    )
    log = json.loads((out / "log.json").read_text())
    scores = [row["valid_ndcg@10"] for row in log]
    assert all(0.0 <= s <= 1.0 for s in scores) and len(scores) == 8
    assert scores[-1] > scores[0] and max(scores) > 0.1
    assert state["metric"] == "valid_ndcg@10"
    assert state["best_metric"] == max(scores) and scores[state["best_epoch"] - 1] == max(scores)
    # the same number comes out of inference.py (history excluded, as in training) + evaluate on best/
    from grec.evaluate import RankingMetrics
    from grec.infer import InferConfig, infer

    infer(
        InferConfig(
            checkpoint=str(out / "best"),
            test_data_path=records["valid"],
            num_beams=10,
            exclude_history=True,
            result_json_data=str(tmp_path / "valid_ranked.jsonl"),
        )
    )
    metrics = RankingMetrics((10,))
    for record in read_jsonl(tmp_path / "valid_ranked.jsonl"):
        metrics.add(record["predict"], record["target"])
    assert metrics.result()["NDCG@10"] == pytest.approx(state["best_metric"], abs=1e-9)
    with pytest.raises(GrecError, match="--eval_metric ndcg: needs --sid"):
        config(tiny_llama_dir, records, out, eval_metric="ndcg", sid=None)


def test_incremental_training_with_a_grown_sid_map(tiny_llama_dir, records, ml100k, ml100k_sid, tmp_path, caplog):
    """Train with the SIDs of 1,500 items, then continue from that checkpoint with all 1,682."""
    import logging

    import numpy as np

    from grec.base.sid import SidMap
    from grec.index import IndexConfig, build_index

    items = [json.loads(line) for line in (ml100k / "items.jsonl").read_text().splitlines()]
    x = np.load(ml100k_sid / "embeddings.npy")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items[:1500]))
    np.save(tmp_path / "old.npy", x[:1500])
    np.save(tmp_path / "all.npy", x)
    build_index(
        IndexConfig(data=str(tmp_path / "old"), out=str(tmp_path / "sid_old"), embeddings=str(tmp_path / "old.npy"))
    )
    shutil.copytree(tmp_path / "sid_old", tmp_path / "sid_all")
    build_index(
        IndexConfig(data=str(ml100k), out=str(tmp_path / "sid_all"), embeddings=str(tmp_path / "all.npy"), update=True)
    )
    old_map, all_map = SidMap.load(tmp_path / "sid_old"), SidMap.load(tmp_path / "sid_all")
    old_items = set(old_map.item_ids)

    def records_for(sid_map, keep):
        rows = []
        for row in (json.loads(line) for line in (ml100k / "train.jsonl").read_text().splitlines()):
            history = row["history"][-5:]
            if keep(history + [row["target"]]) and len(rows) < 48:
                rows.append(
                    {
                        "instruction": "Next item?",
                        "input": ", ".join(map(sid_map.sid_string, history)),
                        "output": sid_map.sid_string(row["target"]),
                        "target": row["target"],
                    }
                )
        return rows

    (tmp_path / "r_old.json").write_text(json.dumps(records_for(old_map, lambda ids: set(ids) <= old_items)))
    (tmp_path / "r_new.json").write_text(json.dumps(records_for(all_map, lambda ids: not set(ids) <= old_items)))
    first = tmp_path / "first"
    train(
        config(
            tiny_llama_dir,
            {"train": str(tmp_path / "r_old.json"), "valid": records["valid"], "sid": str(tmp_path / "sid_old")},
            first,
            num_epochs=1,
            val_data_path=None,
        )
    )
    before = LlamaForCausalLM.from_pretrained(first / "last").get_input_embeddings().weight.detach()
    second = tmp_path / "second"
    with caplog.at_level(logging.INFO, logger="grec"):
        train(
            config(
                first / "last",
                {"train": str(tmp_path / "r_new.json"), "valid": records["valid"], "sid": str(tmp_path / "sid_all")},
                second,
                num_epochs=1,
                learning_rate=0.0,
                val_data_path=None,
            )
        )
    grown = len(set(all_map.vocabulary()) - set(old_map.vocabulary()))
    assert grown > 0 and f"to current:{len(before) + grown}" in caplog.text
    after = LlamaForCausalLM.from_pretrained(second / "last").get_input_embeddings().weight.detach()
    assert after.shape[0] == len(before) + grown
    assert torch.equal(after[: len(before)], before)  # every trained row kept
    assert torch.allclose(after[len(before) :], before.mean(0).expand(grown, -1), atol=1e-6)  # new rows: the mean
    assert json.loads((second / "last" / "sid_map.json").read_text()) == all_map.to_json()


def test_tensorboard_events_are_written(tiny_llama_dir, records, tmp_path):
    out = tmp_path / "tb"
    train(config(tiny_llama_dir, records, out, num_epochs=1, report_to="tensorboard"))
    events = list(out.rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 100


def test_multi_gpu_script_refuses_an_unknown_mode():
    """Lint-clean, and usage on a wrong mode before anything starts (its CPU mode runs in the test above)."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "scripts" / "train_multi_gpu.sh"
    for lint in (["bash", "-n", str(script)], [str(Path(sys.executable).parent / "shellcheck"), str(script)]):
        assert subprocess.run(lint, capture_output=True).returncode == 0, lint
    bad = subprocess.run(["bash", str(script), "tpu"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage:" in bad.stderr
