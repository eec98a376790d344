"""Task ``ctr``: click-through-rate prediction on tabular features (LR, FM, DeepFM, DCNv2).

Rows are split in their order (time order for ML-100K): the first 80% train, then 10% valid
and 10% test (``--data_args '{split: [0.8, 0.1, 0.1]}'``); ``window: [a, b]`` first keeps the
rows between fractions a and b, so one can train on the first half and continue on the second
(``--init_from``): the vocabularies then grow and the embedding tables with them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import torch

from grec.base.config import read_yaml
from grec.base.errors import GrecError
from grec.base.registry import TASKS
from grec.tasks.base import Task, parse_args, read_task_file
from grec.tasks.ctr.encoder import FeatureEncoder
from grec.tasks.ctr.features import parse_features
from grec.tasks.ctr.sources import resolve

logger = logging.getLogger("grec")


@dataclass
class CtrData:
    """data_args of ctr: features (a feature-config YAML; default: the dataset's own), split (train/valid/test fractions), window (the fraction range of rows used)."""

    features: str | None = None
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    window: list[float] = field(default_factory=lambda: [0.0, 1.0])

    def __post_init__(self) -> None:
        if len(self.split) != 3 or abs(sum(self.split) - 1) > 1e-6 or min(self.split) <= 0:
            raise GrecError(f"--data_args split: three positive fractions summing to 1, got {self.split}")
        if len(self.window) != 2 or not 0 <= self.window[0] < self.window[1] <= 1:
            raise GrecError(f"--data_args window: two fractions 0 <= a < b <= 1, got {self.window}")


class _Rows(torch.utils.data.Dataset):
    """Row indices into the encoded arrays; the task's collate gathers whole batches at once."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays["labels"])

    def __getitem__(self, k: int) -> tuple[dict, int]:
        return self.arrays, k


@TASKS.register("ctr")
class CtrTask(Task):
    default_model = "deepfm"
    metric = "auc"
    higher_is_better = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.args = parse_args(CtrData, cfg.data_args, "--data_args")
        source = resolve(cfg.data)
        if self.args.features:
            config, origin = read_yaml(self.args.features), self.args.features
        elif source.features is not None:
            config, origin = source.features, f"the {source.name} feature config"
        else:
            raise GrecError(
                f"{source.name}: give a feature config for this file: --data_args '{{features: FILE.yaml}}'"
            )
        label, features = parse_features(config, origin)
        total = sum(1 for _ in source.rows())
        start, stop = (int(f * total) for f in self.args.window)
        cut1 = start + int(self.args.split[0] * (stop - start))
        cut2 = cut1 + int(self.args.split[1] * (stop - start))
        bounds = {"train": (start, cut1), "valid": (cut1, cut2), "test": (cut2, stop)}
        if min(b - a for a, b in bounds.values()) < 1:
            raise GrecError(
                f"{source.name}: {total} rows leave an empty split with window {self.args.window} "
                f"and split {self.args.split}"
            )

        def rows(split: str):
            return islice(source.rows(), *bounds[split])

        if cfg.init_from:
            self.encoder = FeatureEncoder.from_state(read_task_file(cfg.init_from)["encoder"])
            FeatureEncoder(label, features).check_compatible(self.encoder, f"--init_from {cfg.init_from}")
            self.growth = self.encoder.grow(rows("train"))
        else:
            self.encoder = FeatureEncoder(label, features).fit(rows("train"))
        # one encoding pass over the window; the splits are views into it
        encoded = self.encoder.encode(islice(source.rows(), start, stop), stop - start)
        self.arrays = {s: {k: v[a - start : b - start] for k, v in encoded.items()} for s, (a, b) in bounds.items()}
        self.train_set, self.valid_set = _Rows(self.arrays["train"]), _Rows(self.arrays["valid"])
        logger.info(
            "ctr %s: %s rows; positives %.1f%% of train",
            source.name,
            ", ".join(f"{s} {b - a:,}" for s, (a, b) in bounds.items()),
            100 * self.arrays["train"]["labels"].mean(),
        )

    def shapes(self) -> dict:
        return {"fields": self.encoder.fields()}

    def extra(self) -> dict:
        return {"encoder": self.encoder.state()}

    def collate(self, rows: list[tuple[dict, int]]) -> dict:
        arrays, index = rows[0][0], np.fromiter((k for _, k in rows), np.int64, len(rows))
        return {name: torch.from_numpy(arrays[name][index]) for name in ("single", "multi", "dense", "labels")}

    @torch.no_grad()
    def predict(self, model, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Click probabilities for encoded rows."""
        device = next(model.parameters()).device
        out = []
        for start in range(0, len(arrays["labels"]), self.cfg.eval_batch_size):
            batch = {
                k: torch.from_numpy(arrays[k][start : start + self.cfg.eval_batch_size]).to(device)
                for k in ("single", "multi", "dense")
            }
            out.append(torch.sigmoid(model(**batch)["logits"]).float().cpu().numpy())
        return np.concatenate(out)

    def evaluate(self, model, split: str) -> dict[str, float]:
        from sklearn.metrics import log_loss, roc_auc_score

        labels = self.arrays[split]["labels"]
        probs = self.predict(model, self.arrays[split])
        auc = roc_auc_score(labels, probs) if 0 < labels.sum() < len(labels) else float("nan")
        return {
            "auc": float(auc),
            "logloss": float(log_loss(labels, probs, labels=[0, 1])),
            "accuracy": float(((probs >= 0.5) == labels).mean()),
        }

    def init_model(self, model, folder: str) -> None:
        grow_into(model, folder)


def grow_into(model, folder: str) -> None:
    """Load a checkpoint into ``model`` whose embedding tables may be larger (grown vocabularies).

    Rows 0 .. n-2 (padding and the known values) are copied, the old OOV row (n-1) goes to the
    new last row, and the rows of new values keep their fresh initialisation.
    """
    from safetensors.torch import load_file

    saved = load_file(f"{folder}/model.safetensors")
    state = model.state_dict()
    for key, old in saved.items():
        if key not in state:
            raise GrecError(f"{folder}: the checkpoint has {key} that this model lacks; use the same --model")
        new = state[key]
        if new.shape == old.shape:
            state[key] = old
            continue
        if not key.startswith("inputs.") or new.shape[1:] != old.shape[1:] or new.shape[0] < old.shape[0]:
            raise GrecError(
                f"{folder}: {key} has shape {tuple(old.shape)} there and {tuple(new.shape)} here; "
                f"use the same --model and --model_args as the checkpoint"
            )
        name = key.removeprefix("inputs.").removesuffix(".weight")
        logger.info("%s shape mismatched, current: %s != history: %s", name, tuple(new.shape), tuple(old.shape))
        grown = new.clone()
        grown[: old.shape[0] - 1] = old[:-1]
        grown[-1] = old[-1]
        state[key] = grown
        logger.info("%s is updated from history:%d to current:%d", name, old.shape[0], new.shape[0])
    model.load_state_dict(state)
