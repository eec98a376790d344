"""inference.py on a checkpoint trained here (tiny model, real tokenizer, real ML-100K SIDs), then evaluate."""

import json

import pytest
import torch
from helpers import built_once, read_jsonl, two_process_launcher

from grec.base.errors import GrecError
from grec.base.sid import SidMap
from grec.base.sid.tokens import sid_token_ids
from grec.decoding import SidIndex, sid_beam_search
from grec.evaluate import EvaluateConfig, evaluate
from grec.infer import InferConfig, infer
from grec.records import RecordsConfig, build_records
from grec.train import TrainConfig, train


@pytest.fixture(scope="module")
def trained(ml100k, ml100k_sid, tiny_llama_dir, tmp_path_factory):
    return built_once(tmp_path_factory, "infer", lambda folder: _train(folder, ml100k, ml100k_sid, tiny_llama_dir))


def _train(folder, ml100k, ml100k_sid, tiny_llama_dir):
    build_records(
        RecordsConfig(
            data=str(ml100k), sid=str(ml100k_sid), out=str(folder / "records"), max_history=5, sample=32, seed=0
        )
    )
    train(
        TrainConfig(
            base_model=str(tiny_llama_dir),
            base_model_id="tiny-base",  # recorded in adapter_config.json: where AutoPeftModel looks for the base
            train_data_path=[str(folder / "records" / "train.json")],
            sid=str(ml100k_sid),
            output_dir=str(folder / "run"),
            batch_size=16,
            micro_batch_size=16,
            num_epochs=1,
            finetune="lora",
            cutoff_len=384,  # infer and the Recommender read it from the checkpoint (infer's old default was 512)
            seed=0,
        )
    )


def test_infer_ranks_catalog_items_and_evaluate_scores_them(trained, ml100k_sid, tmp_path):
    out = tmp_path / "results" / "test.jsonl"
    summary = infer(
        InferConfig(
            lora_weights=str(trained / "run" / "last"),
            test_data_path=str(trained / "records" / "test.json"),
            result_json_data=str(out),
            num_beams=10,
            batch_size=4,
            sample=12,
            exclude_history=True,
            sid=str(ml100k_sid),
        )
    )
    assert summary["records"] == 12
    sid_map = SidMap.load(ml100k_sid)
    results = read_jsonl(out)
    for record in results:
        assert len(record["predict"]) == 10 == len(set(record["predict"]))
        assert all(item in sid_map for item in record["predict"])
        assert not set(record["predict"]) & set(record["history"])
        assert record["predict_sids"][0] == sid_map.sid_string(record["predict"][0])
        assert record["predict_scores"] == sorted(record["predict_scores"], reverse=True)
    table = evaluate(EvaluateConfig(input_dir=str(tmp_path / "results"), topk=[1, 10]))
    assert table["test.jsonl"]["records"] == 12 and table["test.jsonl"]["duplicate_rate"] == 0.0


def test_recommender_from_pretrained_returns_what_infer_writes(trained, ml100k, tmp_path):
    """The Python API rebuilds the training prompt from item ids alone (records.json in the checkpoint)."""
    import grec

    out = tmp_path / "results" / "test.jsonl"
    infer(
        InferConfig(
            checkpoint=str(trained / "run" / "last"),
            test_data_path=str(trained / "records" / "test.json"),
            result_json_data=str(out),
            num_beams=10,
            batch_size=3,
            sample=6,
            exclude_history=True,
        )
    )
    carried = json.loads((trained / "run" / "last" / "records.json").read_text())
    split = json.loads((ml100k / "settings.json").read_text())["split"]
    assert carried == {"style": "sid", "prompt": "alpaca", "max_history": 5, "split": split}
    titles = {r["item_id"]: r["title"] for r in read_jsonl(ml100k / "items.jsonl")}
    recommender = grec.Recommender.from_pretrained(trained / "run" / "last", num_beams=10)
    assert recommender.cutoff_len == 384  # from the checkpoint, as infer read it: the rankings below agree
    results = read_jsonl(out)
    batch = recommender.recommend([r["history"] for r in results], k=10)
    for record, items in zip(results, batch):
        assert [i.item_id for i in items] == record["predict"]
        assert [i.score for i in items] == pytest.approx(record["predict_scores"], abs=1e-4)
        assert [i.title for i in items] == [titles[i] for i in record["predict"]]
    one = recommender.recommend(results[0]["history"], k=3, exclude=[results[0]["predict"][0]])
    assert [i.item_id for i in one] == results[0]["predict"][1:4]
    with pytest.raises(
        GrecError, match=r"history\[0\]: unknown item id 'no-such-item'; ids are the checkpoint's catalog"
    ):
        recommender.recommend(["no-such-item"])
    # each stage is callable with its flags, as on the command line
    table = grec.evaluate(input_dir=str(tmp_path / "results"), topk=[10])
    assert table["test.jsonl"]["records"] == 6
    with pytest.raises(GrecError, match="unknown setting 'top_k'"):
        grec.evaluate(input_dir=str(tmp_path / "results"), top_k=[10])


def test_a_lora_checkpoint_copied_elsewhere_loads_with_auto_peft_and_ranks_the_same(
    trained, tiny_llama_dir, tmp_path, monkeypatch
):
    """best/ and its base model copied to another folder (grec cache empty, the training base gone): plain peft
    loads it, and so does grec, and both rank as the original does."""
    import shutil

    from peft import AutoPeftModelForCausalLM

    from grec.decoding.ranker import Ranker
    from grec.lm.checkpoint import load_trained

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(trained / "run" / "last", elsewhere / "last")
    shutil.copytree(tiny_llama_dir, elsewhere / "tiny-base")
    state = json.loads((elsewhere / "last" / "training_state.json").read_text())
    state["arguments"]["base_model"] = "/gone/tiny-llama"  # the machine it was trained on
    (elsewhere / "last" / "training_state.json").write_text(json.dumps(state))
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("GREC_CACHE", str(tmp_path / "empty-cache"))
    records = json.loads((trained / "records" / "test.json").read_text())[:4]

    def ranked(model, tokenizer):
        ranker = Ranker(model.eval(), tokenizer, SidMap.load(elsewhere / "last"), False, 10, 10)
        return ranker.rank(records, exclude_history=True)

    original = ranked(*load_trained(trained / "run" / "last")[:2])
    peft_model = AutoPeftModelForCausalLM.from_pretrained("last")
    from transformers import AutoTokenizer

    assert ranked(peft_model, AutoTokenizer.from_pretrained("last")) == original
    assert ranked(*load_trained("last")[:2]) == original
    shutil.rmtree(elsewhere / "tiny-base")
    with pytest.raises(GrecError, match="nor the base model its adapter config names \\(tiny-base\\)"):
        load_trained("last")


def test_hf_method_agrees_with_vectorised_at_full_width(trained, tmp_path):
    """On a 40-item slice of the catalog, both ways are exhaustive and must rank identically."""
    from grec.decoding.hf import hf_constrained_generate
    from grec.lm.checkpoint import load_trained

    model, tokenizer, _ = load_trained(trained / "run" / "last")
    full = SidMap.load(trained / "run" / "last")
    small = SidMap(full.item_ids[:40], full.codes[:40])
    index = SidIndex.build(small, sid_token_ids(tokenizer, small))
    ids = torch.tensor([tokenizer("### Response:\n")["input_ids"]])
    mask = torch.ones_like(ids)
    ours = sid_beam_search(model, ids, mask, index, num_beams=40)
    rows, scores = hf_constrained_generate(
        model, ids, mask, index, 40, 40, tokenizer.eos_token_id, tokenizer.pad_token_id
    )
    ours_by_item = dict(zip(ours.items[0].tolist(), ours.scores[0].tolist()))
    theirs_by_item = dict(zip(rows[0].tolist(), scores[0].tolist()))
    assert sorted(ours_by_item) == sorted(theirs_by_item) == list(range(40))  # near-ties may swap places
    for item, score in ours_by_item.items():
        assert theirs_by_item[item] == pytest.approx(score, abs=1e-4)


def test_infer_bad_input(trained, ml100k_sid, tmp_path):
    checkpoint = str(trained / "run" / "last")
    records = str(trained / "records" / "test.json")
    assert InferConfig(checkpoint=checkpoint, test_data_path=records, result_json_data="x.json").cutoff_len == 384
    with pytest.raises(GrecError, match="--cutoff_len 512: .* was trained with --cutoff_len 384"):
        InferConfig(checkpoint=checkpoint, test_data_path=records, result_json_data="x.json", cutoff_len=512)
    with pytest.raises(GrecError, match="--num_return_sequences 30 > --num_beams 20"):
        InferConfig(checkpoint=checkpoint, test_data_path=records, result_json_data="x.json", num_return_sequences=30)
    for flag, value, where in (
        ("ci_gamma", 1.0, "--mode title --constrained false"),
        ("items", records, "--mode title"),
        ("val_sample", 5, "--mode title --constrained false"),
        ("cf_model", records, "--mode title"),
    ):  # a flag of another mode would be silently ignored: refused instead
        with pytest.raises(GrecError, match=f"--{flag}: applies only with {where} \\(this run is --mode sid\\)"):
            InferConfig(checkpoint=checkpoint, test_data_path=records, result_json_data="x.json", **{flag: value})
    with pytest.raises(GrecError, match="is a folder; --result_json_data takes a file path"):
        InferConfig(checkpoint=checkpoint, test_data_path=records, result_json_data=str(tmp_path))  # before ranking
    other = SidMap.load(ml100k_sid)
    shuffled = SidMap(other.item_ids, other.codes[::-1].copy())
    shuffled.save(tmp_path)
    (tmp_path / "settings.json").write_text("{}")
    with pytest.raises(GrecError, match="differs from the one the checkpoint was trained with"):
        infer(
            InferConfig(
                checkpoint=checkpoint,
                test_data_path=records,
                result_json_data=str(tmp_path / "r.json"),
                sid=str(tmp_path),
            )
        )
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow  # a launcher / the whole chain end to end: make test runs it, make test-fast does not
def test_two_processes_write_the_same_result_file(trained, tmp_path):
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    common = dict(
        checkpoint=str(trained / "run" / "last"),
        test_data_path=str(trained / "records" / "test.json"),
        num_beams=5,
        batch_size=4,
        sample=10,
    )
    infer(InferConfig(result_json_data=str(tmp_path / "one.jsonl"), **common))
    flags = [f"--{k}={v}" for k, v in common.items()] + [f"--result_json_data={tmp_path / 'two.jsonl'}"]
    launcher = [
        *two_process_launcher(root / "inference.py"),
    ]
    result = subprocess.run(
        [*launcher, *flags],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    one = read_jsonl(tmp_path / "one.jsonl")
    two = read_jsonl(tmp_path / "two.jsonl")
    assert [r["user_id"] for r in two] == [r["user_id"] for r in one] and len(two) == 10
    assert [r["predict"] for r in two] == [r["predict"] for r in one]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.jsonl", "two.jsonl"]  # shards cleaned up


def test_records_from_another_sid_map_are_refused(trained, tmp_path):
    records = json.loads((trained / "records" / "test.json").read_text())[:3]
    records[1]["output"] = "<a_0><b_0><c_0><d_9>"
    (tmp_path / "test.json").write_text(json.dumps(records))
    with pytest.raises(GrecError, match="record 1 spells item .* but the checkpoint's SID map says"):
        infer(
            InferConfig(
                checkpoint=str(trained / "run" / "last"),
                test_data_path=str(tmp_path / "test.json"),
                result_json_data=str(tmp_path / "out.json"),
            )
        )
    assert not (tmp_path / "out.json").exists()


def test_generate_prints_continuations(trained, grec_cli):
    from grec.generate import GenerateConfig, generate

    beams = generate(GenerateConfig(checkpoint=str(trained / "run" / "last"), prompt="The user has", max_new_tokens=5))
    assert len(beams) == 3 and len(set(beams)) == 3  # beam search returns distinct continuations
    sampled = [
        generate(
            GenerateConfig(
                checkpoint=str(trained / "run" / "last"),
                prompt="The user has",
                max_new_tokens=5,
                do_sample=True,
                seed=7,
            )
        )
        for _ in range(2)
    ]
    assert sampled[0] == sampled[1]  # same seed, same samples
    code, out, _ = grec_cli(
        "generate", "--checkpoint", trained / "run" / "last", "--prompt", "Hi", "--max_new_tokens", 3
    )
    assert code == 0 and out.startswith("[1] Hi") and out.count("\n") == 3


def test_long_history_gives_training_and_inference_the_same_prompt(smol_tokenizer_dir):
    """A history over --cutoff_len is cut by one rule: the ranker's prompts equal the training prompts token for token."""
    import numpy as np
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from grec.base.sid import SidMap, add_sid_tokens
    from grec.decoding.ranker import Ranker, prompt_batch
    from grec.train.data import tokenize_records

    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    rng = np.random.default_rng(0)
    sid_map = SidMap(
        [f"i{k}" for k in range(60)], np.stack([np.arange(60) // 16, np.arange(60) % 16, rng.integers(0, 4, 60)], 1)
    )
    add_sid_tokens(tokenizer, sid_map)
    history = [f"i{k}" for k in range(50)]
    records = [
        {
            "instruction": "Predict the next item.",
            "input": ", ".join(map(sid_map.sid_string, history[-n:])),
            "output": sid_map.sid_string("i55"),
            "target": "i55",
            "history": history[-n:],
        }
        for n in (50, 3)  # 50 items (about 350 tokens) are far over the limit; 3 fit
    ]
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
        )
    )
    for adds_bos in (False, True):  # a tokenizer that prepends BOS (LLaMA-2 style) and one that does not
        tokenizer.bos_token, tokenizer.add_bos_token = "<|im_start|>", adds_bos
        ranker = Ranker(model, tokenizer, sid_map, False, 5, 5, cutoff_len=96)
        examples, dropped = tokenize_records(records, tokenizer, seq2seq=False, cutoff_len=96)
        ids, mask = prompt_batch(records, tokenizer, 96, False, "cpu", ranker.response_length)
        assert dropped == 0 and len(examples[0]["input_ids"]) == 96  # the long one was cut to the limit
        for example, row, keep in zip(examples, ids.tolist(), mask.tolist()):
            prompt_ids = [t for t, m in zip(row, keep) if m]
            assert example["input_ids"] == prompt_ids + example["labels"][len(prompt_ids) :]
            assert example["labels"][: len(prompt_ids)] == [-100] * len(prompt_ids)
            assert (prompt_ids[0] == tokenizer.bos_token_id) == adds_bos
        s2s, _ = tokenize_records(records, tokenizer, seq2seq=True, cutoff_len=96)
        ids, mask = prompt_batch(records, tokenizer, 96, True, "cpu", ranker.response_length)
        assert [e["input_ids"] for e in s2s] == [
            [t for t, m in zip(r, k) if m] for r, k in zip(ids.tolist(), mask.tolist())
        ]
