"""``train_task(cfg)``: any registered task through the Hugging Face Trainer that `grec train` uses.

Same checkpoint layout (best/, last/, checkpoint-N/, training_state.json, log.json, loss.png),
same resume rule, data-parallel under ``accelerate launch``. After training, the best weights
are scored on the test split; rank 0 writes ``test_metrics.json``.
"""

from __future__ import annotations

from pathlib import Path

from grec.base.distributed import rank, release_processes, world_size
from grec.base.errors import GrecError
from grec.base.io import write_json
from grec.base.registry import TASKS, load_plugins
from grec.tasks.base import load_weights
from grec.tasks.config import TaskConfig
from grec.training.arguments import training_arguments
from grec.training.artifacts import RunArtifacts
from grec.training.loop import check_run_folder, run_trainer


class _Scorer:
    def __init__(self, task):
        self.task, self.metric, self.higher_is_better = task, task.metric, task.higher_is_better

    def __call__(self, model) -> dict[str, float]:
        return self.task.evaluate(model, "valid")


def train_task(cfg: TaskConfig) -> dict:
    """Train ``cfg.task``; return training_state.json plus ``test`` (the best weights' test metrics)."""
    import torch
    from transformers import Trainer

    load_plugins(cfg.plugin)
    world = world_size()
    check_run_folder(cfg)
    resume = cfg.resume_from_checkpoint
    torch.manual_seed(cfg.seed)
    task = TASKS.get(cfg.task)(cfg)
    model = task.build_model()
    if cfg.init_from:
        task.init_model(model, cfg.init_from)
    steps = max(1, len(task.train_set) // cfg.batch_size)
    if cfg.batch_size % world:
        raise GrecError(
            f"--batch_size {cfg.batch_size} does not split over {world} processes; use a multiple of {world}"
        )
    arguments = training_arguments(
        cfg,
        world,
        cfg.per_device_batch(world),
        cfg.eval_batch_size,
        steps,
        task.valid_set is not None,
        save_total_limit=2,
        dataloader_num_workers=cfg.num_workers,
    )
    artifacts = RunArtifacts(cfg, task.save_extra, _Scorer(task))
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=task.train_set,
        eval_dataset=task.valid_set,
        data_collator=task.collate,
        callbacks=[artifacts],
    )
    state = run_trainer(trainer, artifacts, resume, cfg.output_dir, cfg.keep_cpu_memory)
    if rank() == 0:
        best = Path(cfg.output_dir) / (state.get("best_dir") or "last")
        load_weights(model, best)
        model.eval()
        state["test"] = task.evaluate(model, "test")
        write_json(Path(cfg.output_dir) / "test_metrics.json", {"checkpoint": best.name, **state["test"]})
    release_processes()
    return state
