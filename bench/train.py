"""Training throughput: grec's trainer against a plain transformers.Trainer script on the same model and records.

The plain script is what alpaca-lora / BIGRec users run: random batches padded to their longest
member (DataCollatorForSeq2Seq) and Hugging Face's full-vocabulary loss. grec batches records of
similar length together (--group_by_length), draws dropout masks with a cheaper generator on the
CPU (grec/lm/cpu_dropout.py), keeps freed memory in the process between steps instead of
faulting it in again (grec/lm/cpu_memory.py) and, for causal models, projects only the positions before a
target and encodes a batch's shared prompt head once (grec/training/loss.py). Each side runs in a
fresh process, for its own peak memory; throughput counts real (non-padding) tokens.

    .venv/bin/python bench/train.py --quick                        # TIGER T5, 2-3 minutes; ratio on the last line
    .venv/bin/python bench/train.py --quick --repeat 3             # each side's fastest of three runs
    .venv/bin/python bench/train.py --quick --plain_keep_memory    # + the plain script with grec's allocator setting
    .venv/bin/python bench/train.py --model smollm2 --records 96   # SmolLM2 + LoRA + SID tokens, ~3 minutes
    .venv/bin/python bench/train.py --seqrec                       # SASRec/HSTU step at ML-1M size (bench/seqrec_step.py)
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from provenance import provenance

from grec.base.io import write_json
from grec.lm.cpu_memory import kept_freed_memory

ROOT = Path(__file__).resolve().parent.parent


def prepare_inputs(tmp: Path, n_records: int) -> tuple[Path, Path, Path]:
    """Prepared ML-100K, SIDs (from --embeddings-free sequential IDs: speed does not depend on them), records."""
    from grec.index import IndexConfig, build_index
    from grec.prepare import PrepareConfig, prepare
    from grec.records import RecordsConfig, build_records

    prepare(PrepareConfig(dataset="ml-100k", out=str(tmp / "ml")))
    build_index(
        IndexConfig(data=str(tmp / "ml"), out=str(tmp / "sid"), method="sequential", levels=3, codebook_size=16)
    )
    build_records(
        RecordsConfig(
            data=str(tmp / "ml"), sid=str(tmp / "sid"), out=str(tmp / "rec"), sample=n_records, max_history=20, seed=0
        )
    )
    return tmp / "rec" / "train.json", tmp / "sid", tmp / "tok"


def tokenizer_folder(tmp: Path, records: Path) -> Path:
    """A small sentencepiece T5 tokenizer trained on the records' text."""
    import sentencepiece as spm
    from transformers import T5Tokenizer

    folder = tmp / "tok"
    folder.mkdir()
    texts = [r["instruction"] + " " + r["input"] for r in json.loads(records.read_text())[:2000]]
    (folder / "corpus.txt").write_text("\n".join(texts))
    spm.SentencePieceTrainer.train(
        input=str(folder / "corpus.txt"),
        model_prefix=str(folder / "spiece"),
        vocab_size=300,
        hard_vocab_limit=False,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    T5Tokenizer.from_pretrained(folder, extra_ids=0).save_pretrained(folder)
    return folder


def run_grec(records: Path, sid: Path, tok: Path, out: Path, steps_records: int, model: str = "t5") -> dict:
    import datasets  # noqa: F401  imported before the clock starts, as the plain scripts import theirs
    import peft  # noqa: F401
    from transformers import Trainer  # noqa: F401

    from grec.train import TrainConfig, train

    if model == "t5":
        base = dict(
            base_model=str(tok),
            from_scratch=str(ROOT / "configs" / "models" / "tiger_t5.json"),
            batch_size=32,
            micro_batch_size=32,
            learning_rate=1e-3,
        )
    else:
        from grec.base import assets

        base = dict(
            base_model=str(assets.smollm2_gguf()),
            finetune="lora",
            batch_size=8,
            micro_batch_size=8,
            learning_rate=2e-4,
            cutoff_len=256,
        )
    cfg = TrainConfig(
        train_data_path=[str(records)],
        sid=str(sid),
        output_dir=str(out),
        num_epochs=1,
        sample=steps_records,
        group_by_length=True,
        seed=0,
        logging_steps=50,
        **base,
    )
    start = time.perf_counter()
    train(cfg)
    return {"seconds": time.perf_counter() - start}


def run_plain(records: Path, sid: Path, tok: Path, out: Path, steps_records: int, keep_memory: bool = False) -> dict:
    """A plain Trainer script: same model, same tokenisation, random batches padded to the longest.

    ``keep_memory``: with grec's allocator setting (grec/lm/cpu_memory.py) around ``train()``.
    """
    from datasets import Dataset
    from transformers import (
        AutoConfig,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        T5ForConditionalGeneration,
        Trainer,
        TrainingArguments,
    )

    from grec.base.sid import SidMap, add_sid_tokens
    from grec.records import prompt

    tokenizer = AutoTokenizer.from_pretrained(tok)
    settings = json.loads((ROOT / "configs" / "models" / "tiger_t5.json").read_text())
    config = AutoConfig.for_model(**{**settings, "vocab_size": len(tokenizer), "decoder_start_token_id": 0})
    model = T5ForConditionalGeneration(config)
    add_sid_tokens(tokenizer, SidMap.load(sid), model)
    data = json.loads(records.read_text())[:steps_records]
    rows = [
        {
            "input_ids": tokenizer(prompt(r), add_special_tokens=False)["input_ids"][-512:],
            "labels": tokenizer(r["output"])["input_ids"],
        }
        for r in data
    ]
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=32,
        num_train_epochs=1,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        logging_steps=50,
        seed=0,
        use_cpu=True,
        dataloader_pin_memory=False,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
    )
    start = time.perf_counter()
    with kept_freed_memory(keep_memory):
        trainer.train()
    return {"seconds": time.perf_counter() - start}


def run_plain_smollm2(records: Path, sid: Path, out: Path, steps_records: int, keep_memory: bool = False) -> dict:
    """The same LoRA set-up and tokenisation as grec, with the Trainer's default random batches."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from grec.base import assets
    from grec.base.sid import SidMap, add_sid_tokens
    from grec.lm.loading import apply_lora, load_model, resolve_base_model
    from grec.train.data import tokenize_records

    model, tokenizer, _ = load_model(resolve_base_model(str(assets.smollm2_gguf())))
    ids = add_sid_tokens(tokenizer, SidMap.load(sid), model)
    tokens = sorted({int(i) for level in ids.level_ids for i in level if i >= 0})
    model = apply_lora(model, False, 8, 16, 0.05, ["q_proj", "v_proj"], tokens)
    rows, _ = tokenize_records(json.loads(records.read_text())[:steps_records], tokenizer, False, 256)
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=8,
        num_train_epochs=1,
        learning_rate=2e-4,
        report_to=[],
        save_strategy="no",
        logging_steps=50,
        seed=0,
        use_cpu=True,
        dataloader_pin_memory=False,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
    )
    start = time.perf_counter()
    with kept_freed_memory(keep_memory):
        trainer.train()
    return {"seconds": time.perf_counter() - start}


def _child(queue, fn, args) -> None:
    result = fn(*args)
    result["peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    queue.put(result)


def isolated(fn, *args) -> dict:
    """Run one case in a fresh process, so its peak memory is its own."""
    import multiprocessing as mp

    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_child, args=(queue, fn, args))
    child.start()
    result = queue.get()
    child.join()
    if child.exitcode:
        raise SystemExit(f"bench case {fn.__name__} failed (exit {child.exitcode})")
    return result


def real_tokens(records: Path, sid: Path, tok: Path | None, n: int, model: str) -> int:
    """Non-padding tokens the n records put through the model (prompt + response), as grec tokenises them."""
    from transformers import AutoTokenizer

    from grec.base import assets
    from grec.base.sid import SidMap, add_sid_tokens
    from grec.lm.loading import resolve_base_model
    from grec.train.data import tokenize_records

    folder = tok if model == "t5" else resolve_base_model(str(assets.smollm2_gguf()))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    add_sid_tokens(tokenizer, SidMap.load(sid))
    rows, _ = tokenize_records(
        json.loads(records.read_text())[:n], tokenizer, model == "t5", 256 if model != "t5" else 512
    )
    return sum(len(r["input_ids"]) + (len(r["labels"]) if model == "t5" else 0) for r in rows)


def main() -> None:
    import sys

    if "--seqrec" in sys.argv:  # the item-id sequence models have their own bench; its flags pass through
        import seqrec_step

        sys.argv.remove("--seqrec")
        return seqrec_step.main()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the T5 case on 384 records (about 2 minutes)")
    parser.add_argument(
        "--seqrec", action="store_true", help="the SASRec/HSTU step at ML-1M size instead (bench/seqrec_step.py)"
    )
    parser.add_argument("--records", type=int, default=4096)
    parser.add_argument(
        "--model",
        choices=["t5", "smollm2"],
        default="t5",
        help="t5: the TIGER T5 from scratch; smollm2: the packaged SmolLM2-135M with LoRA and SID tokens",
    )
    parser.add_argument(
        "--plain_keep_memory",
        action="store_true",
        help="also run the plain script with grec's allocator setting (grec/lm/cpu_memory.py), "
        "to show what the rest of grec's changes give",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run both sides this many times, alternating, and keep each side's fastest run",
    )
    args = parser.parse_args()
    n = 384 if args.quick else args.records
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        records, sid, _ = prepare_inputs(tmp, n)
        tok = tokenizer_folder(tmp, records) if args.model == "t5" else None
        plain_case = (run_plain, records, sid, tok) if args.model == "t5" else (run_plain_smollm2, records, sid)
        runs = {"plain_trainer": [], **({"plain_kept_memory": []} if args.plain_keep_memory else {}), "grec": []}
        for k in range(args.repeat):
            runs["plain_trainer"].append(isolated(*plain_case, tmp / f"plain{k}", n))
            if args.plain_keep_memory:
                runs["plain_kept_memory"].append(isolated(*plain_case, tmp / f"plainkept{k}", n, True))
            runs["grec"].append(isolated(run_grec, records, sid, tok, tmp / f"grec{k}", n, args.model))
        rows = {side: min(r, key=lambda row: row["seconds"]) for side, r in runs.items()}
        tokens = real_tokens(records, sid, tok, n, args.model)
    plain, ours = rows["plain_trainer"], rows["grec"]
    for name, row in rows.items():
        row["seconds"] = round(row["seconds"], 1)
        row["samples_per_second"] = round(n / row["seconds"], 2)
        row["tokens_per_second"] = round(tokens / row["seconds"], 1)
        print(
            f"{name:17} {row['seconds']:7.1f} s  {row['samples_per_second']:7.2f} samples/s  "
            f"{row['tokens_per_second']:8.1f} tokens/s  peak {row['peak_mib']} MiB"
        )
    ratio = ours["samples_per_second"] / plain["samples_per_second"]
    model_name = {
        "t5": "TIGER T5 (configs/models/tiger_t5.json), from scratch",
        "smollm2": "SmolLM2-135M-Instruct + LoRA r8 (q,v) + SID tokens",
    }[args.model]
    command = (" --quick" if args.quick else f" --model {args.model} --records {n}") + (
        " --plain_keep_memory" if args.plain_keep_memory else ""
    )
    record = {
        "command": "python bench/train.py" + command + (f" --repeat {args.repeat}" if args.repeat > 1 else ""),
        "all_seconds": {side: [round(row["seconds"], 1) for row in r] for side, r in runs.items()},
        "records": n,
        "real_tokens": tokens,
        "model": model_name,
        "rows": rows,
        "peak_mib_ratio_grec_over_plain": round(ours["peak_mib"] / plain["peak_mib"], 2),
        "ratio_grec_over_plain": round(ratio, 2),
    }
    if args.plain_keep_memory:
        kept = rows["plain_kept_memory"]
        record["ratio_grec_over_plain_kept_memory"] = round(ours["samples_per_second"] / kept["samples_per_second"], 2)
        print(
            f"grec / plain Trainer with the same allocator setting: {record['ratio_grec_over_plain_kept_memory']:.2f}x"
        )
    name = "train.json" if args.model == "t5" else f"train_{args.model}.json"
    write_json(ROOT / "docs" / "bench" / name, {**provenance(), **record})
    print(f"peak memory grec / plain Trainer: {ours['peak_mib']} / {plain['peak_mib']} MiB")
    print(f"grec / plain Trainer throughput: {ratio:.2f}x ({n} records, {model_name})")


if __name__ == "__main__":
    main()
