"""lm_pretrain on the clothing reviews: throughput and perplexity, each next to a baseline from the same run.

- speed: grec's training epochs (the shared Trainer, with its logging and checkpoints) against a
  bare PyTorch loop (AdamW, the same model, blocks and batch size, nothing else), in tokens/s;
- quality: the test perplexity of the trained LLaMA against an interpolated Kneser-Ney bigram
  model counted on the same training tokens.

Prints both ratios and stores them under "lm_pretrain" in docs/bench/tasks.json.

    .venv/bin/python bench/pretrain.py            # configs/tasks/pretrain_reviews.yaml: ~23k reviews, 3 epochs
    .venv/bin/python bench/pretrain.py --quick    # 6,000 reviews, 1 epoch
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from provenance import provenance

from grec.base.config import load_config
from grec.tasks import TaskConfig, train_task
from grec.tasks.lm_pretrain import LmPretrainTask

ROOT = Path(__file__).resolve().parent.parent


def kneser_ney_bigram_perplexity(train: np.ndarray, test: np.ndarray, vocab: int, discount: float = 0.75) -> float:
    """Interpolated Kneser-Ney bigram perplexity of ``test`` given counts from ``train`` (token id arrays)."""
    pairs, counts = np.unique(train[:-1] * vocab + train[1:], return_counts=True)
    left, right = pairs // vocab, pairs % vocab
    context = np.bincount(left, weights=counts, minlength=vocab)  # c(v)
    followers = np.bincount(left, minlength=vocab)  # N1+(v, .)
    continuation = (np.bincount(right, minlength=vocab) + 1) / (len(pairs) + vocab)  # N1+(., w), add-one floor
    v, w = test[:-1], test[1:]
    where = np.searchsorted(pairs, v * vocab + w).clip(max=len(pairs) - 1)
    seen = np.where(pairs[where] == v * vocab + w, counts[where], 0)
    c = context[v]
    safe = np.maximum(c, 1)
    p = np.where(
        c > 0, np.maximum(seen - discount, 0) / safe + discount * followers[v] / safe * continuation[w], continuation[w]
    )
    return float(np.exp(-np.log(p).mean()))


def plain_loop_tokens_per_second(task: LmPretrainTask, cfg: TaskConfig, steps: int) -> float:
    """tokens/s of a bare loop: shuffled blocks, forward, backward, AdamW step; no logging or saving."""
    torch.manual_seed(cfg.seed)
    model = task.build_model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    loader = torch.utils.data.DataLoader(
        task.train_set, batch_size=cfg.batch_size, shuffle=True, collate_fn=task.collate, drop_last=True
    )
    tokens, started = 0, time.time()
    for step, batch in enumerate(loader):
        if step == steps:
            break
        loss = model(input_ids=batch["input_ids"], labels=batch["labels"], shift_labels=batch["shift_labels"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += batch["input_ids"].numel()
    return tokens / (time.time() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6,000 reviews, 1 epoch")
    parser.add_argument("--config", default=str(ROOT / "configs" / "tasks" / "pretrain_reviews.yaml"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench" / "tasks.json"))
    args = parser.parse_args()
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(TaskConfig, args.config)
        cfg.output_dir = f"{tmp}/run"
        if args.quick:
            cfg.num_epochs, cfg.data_args = 1, {**cfg.data_args, "max_documents": 6000}
        started = time.time()
        state = train_task(cfg)
        wall = time.time() - started
        task = LmPretrainTask(cfg)  # reuses the run's token files
        block = task.args.block_size
        epoch_tokens = len(task.train_set) * block
        seconds = sorted(state["seconds"].values())
        grec_rate = epoch_tokens / seconds[len(seconds) // 2]  # median epoch, checkpoints and logging included
        plain_rate = plain_loop_tokens_per_second(task, cfg, steps=min(200, len(task.train_set) // cfg.batch_size))
        folder = Path(tmp) / "run" / "tokens"
        dtype = task.meta["dtype"]
        bigram = kneser_ney_bigram_perplexity(
            np.fromfile(folder / "train.bin", dtype=dtype).astype(np.int64),
            np.fromfile(folder / "test.bin", dtype=dtype).astype(np.int64),
            len(task.tokenizer),
        )
    valid = [state["scores"][str(e)]["perplexity"] for e in range(1, state["epoch"] + 1)]
    test = state["test"]["perplexity"]
    record = {
        "quick": args.quick,
        "config": Path(args.config).name,
        "documents": task.meta["documents"],
        "tokens": task.meta["tokens"],
        "epochs": state["epoch"],
        "block_size": block,
        "batch_size": cfg.batch_size,
        "parameters": sum(p.numel() for p in task.build_model().parameters()),
        "wall_seconds": round(wall, 1),
        "tokens_per_second": round(grec_rate),
        "plain_loop_tokens_per_second": round(plain_rate),
        "valid_perplexity_per_epoch": [round(v, 2) for v in valid],
        "test_perplexity": round(test, 2),
        "kneser_ney_bigram_test_perplexity": round(bigram, 2),
    }
    print("| measure | grec lm_pretrain | baseline | baseline value | ratio |")
    print("|---|---:|---|---:|---:|")
    print(
        f"| train tokens/s | {grec_rate:,.0f} | bare PyTorch loop | {plain_rate:,.0f} | {grec_rate / plain_rate:.2f}x |"
    )
    print(f"| test perplexity | {test:.1f} | Kneser-Ney bigram | {bigram:.1f} | {bigram / test:.2f}x lower |")
    print(
        f"valid perplexity per epoch: {', '.join(f'{v:.1f}' for v in valid)}; {record['parameters']:,} weights; "
        f"{sum(task.meta['tokens'].values()):,} tokens; {wall:.0f} s"
    )
    out = Path(args.out)
    stored = json.loads(out.read_text()) if out.is_file() else {}
    stored["lm_pretrain"] = {**provenance(), **record}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stored, indent=1) + "\n")


if __name__ == "__main__":
    main()
