"""Task ``text_cls``: fine-tune a pretrained encoder (full or LoRA) to classify texts.

Default data: Women's Clothing E-Commerce Reviews (the packaged copy), title + review text ->
``Recommended IND``. Any CSV/TSV/JSONL file works with ``text_columns`` and ``label_column``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from grec.base.errors import GrecError
from grec.base.registry import TASKS
from grec.tasks.base import Task, parse_args
from grec.tasks.classify import classification_metrics, split_indices


@dataclass
class TextData:
    """data_args of text_cls: text_columns (joined with '. '), label_column, classes (label values in order; default: sorted values seen), max_len (tokens), sample (training rows kept, -1 all), split (train/valid/test fractions of the shuffled rows; any remainder is left out)."""

    text_columns: list[str] = field(default_factory=lambda: ["Title", "Review Text"])
    label_column: str = "Recommended IND"
    classes: list[str] = field(default_factory=list)
    max_len: int = 128
    sample: int = -1
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])

    def __post_init__(self) -> None:
        if len(self.split) != 3 or sum(self.split) > 1 + 1e-6 or min(self.split) <= 0:
            raise GrecError(f"--data_args split: three positive fractions summing to at most 1, got {self.split}")


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _rows(data: str | None):
    """(where, row) pairs of the packaged reviews or of a CSV/TSV/JSONL file."""
    if data in (None, "clothing-reviews"):
        import pandas as pd

        from grec.base.assets import dataset_file

        for k, row in enumerate(pd.read_parquet(dataset_file("clothing-reviews")).to_dict("records")):
            yield f"clothing-reviews row {k + 1}", row
        return
    from grec.base.tables import read_table

    if not Path(data).is_file():
        raise GrecError(
            f"{data}: data file not found (given as --data); or leave --data empty for the packaged reviews"
        )
    for line, row in read_table(data, []):
        yield f"{data}:{line}", row


@TASKS.register("text_cls")
class TextClsTask(Task):
    default_model = "encoder_classifier"

    def __init__(self, cfg):
        from transformers import AutoTokenizer

        from grec.models.text import default_encoder

        super().__init__(cfg)
        self.args = parse_args(TextData, cfg.data_args, "--data_args")
        texts, raw_labels = [], []
        for where, row in _rows(cfg.data):
            missing = [c for c in [*self.args.text_columns, self.args.label_column] if c not in row]
            if missing:
                raise GrecError(
                    f"{where}: no column {missing[0]!r}; the data has {', '.join(map(str, row))}. "
                    f"Set text_columns / label_column in --data_args"
                )
            texts.append(". ".join(t for t in (_cell(row[c]) for c in self.args.text_columns) if t))
            raw_labels.append((where, _cell(row[self.args.label_column])))
        self.classes = self.args.classes or sorted({label for _, label in raw_labels})
        if len(self.classes) < 2:
            raise GrecError(
                f"--data_args label_column {self.args.label_column!r}: needs at least two classes, found {self.classes}"
            )
        index = {c: k for k, c in enumerate(self.classes)}
        for where, label in raw_labels:
            if label not in index:
                raise GrecError(f"{where}: label {label!r} is not one of the declared classes {self.classes}")
        labels = np.array([index[label] for _, label in raw_labels])
        self.metric, self.higher_is_better = ("auc" if len(self.classes) == 2 else "accuracy"), True
        base = cfg.model_args.get("base_model") or default_encoder()
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        parts = split_indices(len(texts), self.args.split, cfg.seed)
        if 0 < self.args.sample < len(parts["train"]):
            parts["train"] = parts["train"][: self.args.sample]
        self.splits = {}
        for name, rows in parts.items():
            ids = self.tokenizer([texts[k] for k in rows], truncation=True, max_length=self.args.max_len)["input_ids"]
            self.splits[name] = [(seq, int(labels[k])) for seq, k in zip(ids, rows)]
        self.train_set, self.valid_set = self.splits["train"], self.splits["valid"]

    def shapes(self) -> dict:
        return {"num_labels": len(self.classes)}

    def extra(self) -> dict:
        return {"classes": self.classes}

    def save_extra(self, folder) -> None:
        super().save_extra(folder)
        self.tokenizer.save_pretrained(folder)

    def collate(self, rows: list[tuple[list[int], int]]) -> dict:
        width = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, (ids, _) in enumerate(rows):
            input_ids[k, : len(ids)] = torch.tensor(ids)
            mask[k, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "labels": torch.tensor([y for _, y in rows])}

    @torch.no_grad()
    def evaluate(self, model, split: str) -> dict[str, float]:
        rows = self.splits[split]
        device = next(model.parameters()).device
        probs = []
        order = sorted(range(len(rows)), key=lambda k: len(rows[k][0]))  # similar lengths batch together
        for start in range(0, len(rows), self.cfg.eval_batch_size):
            batch = self.collate([rows[k] for k in order[start : start + self.cfg.eval_batch_size]])
            probs.append(model.probabilities(batch["input_ids"].to(device), batch["attention_mask"].to(device)).cpu())
        probs = torch.cat(probs).numpy()[np.argsort(order)]
        return classification_metrics(np.array([y for _, y in rows]), probs)
