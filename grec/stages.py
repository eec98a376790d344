"""The stage table: every stage's name, config, function and what ``grec <stage>`` prints.

One table for both users of it: the ``grec`` command builds a subcommand per entry, and
``grec run`` recipes name entries in their ``stage:`` lines. Modules are imported only when a
stage runs, so ``grec --help`` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: ``function(config)`` where config is ``module.config``; ``report`` says what it did
    (the CLI prints it on the main process only: other ranks of a launch may not hold the whole result)."""

    name: str
    description: str
    module: str
    config: str
    function: str
    report: Callable[[Any, Any], str]

    def load(self) -> tuple[type, Callable]:
        module = importlib.import_module(self.module)
        return getattr(module, self.config), getattr(module, self.function)


def _prepare(cfg, _) -> str:
    from grec.prepare import format_summary

    return format_summary(cfg.out)


def _index(cfg, report) -> str:
    from grec.index.summary import format_report

    return format_report(report, cfg.out, cfg.data)


def _records(cfg, counts) -> str:
    parts = ", ".join(f"{name} {n:,}" for name, n in counts.items())
    return f"records ({cfg.style}, tasks {','.join(cfg.tasks)}) -> {cfg.out}: {parts}"


def _train(cfg, state) -> str:
    if state.get("best_metric") is not None:
        metric = state.get("metric", "valid_loss").replace("_", " ")
        return f"trained -> {cfg.output_dir}: best {metric} {state['best_metric']:.4f} at epoch {state['best_epoch']}"
    return f"trained -> {cfg.output_dir} ({state['epoch']} epochs)"


def _train_task(cfg, state) -> str:
    test = ", ".join(f"{k} {v:.4f}" for k, v in state["test"].items())
    return (
        f"trained {cfg.task} -> {cfg.output_dir}: best {state['metric']} {state['best_metric']:.4f} "
        f"at epoch {state['best_epoch']}; test {test}"
    )


def _align(cfg, state) -> str:
    if state.get("best_metric") is not None:
        return (
            f"aligned ({cfg.method}) -> {cfg.output_dir}: best validation NDCG@10 {state['best_metric']:.4f} "
            f"at epoch {state['best_epoch']}"
        )
    return f"aligned ({cfg.method}) -> {cfg.output_dir} ({state['epoch']} epochs)"


def _infer(cfg, summary) -> str:
    return (
        f"ranked items for {summary['records']:,} records -> {cfg.result_json_data} "
        f"({summary['users_per_second']:.1f} users/s, {summary['num_beams']} beams)"
    )


def _evaluate(cfg, table) -> str:
    from grec.evaluate import markdown, paired_markdown

    text = markdown(table, cfg.topk)
    if cfg.baseline:
        text += "\n\n" + paired_markdown(table, cfg.topk)
    if cfg.seeds:
        text += "\n\nmean ± std across seeds:\n" + (Path(cfg.input_dir) / "sweep.md").read_text()
    return text


STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage(
            "prepare",
            "interaction logs (ML-100K, Amazon, CSV/JSONL) -> leave-one-out splits",
            "grec.prepare",
            "PrepareConfig",
            "prepare",
            _prepare,
        ),
        Stage(
            "index",
            "item text -> embeddings -> collision-free semantic IDs (RQ-KMeans, RQ-VAE, ...)",
            "grec.index",
            "IndexConfig",
            "build_index",
            _index,
        ),
        Stage(
            "tokenizer",
            "train a sentencepiece tokenizer on a corpus, saved as a Hugging Face tokenizer",
            "grec.tokenizer",
            "TokenizerConfig",
            "train_tokenizer",
            lambda cfg, tok: f"tokenizer ({cfg.style}, {cfg.model_type}, {len(tok):,} tokens) -> {cfg.out}",
        ),
        Stage(
            "records",
            "prepared splits (+ semantic IDs) -> instruction records for LLM training",
            "grec.records",
            "RecordsConfig",
            "build_records",
            _records,
        ),
        Stage(
            "train",
            "fine-tune a causal or seq2seq LM on records (LoRA or full); also train.py",
            "grec.train",
            "TrainConfig",
            "train",
            _train,
        ),
        Stage(
            "align",
            "preference and RL post-training of an SFT checkpoint (DPO, S-DPO, GRPO); also align.py",
            "grec.align",
            "AlignConfig",
            "align",
            _align,
        ),
        Stage(
            "train-task",
            "train a registered task (SASRec, CTR, text/image classification, LM pretraining) with the shared trainer",
            "grec.tasks",
            "TaskConfig",
            "train_task",
            _train_task,
        ),
        Stage(
            "infer",
            "rank catalog items per user with SID-constrained beam search; also inference.py",
            "grec.infer",
            "InferConfig",
            "infer",
            _infer,
        ),
        Stage(
            "popularity",
            "the most-popular baseline as a result file",
            "grec.infer.popularity",
            "PopularityConfig",
            "popularity",
            lambda cfg, n: f"most-popular items for {n:,} users -> {cfg.out}",
        ),
        Stage(
            "evaluate",
            "HR/NDCG/MRR@K tables for every result file under a folder; also eval/evaluate.py",
            "grec.evaluate",
            "EvaluateConfig",
            "evaluate",
            _evaluate,
        ),
    )
}
