"""What a run leaves beside the Trainer checkpoints: best/, last/, log.json, loss.png, training_state.json.

The callback runs on every process (saving a sharded model is collective); only the main
process writes files. Each of best/ and last/ is written to a temporary folder and swapped in; a
run killed between the two renames of the swap is repaired when the next run starts
(``recover_published``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback

from grec.base.distributed import rank
from grec.base.io import read_json, write_json
from grec.base.version import __version__

logger = logging.getLogger("grec")
STATE = "training_state.json"


def epoch_log(log_history: list[dict], seconds: dict[int, float], scores: dict[int, dict] | None = None) -> list[dict]:
    """Per-epoch train loss (mean of the logged losses), valid loss and scores, last lr and wall time."""
    rows: dict[int, dict] = {}
    for entry in log_history:
        if "epoch" not in entry:
            continue
        epoch = max(1, int(-(-round(entry["epoch"], 6) // 1)))  # (e-1, e] belongs to epoch e
        row = rows.setdefault(epoch, {"epoch": epoch, "losses": [], "valid_loss": None, "learning_rate": None})
        if "loss" in entry:
            row["losses"].append(entry["loss"])
            row["learning_rate"] = entry.get("learning_rate", row["learning_rate"])
        if "eval_loss" in entry:
            row["valid_loss"] = entry["eval_loss"]
    out = []
    for epoch in sorted(rows):
        row = rows[epoch]
        losses = row.pop("losses")
        row["train_loss"] = sum(losses) / len(losses) if losses else None
        row["seconds"] = seconds.get(epoch)
        for name, value in (scores or {}).get(epoch, {}).items():
            row[f"valid_{name}"] = value
        out.append(row)
    return out


def plot_losses(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from grec.base.io import atomic_open

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key, label in (("train_loss", "train"), ("valid_loss", "valid")):
        points = [(r["epoch"], r[key]) for r in rows if r[key] is not None]
        if points:
            ax.plot(*zip(*points), marker="o", label=label)
    ax.set(xlabel="epoch", ylabel="loss", title="training curves")
    ax.legend()
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


def recover_published(output_dir: Path, name: str) -> None:
    """Finish publishing ``name`` (best/ or last/) if a run was killed between the two renames of
    ``_save``: the new copy if it was written whole (its training_state.json is written last), else
    the previous one; leftover copies are removed."""
    final, tmp, old = (output_dir / n for n in (name, f".{name}.tmp", f".{name}.old"))
    if not final.exists():
        if (tmp / STATE).is_file():
            os.replace(tmp, final)
        elif old.is_dir():
            os.replace(old, final)
        else:
            return
        logger.info("train: %s was left half-published by a killed run; restored it", final)
    for leftover in (old, tmp):  # a copy being written when the run was killed: the published one stands
        shutil.rmtree(leftover, ignore_errors=True)


class RunArtifacts(TrainerCallback):
    """Saves best/ and last/ after each epoch's evaluation, writes logs, applies early stopping.

    ``cfg`` is the run's config dataclass (``output_dir``, ``seed``, ``early_stopping_patience``);
    ``save_extra(folder)`` adds what the weights need beside them (tokenizer, SID map, vocabularies);
    ``scorer``, when given, picks the best epoch instead of the validation loss: ``scorer(model)``
    returns validation metrics, ``scorer.metric`` names the one to pick by and
    ``scorer.higher_is_better`` its direction.
    """

    def __init__(self, cfg, save_extra: Callable[[Path], None], scorer=None):
        self.cfg, self.save_extra, self.scorer = cfg, save_extra, scorer
        self.output_dir = Path(cfg.output_dir)
        if rank() == 0:
            for name in ("best", "last"):
                recover_published(self.output_dir, name)
        self.trainer = None
        self.started: float | None = None
        previous = self.output_dir / STATE
        resuming = getattr(cfg, "resume_from_checkpoint", None) is not None
        state = read_json(previous) if resuming and previous.is_file() else {}  # a fresh run starts its own books
        self.best = state.get("best_metric")
        self.best_epoch = state.get("best_epoch")
        self.seconds = {int(k): v for k, v in state.get("seconds", {}).items()}
        self.scores = {int(k): v for k, v in state.get("scores", {}).items()}
        self.recorded_epoch = int(state.get("epoch") or 0)

    @property
    def metric(self) -> str:
        return f"valid_{self.scorer.metric}" if self.scorer is not None else "valid_loss"

    def on_train_begin(self, args, state, control, **kwargs):
        """A resumed checkpoint-N whose epoch was never booked (killed between the Trainer's checkpoint
        and this callback): score it and write best/, last/ and the log now, before training on."""
        epoch = int(round(state.epoch or 0))
        at_epoch_end = abs((state.epoch or 0) - epoch) < 1e-6
        if at_epoch_end and epoch > self.recorded_epoch and state.global_step > 0:
            logger.info("train: epoch %d was checkpointed but not booked before the run stopped; booking it", epoch)
            self.on_save(args, state, control)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.started = time.time()

    def on_save(self, args, state, control, **kwargs):
        epoch = int(round(state.epoch or 0))
        if self.started is not None:
            self.seconds[epoch] = round(time.time() - self.started, 2)
        if self.scorer is not None:
            model = self.trainer.model
            was_training = model.training
            model.eval()
            self.scores[epoch] = self.scorer(model)
            model.train(was_training)
        rows = epoch_log(state.log_history, self.seconds, self.scores)
        valid = next((r[self.metric] for r in rows if r["epoch"] == epoch), None)
        higher = self.scorer is not None and self.scorer.higher_is_better
        improved = valid is not None and (self.best is None or (valid > self.best if higher else valid < self.best))
        if improved:
            self.best, self.best_epoch = valid, epoch
            self._save("best", state)
        self._save("last", state)
        if state.is_world_process_zero:
            write_json(self.output_dir / "log.json", rows)
            plot_losses(rows, self.output_dir / "loss.png")
            write_json(self.output_dir / STATE, self._state(state))
        patience = self.cfg.early_stopping_patience
        if patience and self.best_epoch is not None and epoch - self.best_epoch >= patience:
            control.should_training_stop = True

    def _state(self, state) -> dict:
        import torch
        import transformers

        return {
            "epoch": int(round(state.epoch or 0)),
            "global_step": state.global_step,
            "metric": self.metric,
            "best_metric": self.best,
            "best_epoch": self.best_epoch,
            "best_dir": "best" if self.best_epoch is not None else None,
            "seconds": self.seconds,
            "scores": self.scores,
            "seed": self.cfg.seed,
            "arguments": dataclasses.asdict(self.cfg),
            "versions": {"grec": __version__, "torch": torch.__version__, "transformers": transformers.__version__},
        }

    def _save(self, name: str, state) -> None:
        final = self.output_dir / name
        tmp = self.output_dir / f".{name}.tmp"
        if state.is_world_process_zero:
            shutil.rmtree(tmp, ignore_errors=True)
        self.trainer.save_model(str(tmp))
        if not state.is_world_process_zero:
            return
        self.save_extra(tmp)
        write_json(tmp / STATE, self._state(state))
        old = self.output_dir / f".{name}.old"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
