"""Running a Hugging Face Trainer the grec way: resume from the newest whole checkpoint, CPU memory kept."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from grec.base.io import read_json
from grec.lm.cpu_memory import kept_freed_memory
from grec.training.artifacts import RunArtifacts

logger = logging.getLogger("grec")


def latest_complete_checkpoint(output_dir: str) -> str | None:
    """The newest checkpoint-N whose trainer_state.json (the Trainer writes it last) is whole.

    A run killed while saving leaves a checkpoint without it, or with it cut short; such folders
    are skipped, so resuming picks up the previous whole checkpoint.
    """
    steps = {
        int(p.name.split("-")[1]): p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[1].isdigit()
    }
    for candidate in (steps[k] for k in sorted(steps, reverse=True)):
        try:
            json.loads((candidate / "trainer_state.json").read_text())
            return str(candidate)
        except (OSError, ValueError):
            logger.warning("train: skipping %s: it was not saved completely", candidate)
    return None


def run_trainer(
    trainer, artifacts: RunArtifacts, resume: str | None, output_dir: str, keep_cpu_memory: bool = True
) -> dict:
    """Train (resuming from a checkpoint, or with "auto" the newest whole one); return training_state.json.

    On a CPU, freed memory stays in the process while training unless ``keep_cpu_memory`` is false
    (grec/lm/cpu_memory.py).
    """
    artifacts.trainer = trainer
    if resume == "auto":
        resume = latest_complete_checkpoint(output_dir)
        logger.info("resuming from %s", resume or "scratch (no complete checkpoint in --output_dir)")
    with kept_freed_memory(keep_cpu_memory and trainer.args.device.type == "cpu"):
        trainer.train(resume_from_checkpoint=resume)
    return read_json(Path(output_dir) / "training_state.json")
