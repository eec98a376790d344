"""The Trainer's progress in a log file: a few plain lines instead of a redrawn bar.

On a terminal the Trainer keeps its own tqdm bars. Elsewhere (CI, ``nohup``, a log file),
``plain_progress(trainer)`` swaps its ``ProgressCallback`` for ``LineProgressCallback``, which
prints one line at every tenth of the steps with the latest logged loss.
"""

from __future__ import annotations

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from grec.base.progress import LineProgress, interactive


class LineProgressCallback(TrainerCallback):
    def __init__(self):
        self.bar: LineProgress | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = LineProgress(total=state.max_steps, desc="train", unit="steps")
            self.bar.n = state.global_step  # a resumed run starts where it stopped

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs:
            shown = {k: f"{v:.4g}" for k, v in logs.items() if k in ("loss", "eval_loss") and isinstance(v, float)}
            if shown:
                self.bar.set_postfix(shown)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def plain_progress(trainer) -> None:
    """Replace the Trainer's tqdm bars by plain lines when stderr is not a terminal."""
    if interactive():
        return
    import datasets

    datasets.disable_progress_bars()
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(LineProgressCallback())
