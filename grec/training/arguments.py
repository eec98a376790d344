"""The one builder of ``transformers.TrainingArguments`` for every grec trainer (``grec train``, ``grec train-task``).

Both trainers save once per epoch (``RunArtifacts`` keeps best/ and last/ beside the Trainer's
checkpoints), evaluate once per epoch when there is validation data, keep the global batch at
``batch_size`` whatever the process count, and use gloo for data-parallel runs on CPUs.
"""

from __future__ import annotations

import os

from grec.base.errors import GrecError
from grec.base.secrets import without_secrets


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
    Optional config fields, where a trainer has them: ``save_steps`` (mid-epoch checkpoints; then
    ``eval_steps``), ``save_total_limit``, ``max_steps``, ``gradient_checkpointing`` and
    ``trainer_args`` (any other field, checked by ``check_trainer_args``).
    """
    import torch
    from transformers import TrainingArguments

    cpu = not torch.cuda.is_available()
    save_steps = getattr(cfg, "save_steps", 0)
    if save_steps:  # mid-epoch checkpoints, validation at each (or every --eval_steps)
        schedule = {
            "save_strategy": "steps",
            "save_steps": save_steps,
            "eval_strategy": "steps" if validate else "no",
            "eval_steps": getattr(cfg, "eval_steps", 0) or save_steps,
        }
    else:
        schedule = {"save_strategy": "epoch", "eval_strategy": "epoch" if validate else "no"}
    if cpu and extra.get("deepspeed"):
        gloo_allreduce_for_cpu_deepspeed()
    checkpointing = getattr(cfg, "gradient_checkpointing", False)
    passthrough, secrets = without_secrets(dict(getattr(cfg, "trainer_args", None) or {}))
    if secrets.get("hub_token"):  # huggingface_hub reads it there; a TrainingArguments field is pickled to disk
        os.environ["HF_TOKEN"] = str(secrets["hub_token"])
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
        **schedule,
        max_steps=getattr(cfg, "max_steps", -1),
        activation_checkpointing=checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=cfg.bf16,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        remove_unused_columns=False,
        disable_tqdm=False,
        dataloader_pin_memory=not cpu,
        use_cpu=cpu,
        ddp_backend="gloo" if world > 1 and cpu else None,
        **{"save_total_limit": getattr(cfg, "save_total_limit", None), **extra, **passthrough},
    )


def gloo_allreduce_for_cpu_deepspeed() -> None:
    """DeepSpeed on CPU processes (tests, CI, small runs) reduces gradients with gloo, as plain data-parallel
    does, instead of its shared-memory kernel, which is compiled from C++ at the first launch on each
    machine (48 s of a 67 s two-process launch on a 2-core CPU) and pays off only for large models.
    DeepSpeed takes the same gloo path where the kernel cannot be built. ``GREC_DS_SHM=1`` keeps it."""
    if os.environ.get("GREC_DS_SHM") == "1":
        return
    try:
        import deepspeed.ops

        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False  # what deepspeed.comm's build_shm_op reads
    except (ImportError, AttributeError, TypeError):
        pass  # another DeepSpeed layout: it decides for itself


OWNED = {  # TrainingArguments fields grec sets from its own flags: trainer_args may not set them
    "output_dir": "--output_dir",
    "per_device_train_batch_size": "--micro_batch_size",
    "gradient_accumulation_steps": "--batch_size",
    "num_train_epochs": "--num_epochs",
    "learning_rate": "--learning_rate",
    "seed": "--seed",
    "save_strategy": "--save_steps",
    "save_steps": "--save_steps",
    "eval_strategy": "--save_steps / --eval_steps",
    "max_steps": "--max_steps",
    "bf16": "--bf16",
    "fp16": "--fp16",
    "deepspeed": "--deepspeed",
    "activation_checkpointing": "--gradient_checkpointing",
    "gradient_checkpointing": "--gradient_checkpointing",
}


def check_trainer_args(values: dict | None) -> None:
    """Refuse a ``trainer_args`` key that is not a ``TrainingArguments`` field, or one a grec flag owns."""
    if not values:
        return
    import dataclasses

    from transformers import TrainingArguments

    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    for key in values:
        if key in OWNED:
            raise GrecError(f"--trainer_args: {key} is set by {OWNED[key]}; use that flag")
        if key not in fields:
            close = sorted(f for f in fields if key.split("_")[0] in f)[:5]
            hint = f" (similar: {', '.join(close)})" if close else ""
            raise GrecError(f"--trainer_args: {key!r} is not a transformers.TrainingArguments field{hint}")
