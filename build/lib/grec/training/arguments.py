"""The one builder of ``transformers.TrainingArguments`` for every grec trainer (``grec train``, ``grec train-task``).

Both trainers save once per epoch (``RunArtifacts`` keeps best/ and last/ beside the Trainer's
checkpoints), evaluate once per epoch when there is validation data, keep the global batch at
``batch_size`` whatever the process count, and use gloo for data-parallel runs on CPUs.
"""

from __future__ import annotations

from grec.base.errors import GrecError


def accumulation_steps(batch_size: int, micro_batch_size: int, processes: int) -> int:
    """Steps to accumulate so that ``micro_batch_size`` x ``processes`` x steps = ``batch_size``; refuses uneven splits."""
    per_step = micro_batch_size * processes
    if batch_size % per_step:
        raise GrecError(
            f"--batch_size {batch_size} does not divide into --micro_batch_size {micro_batch_size} x "
            f"{processes} processes; pick sizes with batch_size = micro_batch_size x processes x k"
        )
    return batch_size // per_step


def training_arguments(
    cfg, world: int, per_device_batch: int, eval_batch: int, steps_per_epoch: int, validate: bool, **extra
):
    """``TrainingArguments`` from a trainer's config (``output_dir``, ``batch_size``, ``num_epochs``,
    ``learning_rate``, ``warmup_ratio``, ``lr_scheduler``, ``weight_decay``, ``logging_steps``,
    ``seed``, ``bf16``, ``report_to``) for ``world`` processes of ``per_device_batch`` examples.

    ``extra``: further ``TrainingArguments`` fields a trainer sets (fp16, deepspeed, workers, ...).
    """
    import torch
    from transformers import TrainingArguments

    cpu = not torch.cuda.is_available()
    return TrainingArguments(
        output_dir=cfg.output_dir,
        per_device_train_batch_size=per_device_batch,
        per_device_eval_batch_size=eval_batch,
        gradient_accumulation_steps=accumulation_steps(cfg.batch_size, per_device_batch, world),
        num_train_epochs=cfg.num_epochs,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler,
        weight_decay=cfg.weight_decay,
        logging_steps=min(cfg.logging_steps, steps_per_epoch),
        eval_strategy="epoch" if validate else "no",
        save_strategy="epoch",
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=cfg.bf16,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        remove_unused_columns=False,
        disable_tqdm=False,
        dataloader_pin_memory=not cpu,
        use_cpu=cpu,
        ddp_backend="gloo" if world > 1 and cpu else None,
        **extra,
    )
