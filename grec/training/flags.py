"""``RunFlags``: the optimisation and run-keeping flags that ``grec train`` and ``grec align`` share.

One owner for their names, help text and checks: ``TrainConfig`` and ``AlignConfig`` inherit
them (a stage may restate a field only to change its default) and add their own. ``--help`` of
each stage lists these after its own flags (``grec.base.config.command`` merges the ``Args:``
sections along the class hierarchy).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from grec.base.config import check_sample
from grec.base.errors import GrecError
from grec.base.fields import extendable, neutral
from grec.training.arguments import accumulation_steps

REPORTS = ("none", "tensorboard", "wandb")
# transformers' schedules that need no extra arguments
SCHEDULERS = (
    "cosine",
    "linear",
    "constant",
    "constant_with_warmup",
    "cosine_with_restarts",
    "polynomial",
    "inverse_sqrt",
)


@dataclass
class RunFlags:
    """Optimiser, batching, LoRA, validation and run-keeping flags of every training stage.

    Args:
        batch_size: global batch size (examples per optimizer step, all processes together).
        micro_batch_size: examples per process per forward pass; gradient accumulation = batch_size / (micro_batch_size x processes).
        num_epochs: training epochs.
        learning_rate: peak learning rate.
        warmup_ratio: share of steps with linear warm-up.
        lr_scheduler: learning-rate schedule after warm-up (cosine, linear, constant, constant_with_warmup, cosine_with_restarts, polynomial, inverse_sqrt).
        weight_decay: AdamW weight decay.
        cutoff_len: most tokens per example, prompt and response; longer prompts lose their oldest tokens by the one rule training, inference and alignment share (grec.base.prompts), and records whose response alone does not fit are dropped (counted).
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling.
        lora_dropout: dropout on the LoRA path.
        lora_target_modules: module names that get adapters.
        eval_beams: beams of the SID-constrained beam search that scores validation NDCG@10.
        eval_exclude_history: the validation NDCG skips the items of the record's history (the last --max_history items prepare kept), as grec infer --exclude_history does (the ML-100K protocol); false ranks them too.
        early_stopping_patience: stop after this many epochs without a better validation metric; 0 never stops.
        sample: a seeded random subset of this many training records; -1 uses all.
        val_sample: a seeded random subset of this many validation records (of each file); -1 uses all.
        seed: random seed (new rows, data order, dropout, negative and rollout sampling).
        resume_from_checkpoint: a checkpoint-N folder, or auto for the newest whole one in --output_dir.
        overwrite: replace a run in --output_dir made with other settings (without it such a folder is refused).
        bf16: train in bfloat16 mixed precision.
        report_to: none, tensorboard or wandb (offline mode works without network).
        logging_steps: optimizer steps between logs.
        keep_cpu_memory: on a CPU, keep freed memory in the process between steps instead of returning it to the system each time (glibc): faster steps, higher peak memory (grec/lm/cpu_memory.py).
    """

    batch_size: int = 32
    micro_batch_size: int = 8
    num_epochs: int = extendable(1)
    learning_rate: float = 1e-4
    warmup_ratio: float = 0.05
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    cutoff_len: int = 256
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | None = None
    eval_beams: int = 20
    eval_exclude_history: bool = True
    early_stopping_patience: int = 0
    sample: int = -1
    val_sample: int = -1
    seed: int = 42
    resume_from_checkpoint: str | None = neutral(None)
    overwrite: bool = neutral(False)
    bf16: bool = False
    report_to: str = neutral("none")
    logging_steps: int = 10
    keep_cpu_memory: bool = neutral(True)

    def check_run_flags(self) -> None:
        """Refuse values no run can use, naming the flag."""
        check_schedule(self)
        for name in (
            "batch_size",
            "micro_batch_size",
            "num_epochs",
            "cutoff_len",
            "lora_r",
            "eval_beams",
            "logging_steps",
        ):
            if getattr(self, name) < 1:
                raise GrecError(f"--{name}: must be at least 1")
        if self.batch_size % self.micro_batch_size:
            raise GrecError(
                f"--batch_size {self.batch_size} is not a multiple of --micro_batch_size {self.micro_batch_size}"
            )
        for name in ("sample", "val_sample"):
            check_sample(name, getattr(self, name))

    def accumulation_steps(self, processes: int) -> int:
        """Gradient accumulation for ``processes`` data-parallel workers; refuses uneven splits."""
        return accumulation_steps(self.batch_size, self.micro_batch_size, processes)


def check_schedule(cfg) -> None:
    """The checks of the flags every trainer shares (``RunFlags`` and ``grec train-task``'s ``TaskConfig``):
    tracking, learning rate, warm-up, scheduler and early stopping, one message each."""
    if cfg.report_to not in REPORTS:
        raise GrecError(f"--report_to: expected one of {', '.join(REPORTS)}, got {cfg.report_to!r}")
    if cfg.report_to != "none":
        package = "tensorboard" if cfg.report_to == "tensorboard" else "wandb"
        if importlib.util.find_spec(package) is None:
            raise GrecError(f"--report_to {cfg.report_to}: the {package} package is missing; pip install {package}")
    if cfg.lr_scheduler not in SCHEDULERS:
        raise GrecError(f"--lr_scheduler: expected one of {', '.join(SCHEDULERS)}, got {cfg.lr_scheduler!r}")
    if cfg.learning_rate < 0:
        raise GrecError(f"--learning_rate: must be 0 (no updates) or positive, got {cfg.learning_rate}")
    if not 0 <= cfg.warmup_ratio < 1:
        raise GrecError(f"--warmup_ratio: a share of the steps in [0, 1), got {cfg.warmup_ratio}")
    if cfg.early_stopping_patience < 0:
        raise GrecError("--early_stopping_patience: must be 0 (never stop) or more")
