"""grec align (DPO, S-DPO) on tiny SFT checkpoints trained here on real ML-100K records."""

import json
import shutil

import pytest
import torch
from helpers import built_once, read_jsonl
from transformers import LlamaForCausalLM, T5Config, T5ForConditionalGeneration, T5Tokenizer

from grec.align import AlignConfig, align
from grec.base.errors import GrecError
from grec.lm.checkpoint import load_trained
from grec.records import RecordsConfig, build_records
from grec.train import TrainConfig, train
from grec.training.loss import keeps_logits_by_mask
from grec.training.preference import PreferenceCollator, preference_example, sequence_logps


@pytest.fixture(scope="module")
def sft(ml100k, ml100k_sid, tiny_llama_dir, t5_tokenizer_dir, tmp_path_factory):
    """Records (24 train, 8 valid) and SFT checkpoints: the tiny LLaMA full and LoRA, a tiny T5 full."""
    folder = built_once(
        tmp_path_factory, "align-sft", lambda f: _sft(f, ml100k, ml100k_sid, tiny_llama_dir, t5_tokenizer_dir)
    )
    return {
        "train": str(folder / "train24.json"),
        "valid": str(folder / "valid8.json"),
        "full": str(folder / "full" / "last"),
        "lora": str(folder / "lora" / "last"),
        "t5": str(folder / "t5" / "last"),
    }


def _sft(folder, ml100k, ml100k_sid, tiny_llama_dir, t5_tokenizer_dir):
    build_records(
        RecordsConfig(
            data=str(ml100k), sid=str(ml100k_sid), out=str(folder / "records"), max_history=5, sample=48, seed=0
        )
    )
    for name, size in (("train", 24), ("valid", 8)):
        records = json.loads((folder / "records" / f"{name}.json").read_text())[:size]
        (folder / f"{name}{size}.json").write_text(json.dumps(records))
    common = dict(
        base_model=str(tiny_llama_dir),
        train_data_path=[str(folder / "train24.json")],
        sid=str(ml100k_sid),
        batch_size=16,
        micro_batch_size=8,
        num_epochs=1,
        learning_rate=5e-3,
        seed=0,
    )
    train(TrainConfig(**common, finetune="full", output_dir=str(folder / "full")))
    train(
        TrainConfig(
            **common, finetune="lora", lora_target_modules=["q_proj", "v_proj"], output_dir=str(folder / "lora")
        )
    )
    tokenizer = T5Tokenizer.from_pretrained(t5_tokenizer_dir)
    torch.manual_seed(0)
    t5 = T5Config(
        vocab_size=len(tokenizer), d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2, decoder_start_token_id=0
    )
    T5ForConditionalGeneration(t5).save_pretrained(folder / "t5-base")
    tokenizer.save_pretrained(folder / "t5-base")
    train(
        TrainConfig(**{**common, "base_model": str(folder / "t5-base")}, finetune="full", output_dir=str(folder / "t5"))
    )


SDPO = dict(method="sdpo", negatives="hard,popular,uniform", num_negatives=3)


@pytest.fixture(scope="module")
def sdpo_run(sft, tmp_path_factory):
    """One S-DPO run on the full SFT checkpoint (2 epochs of 3 steps of 8), shared by the tests below."""
    folder = built_once(tmp_path_factory, "align-sdpo", lambda f: align(settings(sft, "full", f / "run", **SDPO)))
    return folder / "run", json.loads((folder / "run" / "training_state.json").read_text())


def settings(sft, kind, out, **overrides):
    values = dict(
        checkpoint=sft[kind],
        train_data_path=[sft["train"]],
        val_data_path=sft["valid"],
        output_dir=str(out),
        batch_size=8,
        micro_batch_size=8,
        num_epochs=2,
        learning_rate=2e-2,
        beta=0.5,
        hard_beams=4,
        eval_beams=4,
        warmup_ratio=0.0,
        logging_steps=1,
        seed=0,
    )
    if overrides.get("method") == "grpo":  # the preference methods' flags are refused with grpo
        del values["beta"], values["hard_beams"]
    values.update(overrides)
    return AlignConfig(**values)


@torch.no_grad()
def logps_of(model, pairs, reference=False, seq2seq=False):
    """Policy log-probabilities of every pair's responses (adapter switched off with ``reference``)."""
    model.eval()
    collator = PreferenceCollator(0)
    batch = collator([preference_example(p["prompt"], p["responses"], seq2seq, p["ref"]) for p in pairs])
    batch.pop("ref")
    by_mask = not seq2seq and keeps_logits_by_mask(model)  # the logits of response tokens only, as align computes them
    if reference:
        with model.disable_adapter():
            return sequence_logps(model, batch, seq2seq, by_mask).view(len(pairs), -1)
    return sequence_logps(model, batch, seq2seq, by_mask).view(len(pairs), -1)


def margins(logps, pairs):
    ref = torch.tensor([p["ref"] for p in pairs])
    rewards = logps - ref
    return (rewards[:, :1] - rewards[:, 1:]).mean().item()


def trained(log: list[dict]) -> list[float]:
    """The train losses of a log.json, past the starting model's row (epoch 0, no loss)."""
    return [row["train_loss"] for row in log if row["epoch"]]


def check_margin_and_reference(sft, kind, out, k):
    pairs = read_jsonl(out / "pairs.jsonl")
    records = json.loads(open(sft["train"]).read())
    for pair, record in zip(pairs, records):
        users = {i for r in records if r["user_id"] == record["user_id"] for i in [*r["history"], r["target"]]}
        assert len(pair["negatives"]) == k == len(set(pair["negatives"])) and not users & set(pair["negatives"])
    policy, _, seq2seq = load_trained(out / "last")
    margin = margins(
        logps_of(policy, pairs, seq2seq=seq2seq), pairs
    )  # 0 at the start: the policy is the reference then
    assert margin > 0.5, f"the preference margin did not grow ({margin:.3f})"
    # the reference is the SFT checkpoint, untouched by training
    sft_model, _, _ = load_trained(sft[kind])
    ref = torch.tensor([p["ref"] for p in pairs])
    assert torch.allclose(logps_of(sft_model, pairs, seq2seq=seq2seq), ref, atol=1e-4)
    if kind == "lora":
        assert torch.allclose(logps_of(policy, pairs, reference=True), ref, atol=1e-4)


def test_sdpo_raises_its_margin_against_a_frozen_reference(sft, sdpo_run):
    out, state = sdpo_run
    check_margin_and_reference(sft, "full", out, 3)
    log = json.loads((out / "log.json").read_text())
    assert state["metric"] == "valid_ndcg@10" and len(log) == 3 and all("valid_ndcg@10" in row for row in log)
    # epoch 0 is the starting model, scored before the first step: best/ is never worse than it on validation
    assert log[0]["epoch"] == 0 and log[0]["train_loss"] is None
    assert state["best_metric"] == max(row["valid_ndcg@10"] for row in log) >= log[0]["valid_ndcg@10"]
    assert log[2]["train_margin"] > log[1]["train_margin"] and 0 <= log[2]["train_accuracy"] <= 1


@pytest.mark.parametrize(
    "kind, method, negatives, k",
    [("full", "dpo", "hard", 1), ("lora", "sdpo", "hard,popular", 2), ("t5", "dpo", "hard,uniform", 2)],
)
def test_dpo_lora_and_seq2seq_raise_their_margin_against_a_frozen_reference(sft, tmp_path, kind, method, negatives, k):
    out = tmp_path / method
    epochs = 2 if kind == "t5" else 1  # the tiny T5 learns slowest
    align(settings(sft, kind, out, method=method, negatives=negatives, num_negatives=k, num_epochs=epochs))
    check_margin_and_reference(sft, kind, out, k)


def test_hard_negatives_are_the_sft_models_top_items_that_are_not_the_users(sft, sdpo_run):
    from grec.base.sid import SidMap
    from grec.decoding.ranker import Ranker

    pairs = read_jsonl(sdpo_run[0] / "pairs.jsonl")
    model, tokenizer, _ = load_trained(sft["full"])
    ranker = Ranker(model.eval(), tokenizer, SidMap.load(sft["full"]), False, 4, 4, 256)
    records = json.loads(open(sft["train"]).read())
    by_user = {}
    for r in records:
        by_user.setdefault(r["user_id"], set()).update([*r["history"], r["target"]])
    for record, pair, (items, scores) in zip(records[:4], pairs[:4], ranker.rank(records[:4])):
        first = next(i for i in items if i not in by_user[record["user_id"]])
        assert pair["negatives"][0] == first
        # what align trains is what the beam ranks by: the SID tokens' log-probability, no end token after them
        assert pair["ref"][1] == pytest.approx(scores[items.index(first)], abs=1e-4)


def test_resume_equals_an_uninterrupted_run_and_infer_reads_the_result(sft, sdpo_run, tmp_path):
    whole, resumed = sdpo_run[0], tmp_path / "resumed"
    resumed.mkdir()  # as if killed after epoch 1 (3 steps of 8 examples): its pairs and checkpoint kept
    shutil.copytree(whole / "checkpoint-3", resumed / "checkpoint-3")
    shutil.copy(whole / "pairs.jsonl", resumed / "pairs.jsonl")
    align(settings(sft, "full", resumed, resume_from_checkpoint="auto", **SDPO))
    a = LlamaForCausalLM.from_pretrained(whole / "last").state_dict()
    b = LlamaForCausalLM.from_pretrained(resumed / "last").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    log_a, log_b = (json.loads((out / "log.json").read_text()) for out in (whole, resumed))
    assert log_b[-1]["train_loss"] == pytest.approx(log_a[-1]["train_loss"], abs=1e-6)
    from grec.infer import InferConfig, infer

    result = tmp_path / "ranked.jsonl"
    infer(
        InferConfig(
            checkpoint=str(whole / "best"), test_data_path=sft["valid"], num_beams=4, result_json_data=str(result)
        )
    )
    assert len(read_jsonl(result)) == 8


def test_gradient_accumulation_gives_the_losses_of_one_whole_batch(sft, sdpo_run, tmp_path):
    """Two micro-batches of 4 accumulated: the same losses as one of 8 (the loss is a per-batch mean)."""
    align(settings(sft, "full", tmp_path / "ga", micro_batch_size=4, **SDPO))
    one = json.loads((sdpo_run[0] / "log.json").read_text())
    two = json.loads((tmp_path / "ga" / "log.json").read_text())
    assert trained(two) == pytest.approx(trained(one), rel=1e-4)


def test_bad_settings_are_refused_before_any_work(sft, tmp_path):
    with pytest.raises(GrecError, match="--negatives: expected a comma list of distinct sources"):
        settings(sft, "full", tmp_path / "o", negatives="hard,best")
    with pytest.raises(GrecError, match="--method: expected one of dpo, sdpo"):
        settings(sft, "full", tmp_path / "o", method="ppo")
    with pytest.raises(GrecError, match="--checkpoint: required"):
        AlignConfig(train_data_path=[sft["train"]], output_dir=str(tmp_path / "o"))
    # a flag of another method is refused, not accepted and ignored
    with pytest.raises(
        GrecError, match=r"--num_generations: applies only with --method grpo \(this run is --method dpo\)"
    ):
        settings(sft, "full", tmp_path / "o", method="dpo", num_generations=4)
    with pytest.raises(GrecError, match="--beta: applies only with --method dpo or sdpo"):
        settings(sft, "full", tmp_path / "o", method="grpo", beta=0.3)
    with pytest.raises(GrecError, match="--temperature: applies only with --method grpo --rollout sample"):
        settings(sft, "full", tmp_path / "o", method="grpo", temperature=0.7)


def test_grpo_rollouts_are_valid_new_distinct_items(sft):
    from types import SimpleNamespace

    from grec.base.sid import SidMap
    from grec.decoding.ranker import Ranker
    from grec.training.grpo import grpo_trainer_class

    model, tokenizer, _ = load_trained(sft["full"])
    sid_map = SidMap.load(sft["full"])
    records = json.loads(open(sft["train"]).read())[:8]
    ranker = Ranker(model, tokenizer, sid_map, False, 16, 16, 256)
    groups = grpo_trainer_class().rollouts(SimpleNamespace(ranker=ranker, rollout="beam"), model.train(), records)
    assert model.training  # put back as it was
    for record, group in zip(records, groups):
        assert len(group) == len(set(group)) == 16
        assert all(item in sid_map for item in group) and not set(group) & set(record["history"])


def test_grpo_raises_the_advantage_weighted_margin_and_logs_its_rollouts(sft, tmp_path):
    """Rank-aware rewards on the SFT model's own groups: after a few GRPO steps the policy moves its
    log-probabilities (relative to the reference) towards the better-rewarded items of each group."""
    from grec.base.sid import SidMap
    from grec.decoding.ranker import Ranker
    from grec.training.grpo import group_advantages, response_layout, rewards

    out = tmp_path / "grpo"
    flags = dict(method="grpo", num_generations=6, reward="rank_aware", kl_coef=0.01, learning_rate=1e-2)
    align(settings(sft, "full", out, **flags))
    sft_model, tokenizer, _ = load_trained(sft["full"])
    sid_map = SidMap.load(sft["full"])
    records = json.loads(open(sft["train"]).read())
    groups = [items for items, _ in Ranker(sft_model.eval(), tokenizer, sid_map, False, 6, 6, 256).rank(records, True)]
    advantages = group_advantages(rewards("rank_aware", groups, [r["target"] for r in records]))
    batch = response_layout(tokenizer, sid_map, False, 256)(records, groups)
    batch.pop("ref")
    policy, _, _ = load_trained(out / "last")
    with torch.no_grad():
        moved = sequence_logps(policy.eval(), batch, False, True) - sequence_logps(sft_model, batch, False, True)
    assert (advantages * moved.view(advantages.shape)).sum(1).mean() > 0.05
    log = json.loads((out / "log.json").read_text())
    assert log[-1]["train_valid_rollouts"] == 1.0 and 0 < log[-1]["train_distinct_items"] <= 1
    assert log[-1]["train_reward_mean"] > -1 and log[-1]["train_kl"] >= 0 and "valid_ndcg@10" in log[-1]


@pytest.mark.slow
def test_two_processes_follow_one_with_the_same_global_batch(sft, sdpo_run, tmp_path):
    """accelerate launch align.py on two CPU processes (4 examples each): process 0 writes pairs.jsonl,
    both train on it, and the losses follow the one-process run of 8 per step."""
    import os
    import subprocess
    from pathlib import Path

    from helpers import two_process_launcher

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "two"
    flags = {
        "checkpoint": sft["full"], "train_data_path": sft["train"], "val_data_path": sft["valid"], "output_dir": out,
        "batch_size": 8, "micro_batch_size": 4, "num_epochs": 2, "learning_rate": 2e-2, "beta": 0.5, "hard_beams": 4,
        "eval_beams": 4, "warmup_ratio": 0.0, "logging_steps": 1, "seed": 0, **SDPO,
    }  # fmt: skip
    command = two_process_launcher(root / "align.py") + [f"--{k}={v}" for k, v in flags.items()]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=root, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    one = json.loads((sdpo_run[0] / "log.json").read_text())
    two = json.loads((out / "log.json").read_text())
    assert trained(two) == pytest.approx(trained(one), rel=1e-4)
    assert read_jsonl(out / "pairs.jsonl") == read_jsonl(sdpo_run[0] / "pairs.jsonl")


def test_sampled_rollouts_are_catalog_items_outside_the_history_scored_by_the_model(sft):
    from grec.base.sid import SidMap
    from grec.decoding import sid_sample
    from grec.decoding.ranker import Ranker, prompt_batch
    from grec.training.grpo import response_layout

    model, tokenizer, _ = load_trained(sft["full"])
    sid_map = SidMap.load(sft["full"])
    records = json.loads(open(sft["train"]).read())[:4]
    ranker = Ranker(model.eval(), tokenizer, sid_map, False, 8, 8, 256)
    torch.manual_seed(0)
    groups = ranker.sample(records, 32)
    for record, group in zip(records, groups):
        assert len(group) == 32 and all(i in sid_map for i in group) and not set(group) & set(record["history"])
    # each draw's score is its untempered log-probability under the model (its SID tokens: no end token)
    ids, mask = prompt_batch(records, tokenizer, 256, False, "cpu", ranker.response_length)
    result = sid_sample(model, ids, mask, ranker.index, 5, 0.7)
    items = [[ranker.index.item_ids[r] for r in row] for row in result.items.tolist()]
    batch = response_layout(tokenizer, sid_map, False, 256)(records, items)
    batch.pop("ref")
    with torch.no_grad():
        assert torch.allclose(sequence_logps(model, batch, False).view(4, 5), result.scores, atol=1e-4)
    assert all(len(set(group)) > 1 for group in groups)  # draws, not one path repeated


def test_collab_reward_similarity_is_item_knn_cosine_of_user_sets():
    from grec.align.negatives import collab_similarity

    records = [
        {"user_id": "u1", "history": ["a", "b"], "target": "c"},
        {"user_id": "u2", "history": ["a"], "target": "c"},
        {"user_id": "u3", "history": ["d"], "target": "b"},
    ]
    similarity = collab_similarity(records)
    assert similarity("a", "c") == pytest.approx(1.0)  # the same two users
    assert similarity("a", "b") == pytest.approx(0.5)  # one shared user of two each
    assert similarity("b", "d") == pytest.approx(2**-0.5) and similarity("a", "nope") == 0.0
