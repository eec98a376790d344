"""``train_task(cfg)``: any registered task through the Hugging Face Trainer that `grec train` uses.

Same checkpoint layout (best/, last/, checkpoint-N/, training_state.json, log.json, loss.png),
same resume rule, data-parallel under ``accelerate launch``. After training, the best weights
are scored on the test split; rank 0 writes ``test_metrics.json``.
"""

from __future__ import annotations

from pathlib import Path

from grec.distributed import rank, release_processes, world_size
from grec.errors import GrecError
from grec.io import write_json
from grec.registry import TASKS, load_plugins
from grec.tasks.base import load_weights
from grec.tasks.config import TaskConfig
from grec.train.artifacts import RunArtifacts
from grec.train.run import run_trainer


class _Scorer:
    def __init__(self, task):
        self.task, self.metric, self.higher_is_better = task, task.metric, task.higher_is_better

    def __call__(self, model) -> dict[str, float]:
        return self.task.evaluate(model, "valid")


def _arguments(cfg: TaskConfig, world: int, steps_per_epoch: int, validate: bool):
    import torch
    from transformers import TrainingArguments

    if cfg.batch_size % world:
        raise GrecError(f"--batch_size {cfg.batch_size} does not split over {world} processes; use a multiple of {world}")
    accumulation = cfg.accumulation_steps(world)
    cpu = not torch.cuda.is_available()
    return TrainingArguments(
        output_dir=cfg.output_dir, per_device_train_batch_size=cfg.per_device_batch(world),
        gradient_accumulation_steps=accumulation,
        per_device_eval_batch_size=cfg.eval_batch_size, num_train_epochs=cfg.num_epochs,
        learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
        warmup_steps=int(cfg.warmup_ratio * steps_per_epoch * cfg.num_epochs), lr_scheduler_type=cfg.lr_scheduler,
        logging_steps=min(cfg.logging_steps, steps_per_epoch), eval_strategy="epoch" if validate else "no",
        save_strategy="epoch", save_total_limit=2, seed=cfg.seed, data_seed=cfg.seed, bf16=cfg.bf16,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to], remove_unused_columns=False,
        dataloader_num_workers=cfg.num_workers, dataloader_pin_memory=not cpu, use_cpu=cpu,
        ddp_backend="gloo" if world > 1 and cpu else None, disable_tqdm=False,
    )  # fmt: skip


def train_task(cfg: TaskConfig) -> dict:
    """Train ``cfg.task``; return training_state.json plus ``test`` (the best weights' test metrics)."""
    import torch
    from transformers import Trainer

    load_plugins(cfg.plugin)
    world = world_size()
    resume = cfg.resume_from_checkpoint
    if resume not in (None, "auto") and not Path(resume).is_dir():
        raise GrecError(f"{resume}: checkpoint folder not found (given as --resume_from_checkpoint)")
    torch.manual_seed(cfg.seed)
    task = TASKS.get(cfg.task)(cfg)
    model = task.build_model()
    if cfg.init_from:
        task.init_model(model, cfg.init_from)
    steps = max(1, len(task.train_set) // cfg.batch_size)
    artifacts = RunArtifacts(cfg, task.save_extra, _Scorer(task))
    trainer = Trainer(
        model=model, args=_arguments(cfg, world, steps, task.valid_set is not None), train_dataset=task.train_set,
        eval_dataset=task.valid_set, data_collator=task.collate, callbacks=[artifacts],
    )  # fmt: skip
    state = run_trainer(trainer, artifacts, resume, cfg.output_dir, cfg.keep_cpu_memory)
    if rank() == 0:
        best = Path(cfg.output_dir) / (state.get("best_dir") or "last")
        load_weights(model, best)
        model.eval()
        state["test"] = task.evaluate(model, "test")
        write_json(Path(cfg.output_dir) / "test_metrics.json", {"checkpoint": best.name, **state["test"]})
    release_processes()
    return state
