"""Task ``seqrec``: next-item prediction over item ids (SASRec, HSTU) on a prepared folder.

Training: one sequence per user, the user's whole training sequence (``user_training_sequences``;
the model reads its last ``max_len`` positions, right-padded), every position predicting the next item.
``max_len`` is the model's too: a data setting, passed to the model as a shape.
Scoring: full ranking of every catalog item for the valid/test users, a user's history items removed from the candidates (the protocol of
bench/quality.py), metrics exactly as eval/evaluate.py computes them. The test ranking is also
written as ``test_results.jsonl`` so eval/evaluate.py scores it beside the generative runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from grec.base.errors import GrecError
from grec.base.io import read_jsonl, write_records
from grec.base.metrics import RankingMetrics
from grec.base.registry import TASKS
from grec.base.sequences import read_split, user_training_sequences
from grec.models.next_item import right_pad
from grec.tasks.base import Task, parse_args


@dataclass
class SeqrecData:
    """data_args of seqrec: max_len (items of history the model reads), repeat (passes over the users per epoch), topk (items written per test user), exclude_history (leave the split row's history items out of the ranking), with_history_too (also write the test ranking with the history left in, as <results stem>.with_history.jsonl: both protocols from one run), results (the test result file; default <output_dir>/test_results.jsonl)."""

    max_len: int = 50
    repeat: int = 20
    topk: int = 50
    exclude_history: bool = True
    with_history_too: bool = False
    results: str | None = None


@TASKS.register("seqrec")
class SeqrecTask(Task):
    default_model = "sasrec"
    metric = "ndcg@10"
    higher_is_better = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.args = parse_args(SeqrecData, cfg.data_args, "--data_args")
        for name in ("max_len", "repeat", "topk"):
            if getattr(self.args, name) < 1:
                raise GrecError(f"--data_args: {name} must be at least 1, got {getattr(self.args, name)}")
        folder = Path(cfg.data or "data/ml-100k")
        for name in ("items.jsonl", "train.jsonl", "valid.jsonl", "test.jsonl"):
            if not (folder / name).is_file():
                raise GrecError(f"{folder / name}: not found; --data must be a folder written by grec prepare")
        self.folder = folder
        self.item_ids = [str(row["item_id"]) for _, row in read_jsonl(folder / "items.jsonl")]
        self.index = {item: k + 1 for k, item in enumerate(self.item_ids)}
        train = user_training_sequences(read_split(folder / "train.jsonl"))
        sequences = [self._ids(items, folder / "train.jsonl") for items in train.values()]
        self.train_set = [seq for seq in sequences if len(seq) > 1] * self.args.repeat
        self.splits = {split: list(read_split(folder / f"{split}.jsonl")) for split in ("valid", "test")}
        self.valid_set = None  # the validation score is NDCG@10 by full ranking

    def _ids(self, items: list, path: Path) -> list[int]:
        try:
            return [self.index[str(item)] for item in items]
        except KeyError as err:
            raise GrecError(f"{path}: item {err.args[0]} is not in items.jsonl; re-run grec prepare") from None

    def shapes(self) -> dict:
        return {"num_items": len(self.item_ids), "max_len": self.args.max_len}

    def collate(self, rows: list[list[int]]) -> dict:
        length = min(max(len(seq) for seq in rows) - 1, self.args.max_len)
        return {
            "input_ids": right_pad([seq[:-1] for seq in rows], length),
            "labels": right_pad([seq[1:] for seq in rows], length),
        }

    @torch.no_grad()
    def rank(self, model, rows: list[dict], k: int, exclude: bool) -> tuple[list[list[str]], list[list[float]]]:
        """Top-``k`` item ids and scores per row, the row's history left out with ``exclude``."""
        device = next(model.parameters()).device
        histories = [self._ids(row["history"], self.folder) for row in rows]
        scores = model.scores(right_pad(histories, self.args.max_len).to(device)).float()
        scores[:, 0] = float("-inf")
        if exclude:
            for row, seen in enumerate(histories):
                scores[row, seen] = float("-inf")
        top = scores.topk(min(k, scores.shape[1] - 1), dim=1)
        return ([[self.item_ids[i - 1] for i in row] for row in top.indices.tolist()], top.values.tolist())

    def evaluate(self, model, split: str) -> dict[str, float]:
        out = Path(self.args.results or Path(self.cfg.output_dir) / "test_results.jsonl")
        metrics = self._ranked(model, split, self.args.exclude_history, out if split == "test" else None)
        if split == "test" and self.args.with_history_too and self.args.exclude_history:
            self._ranked(model, split, False, out.with_name(out.stem + ".with_history" + out.suffix))
        return metrics

    def _ranked(self, model, split: str, exclude: bool, results_file: Path | None) -> dict[str, float]:
        """Rank every row of ``split``; the metrics, and the result records written to ``results_file``."""
        rows = self.splits[split]
        metrics = RankingMetrics((5, 10, 20), catalog=set(self.item_ids))
        results = []
        step = self.cfg.eval_batch_size
        for start in range(0, len(rows), step):
            batch = rows[start : start + step]
            items, scores = self.rank(model, batch, self.args.topk, exclude)
            for row, predict, score in zip(batch, items, scores):
                metrics.add(predict, str(row["target"]))
                results.append(
                    {
                        **row,
                        "predict": predict,
                        "predict_scores": [round(s, 4) for s in score],
                        "exclude_history": exclude,
                    }
                )
        if results_file is not None:
            write_records(results_file, results)
        out = metrics.result()
        return {key.lower(): value for key, value in out.items() if "@" in key and not key.startswith("coverage")}
