"""Task lm_pretrain on real text: packing, perplexity falling on the reviews, resume, continued
pretraining of the packaged SmolLM2, and bad input."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from grec.base.errors import GrecError
from grec.generate import GenerateConfig, generate
from grec.tasks import TaskConfig, train_task
from grec.tasks.lm_pretrain import LmPretrainTask


def lm(out, **overrides) -> TaskConfig:
    settings = dict(
        task="lm_pretrain",
        output_dir=str(out),
        num_epochs=2,
        batch_size=16,
        learning_rate=3e-3,
        lr_scheduler="cosine",
        warmup_ratio=0.05,
        logging_steps=5,
        data_args={"max_documents": 400, "block_size": 32, "vocab_size": 1000},
    )
    return TaskConfig(**{**settings, **overrides})


def test_packing_keeps_every_token_once_without_padding(ml100k, tmp_path):
    cfg = lm(tmp_path, data=str(ml100k), data_args={"block_size": 16, "vocab_size": 500})
    task = LmPretrainTask(cfg)
    folder = tmp_path / "tokens"
    stream = np.fromfile(folder / "train.bin", dtype=task.meta["dtype"]).astype(np.int64)
    blocks = task.splits["train"]
    assert len(blocks) == (len(stream) - 1) // 16 > 100
    batch = task.collate([blocks[k] for k in range(len(blocks))])
    assert batch["input_ids"].shape == batch["shift_labels"].shape == (len(blocks), 16)  # full blocks, no padding
    n = len(blocks) * 16
    assert torch.equal(batch["input_ids"].flatten(), torch.from_numpy(stream[:n]))  # inputs: the stream in order
    assert torch.equal(batch["shift_labels"].flatten(), torch.from_numpy(stream[1 : n + 1]))  # each token a target once
    # the stream is the training documents, each ended by eos, in file order (1682 items, 5% + 5% held out)
    eos = task.tokenizer.eos_token_id
    ends = np.flatnonzero(stream == eos)
    documents = (folder / "train.txt").read_text().splitlines()
    assert len(ends) == len(documents) == task.meta["documents"]["train"]
    assert sum(task.meta["documents"].values()) == 1682 and 1450 < len(documents) < 1600
    starts = np.concatenate([[0], ends[:-1] + 1])
    bos = task.tokenizer.bos_token_id
    for k in (0, 1, len(documents) // 2, len(documents) - 1):
        ids = stream[starts[k] : ends[k]].tolist()
        assert ids[0] == bos and task.tokenizer.decode(ids[1:]) == documents[k]
    # a second task over the same corpus and settings reuses the token files
    stamp = (folder / "train.bin").stat().st_mtime_ns
    assert len(LmPretrainTask(cfg).splits["train"]) == len(blocks)
    assert (folder / "train.bin").stat().st_mtime_ns == stamp


def test_validation_perplexity_falls_on_the_reviews(tmp_path):
    out = tmp_path / "reviews"
    state = train_task(
        lm(out, num_epochs=3, batch_size=8, data_args={"max_documents": 600, "block_size": 128, "vocab_size": 1000})
    )
    log = json.loads((out / "log.json").read_text())
    first, last = log[0]["valid_perplexity"], log[-1]["valid_perplexity"]
    assert first < 1000 and last < 0.75 * first  # measured 205 -> 137 on 600 reviews (188 -> 116 on 800)
    assert all(row["valid_loss"] == pytest.approx(np.log(row["valid_perplexity"])) for row in log)
    assert state["metric"] == "valid_perplexity" and state["best_epoch"] == 3
    assert state["test"]["perplexity"] < 1.3 * last
    model = AutoModelForCausalLM.from_pretrained(out / "best")  # a plain Hugging Face model folder
    assert model.config.model_type == "llama" and model.config.vocab_size == 1000
    assert (out / "loss.png").is_file() and (out / "test_metrics.json").is_file()
    texts = generate(GenerateConfig(checkpoint=str(out / "best"), prompt="This dress", max_new_tokens=8))
    assert len(texts) == 3 and all(t.strip() for t in texts)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    shared = {"max_documents": 400, "block_size": 32, "vocab_size": 1000, "token_dir": str(tmp_path / "tokens")}
    whole = tmp_path / "whole"
    train_task(lm(whole, data_args=shared))
    steps = sorted(int(p.name.split("-")[1]) for p in whole.glob("checkpoint-*"))
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(whole / f"checkpoint-{steps[0]}", resumed / f"checkpoint-{steps[0]}")  # as if killed in epoch 2
    train_task(lm(resumed, data_args=shared, resume_from_checkpoint="auto"))
    a = LlamaForCausalLM.from_pretrained(whole / "last").state_dict()
    b = LlamaForCausalLM.from_pretrained(resumed / "last").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    log_a, log_b = (json.loads((d / "log.json").read_text()) for d in (whole, resumed))
    assert log_b[-1]["valid_perplexity"] == pytest.approx(log_a[-1]["valid_perplexity"], rel=1e-5)
    assert log_b[-1]["learning_rate"] == pytest.approx(log_a[-1]["learning_rate"])  # the cosine schedule went on


def test_gpt2_with_gradient_accumulation(ml100k, tmp_path):
    state = train_task(
        lm(
            tmp_path,
            data=str(ml100k),
            model="gpt2",
            num_epochs=1,
            micro_batch_size=8,
            data_args={"max_documents": 400, "block_size": 32, "vocab_size": 500},
            model_args={"hidden_size": 64, "num_layers": 1},
        )
    )
    task = json.loads((tmp_path / "best" / "task.json").read_text())
    blocks = (task["tokens"]["train"] - 1) // 32
    micro_batches = math.ceil(blocks / 8)
    assert state["global_step"] == math.ceil(micro_batches / 2)  # 16 per optimiser step, as two micro-batches of 8
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "best").config.model_type == "gpt2"
    assert state["test"]["perplexity"] < 500 / 4  # vocabulary 500: a uniform guess scores 500


@pytest.mark.slow
def test_continued_pretraining_of_smollm2_lowers_its_perplexity_on_item_texts(ml100k, tmp_path):
    cfg = lm(
        tmp_path,
        data=str(ml100k),
        base_model="smollm2",
        num_epochs=1,
        batch_size=8,
        learning_rate=1e-4,
        lr_scheduler="constant",
        data_args={"max_documents": 64, "block_size": 64},
    )
    task = LmPretrainTask(cfg)
    assert task.model_name == "causal_lm" and len(task.tokenizer) == 49152
    before = task.evaluate(task.build_model().eval(), "valid")["perplexity"]
    state = train_task(cfg)
    after = state["scores"]["1"]["perplexity"]
    assert after < 0.8 * before  # measured on ML-100K item texts: the base model has never seen this format


def test_bad_input(ml100k, tmp_path):
    items = str(ml100k)
    with pytest.raises(GrecError, match="block_size 64 is larger than the model's 32 positions"):
        LmPretrainTask(
            lm(
                tmp_path / "a",
                data=items,
                data_args={"block_size": 64, "vocab_size": 500},
                model_args={"max_position_embeddings": 32},
            )
        ).build_model()
    with pytest.raises(GrecError, match="--vocab_size 90000: this corpus supports at most"):
        LmPretrainTask(lm(tmp_path / "b", data=items, data_args={"vocab_size": 90000}))
    latin = tmp_path / "latin.txt"
    latin.write_bytes(("A fine dress.\n" * 50 + "Amélie\n").encode("latin-1"))
    with pytest.raises(GrecError, match=r"latin.txt:51: not utf-8 text at byte 702"):
        LmPretrainTask(lm(tmp_path / "c", data=str(latin)))
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"title": "x"}\n')
    with pytest.raises(GrecError, match="empty.jsonl: no text in this corpus file"):
        LmPretrainTask(lm(tmp_path / "d", data=str(empty)))
    with pytest.raises(GrecError, match="missing.txt: corpus file not found"):
        LmPretrainTask(lm(tmp_path / "e", data=str(tmp_path / "missing.txt")))
    from grec.base.assets import minilm_dir

    with pytest.raises(GrecError, match="has no end-of-text token"):  # a BERT WordPiece tokenizer: [SEP], no eos
        LmPretrainTask(lm(tmp_path / "f", data=items, data_args={"tokenizer": str(minilm_dir())}))
    small = tmp_path / "small-tok"
    LmPretrainTask(lm(tmp_path / "g", data=items, data_args={"vocab_size": 500, "token_dir": str(tmp_path / "t")}))
    shutil.copytree(tmp_path / "t" / "tokenizer", small)
    big = tmp_path / "big-model"
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=1000,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            eos_token_id=900,
        )
    ).save_pretrained(big)
    AutoTokenizer.from_pretrained(small).save_pretrained(big)
    with pytest.raises(GrecError, match="eos_token_id is 900, but the tokenizer has 500 tokens"):
        LmPretrainTask(
            lm(tmp_path / "h", data=items, base_model=str(big), data_args={"tokenizer": str(small)})
        ).build_model()
    with pytest.raises(GrecError, match="model 'gpt2' does not start from a pretrained model"):
        LmPretrainTask(
            lm(tmp_path / "i", data=items, model="gpt2", base_model=str(big), data_args={"tokenizer": str(small)})
        ).build_model()
    assert not any((tmp_path / name).exists() for name in ("b/tokens/meta.json", "c/tokens/meta.json"))


@pytest.mark.slow
def test_two_processes_share_one_tokenisation(tmp_path):
    """Under accelerate launch process 0 splits and tokenises; process 1 waits and reads the same files."""
    import os
    import subprocess
    from pathlib import Path

    from helpers import two_process_launcher

    root = Path(__file__).resolve().parent.parent
    launcher = [
        *two_process_launcher(root / "train.py"),
        "--task",
        "lm_pretrain",
        "--num_epochs",
        "1",
        "--batch_size",
        "16",
        "--data_args",
        "{max_documents: 600, block_size: 64, vocab_size: 1000}",
        "--output_dir",
        str(tmp_path),
    ]
    result = subprocess.run(
        launcher, capture_output=True, text=True, timeout=600, cwd=root, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained lm_pretrain") == 1
    meta = json.loads((tmp_path / "tokens" / "meta.json").read_text())
    blocks = (meta["tokens"]["train"] - 1) // 64
    state = json.loads((tmp_path / "training_state.json").read_text())
    assert state["global_step"] == math.ceil(blocks / 16)  # the global batch is 16 over both processes
    perplexity = json.loads((tmp_path / "test_metrics.json").read_text())["perplexity"]
    # a uniform guess over the 1,000 tokens scores 1,000; the bar is the training tokens' unigram frequencies
    assert perplexity < 0.9 * unigram_perplexity(tmp_path / "tokens", meta["dtype"])  # measured 214 vs 275


def unigram_perplexity(folder, dtype: str) -> float:
    """Test perplexity of add-one unigram frequencies counted on the training tokens."""
    import numpy as np

    train, test = (np.fromfile(folder / f"{name}.bin", dtype=dtype) for name in ("train", "test"))
    counts = np.bincount(train, minlength=int(max(train.max(), test.max())) + 1) + 1.0
    return float(np.exp(-np.log(counts[test] / counts.sum()).mean()))
