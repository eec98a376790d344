"""What a run leaves beside the Trainer checkpoints: best/, last/, log.json, loss.png, training_state.json.

The callback runs on every process (saving a sharded model is collective); only the main
process writes files. Each of best/ and last/ is written to a temporary folder and swapped in; a
run killed between the two renames of the swap is repaired when the next run starts
(``recover_published``).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback

from grec.base.distributed import rank
from grec.base.files import TRAINING_STATE
from grec.base.io import read_json, write_json
from grec.base.secrets import recorded
from grec.base.version import __version__

logger = logging.getLogger("grec")
# diagnostics a trainer logs beside its loss (grec.training.preference, .grpo), averaged per row as train_<name>
DIAGNOSTICS = (
    *("margin", "accuracy", "reward_chosen", "reward_rejected", "chosen_nll"),
    *("reward_mean", "reward_std", "kl", "hit_rate", "valid_rollouts", "distinct_items"),
)


def epoch_log(
    log_history: list[dict],
    seconds: dict[int, float],
    scores: dict[int, dict] | None = None,
    save_steps: int = 0,
    last_step: int | None = None,
) -> list[dict]:
    """One row per save point: train loss (mean of the losses logged since the previous one), valid loss(es)
    and scores, last lr and wall time. Save points are epochs, or with ``save_steps`` every that many
    optimizer steps and the last step (rows then also carry ``step`` and a fractional ``epoch``)."""
    rows: dict[int, dict] = {}
    for entry in log_history:
        if "epoch" not in entry:
            continue
        if save_steps:
            point = -(-int(entry.get("step", 0)) // save_steps) * save_steps
            point = min(point, last_step) if last_step else point
            fresh = {"step": point, "epoch": None}
        else:
            point = max(1, int(-(-round(entry["epoch"], 6) // 1)))  # (e-1, e] belongs to epoch e
            fresh = {"epoch": point}
        row = rows.setdefault(point, {**fresh, "losses": [], "valid_loss": None, "learning_rate": None})
        if save_steps:
            row["epoch"] = round(entry["epoch"], 4)
        if "loss" in entry:
            row["losses"].append(entry["loss"])
            row["learning_rate"] = entry.get("learning_rate", row["learning_rate"])
            for name in DIAGNOSTICS:
                if name in entry:
                    row.setdefault("diagnostics", {}).setdefault(name, []).append(entry[name])
        for (
            key,
            value,
        ) in entry.items():  # eval_loss, or with several validation files eval_all_loss and eval_<name>_loss
            if key in ("eval_loss", "eval_all_loss"):
                row["valid_loss"] = value
            elif key.startswith("eval_") and key.endswith("_loss"):
                row[f"valid_loss_{key[5:-5]}"] = value
    for point in scores or {}:  # a point scored before any step (the starting model)
        fresh = {"step": point, "epoch": 0} if save_steps else {"epoch": point}
        rows.setdefault(point, {**fresh, "losses": [], "valid_loss": None})
        rows[point].setdefault("learning_rate", None)
    out = []
    for point in sorted(rows):
        row = rows[point]
        losses = row.pop("losses")
        row["train_loss"] = sum(losses) / len(losses) if losses else None
        for name, values in row.pop("diagnostics", {}).items():
            row[f"train_{name}"] = sum(values) / len(values)
        row["seconds"] = seconds.get(point)
        for name, value in (scores or {}).get(point, {}).items():
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
        if (tmp / TRAINING_STATE).is_file():
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
    ``scorer.higher_is_better`` its direction. ``arguments`` adds to the config's fields in the
    ``arguments`` a checkpoint records what its loader needs beyond them (``grec align``: the base
    model and model type of the checkpoint it started from).
    """

    def __init__(self, cfg, save_extra: Callable[[Path], None], scorer=None, arguments: dict | None = None):
        self.cfg, self.save_extra, self.scorer = cfg, save_extra, scorer
        self.arguments = arguments or {}
        self.output_dir = Path(cfg.output_dir)
        if rank() == 0:
            for name in ("best", "last"):
                recover_published(self.output_dir, name)
        self.trainer = None
        self.started: float | None = None
        previous = self.output_dir / TRAINING_STATE
        resuming = getattr(cfg, "resume_from_checkpoint", None) is not None
        state = read_json(previous) if resuming and previous.is_file() else {}  # a fresh run starts its own books
        # save points: epochs, or optimizer steps with --save_steps (mid-epoch checkpoints)
        self.save_steps = int(getattr(cfg, "save_steps", 0) or 0)
        self.best = state.get("best_metric")
        self.best_epoch = state.get("best_epoch")
        self.best_point = state.get("best_step") if self.save_steps else self.best_epoch
        self.seconds = {int(k): v for k, v in state.get("seconds", {}).items()}
        self.scores = {int(k): v for k, v in state.get("scores", {}).items()}
        self.recorded = int(state.get("global_step" if self.save_steps else "epoch") or 0)

    @property
    def metric(self) -> str:
        return f"valid_{self.scorer.metric}" if self.scorer is not None else "valid_loss"

    def point(self, state) -> int:
        """The save point ``state`` is at: its epoch, or its optimizer step with --save_steps."""
        return state.global_step if self.save_steps else int(round(state.epoch or 0))

    def at_save_point(self, state) -> bool:
        if self.save_steps:
            return state.global_step % self.save_steps == 0 or state.global_step == state.max_steps
        return abs((state.epoch or 0) - round(state.epoch or 0)) < 1e-6

    def on_train_begin(self, args, state, control, **kwargs):
        """With ``cfg.score_start``, score the starting model and keep it as best/ (point 0). A resumed
        checkpoint-N whose save point was never booked (killed between the Trainer's checkpoint and this
        callback): score it and write best/, last/ and the log now, before training on."""
        if getattr(self.cfg, "score_start", False) and self.scorer is not None and state.global_step == 0:
            self._score_start(state)
        point = self.point(state)
        if self.at_save_point(state) and point > self.recorded and state.global_step > 0:
            kind = "step" if self.save_steps else "epoch"
            logger.info("train: %s %d was checkpointed but not booked before the run stopped; booking it", kind, point)
            self.on_save(args, state, control)

    def _score(self, point: int) -> None:
        """``scores[point]``: the scorer's metrics of the model now, in eval mode."""
        model = self.trainer.model
        was_training = model.training
        model.eval()
        self.scores[point] = self.scorer(model)
        model.train(was_training)

    def _score_start(self, state) -> None:
        self._score(0)
        self.best, self.best_point, self.best_epoch = self.scores[0][self.scorer.metric], 0, 0
        logger.info("train: the starting model scores %s %.4f on validation", self.metric, self.best)
        self._save("best", state)
        if state.is_world_process_zero:
            write_json(self.output_dir / "log.json", epoch_log([], {}, self.scores, self.save_steps))

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.started = self.started if self.save_steps and self.started is not None else time.time()

    def on_step_end(self, args, state, control, **kwargs):
        """With --save_steps the last step is a save point too (the Trainer saves only at multiples)."""
        if self.save_steps and state.global_step == state.max_steps and state.global_step % self.save_steps:
            control.should_save = True
            control.should_evaluate = args.eval_strategy != "no"

    def on_save(self, args, state, control, **kwargs):
        point = self.point(state)
        if self.started is not None:
            self.seconds[point] = round(time.time() - self.started, 2)
            if self.save_steps:
                self.started = time.time()
        if self.scorer is not None:
            self._score(point)
        rows = epoch_log(state.log_history, self.seconds, self.scores, self.save_steps, state.max_steps)
        key = "step" if self.save_steps else "epoch"
        valid = next((r[self.metric] for r in rows if r[key] == point), None)
        higher = self.scorer is not None and self.scorer.higher_is_better
        improved = valid is not None and (self.best is None or (valid > self.best if higher else valid < self.best))
        if improved:
            self.best, self.best_point = valid, point
            self.best_epoch = round(state.epoch, 4) if self.save_steps else point
            self._save("best", state)
        self._save("last", state)
        if state.is_world_process_zero:
            write_json(self.output_dir / "log.json", rows)
            plot_losses(rows, self.output_dir / "loss.png")
            write_json(self.output_dir / TRAINING_STATE, self._state(state))
        patience = self.cfg.early_stopping_patience
        if patience and self.best_point is not None:
            since = (
                [p for p in self.seconds if p > self.best_point] if self.save_steps else range(self.best_point, point)
            )
            if len(since) >= patience:
                control.should_training_stop = True

    def _state(self, state) -> dict:
        import torch
        import transformers

        return {
            "epoch": round(state.epoch or 0, 4) if self.save_steps else int(round(state.epoch or 0)),
            "global_step": state.global_step,
            "metric": self.metric,
            "best_metric": self.best,
            "best_epoch": self.best_epoch,
            **({"best_step": self.best_point} if self.save_steps else {}),
            "best_dir": "best" if self.best_epoch is not None else None,
            "seconds": self.seconds,
            "scores": self.scores,
            "seed": self.cfg.seed,
            "arguments": {**recorded(self.cfg), **self.arguments},
            **(
                {"peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3)}
                if torch.cuda.is_available()
                else {}
            ),
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
        write_json(tmp / TRAINING_STATE, self._state(state))
        old = self.output_dir / f".{name}.old"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
