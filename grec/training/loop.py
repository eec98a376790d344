"""Running a Hugging Face Trainer the grec way: resume from the newest whole checkpoint, CPU memory kept."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from grec.base.distributed import barrier, rank
from grec.base.errors import GrecError
from grec.base.fields import flagged
from grec.base.files import TRAINING_STATE
from grec.base.io import read_json
from grec.base.secrets import recorded
from grec.lm.checkpoint import file_problem, weights_problem
from grec.lm.cpu_memory import kept_freed_memory
from grec.training.artifacts import RunArtifacts
from grec.training.progress import plain_progress

logger = logging.getLogger("grec")


def resume_problem(folder: Path) -> str | None:
    """Why the Trainer cannot resume from ``folder`` (a checkpoint-N it wrote), or None.

    The Trainer writes trainer_state.json last, so a kill while saving leaves it missing or cut
    short; a checkpoint copied in part lacks or cuts a weights, optimizer or scheduler file.
    """
    try:
        json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "trainer_state.json is missing or cut short"
    deepspeed = any(folder.glob("global_step*"))  # DeepSpeed keeps weights and optimizer state there
    checks = [] if deepspeed else [weights_problem(folder)]
    checks += [file_problem(folder / name) for name in ("optimizer.pt", "scheduler.pt") if (folder / name).exists()]
    return next((problem for problem in checks if problem), None)


def latest_complete_checkpoint(output_dir: str) -> str | None:
    """The newest checkpoint-N that is whole (``resume_problem``); incomplete ones are skipped, so
    resuming picks up the previous whole checkpoint."""
    steps = {
        int(p.name.split("-")[1]): p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[1].isdigit()
    }
    for candidate in (steps[k] for k in sorted(steps, reverse=True)):
        problem = resume_problem(candidate)
        if problem is None:
            return str(candidate)
        logger.warning("train: skipping %s: %s (it was not saved completely)", candidate, problem)
    return None


def check_run_folder(cfg) -> None:
    """Before any work: ``--resume_from_checkpoint PATH`` must be a whole checkpoint (``check_resume``),
    and ``--output_dir`` may hold a run only if it was made with the same settings.

    A PATH that does not exist at all starts a fresh run with a warning, as BIGRec's train.py does
    (its published scripts pass the placeholder 'XXX'); ``cfg.resume_from_checkpoint`` becomes None.
    """
    resume = cfg.resume_from_checkpoint
    if resume not in (None, "auto") and not Path(resume).exists():
        logger.warning(
            "train: --resume_from_checkpoint %s does not exist: training from scratch (BIGRec's rule; give auto to "
            "resume from the newest whole checkpoint in --output_dir)",
            resume,
        )
        cfg.resume_from_checkpoint = None
    check_resume(cfg.resume_from_checkpoint)
    _check_previous_run(cfg)


def _check_previous_run(cfg) -> None:
    """Refuse to write over a run in ``cfg.output_dir`` that was made with other settings (naming the
    first flag that differs), unless ``cfg.overwrite`` (the old run is then removed); resuming needs
    the same settings but --num_epochs, which may grow. A run with the same settings is continued or
    repeated."""
    folder = Path(cfg.output_dir)
    state = folder / TRAINING_STATE
    if not state.is_file():
        return
    before = read_json(state).get("arguments") or {}
    now = recorded(cfg)
    # a run may be resumed or repeated with neutral or unrecorded flags changed, and resumed with more epochs
    ignored = (
        flagged(cfg, "neutral")
        | flagged(cfg, "unrecorded")
        | (flagged(cfg, "extendable") if cfg.resume_from_checkpoint else set())
    )
    # a flag that became list-valued (--val_data_path) compares its old single value as a one-item list
    differ = [k for k in now if k not in ignored and k in before and before[k] != now[k] and [before[k]] != now[k]]
    if not differ:
        return
    flag = differ[0]
    change = f"--{flag} {json.dumps(before[flag])} there, {json.dumps(now[flag])} here"
    if not cfg.overwrite:
        doing = "cannot resume a run made" if cfg.resume_from_checkpoint else "holds a run made"
        raise GrecError(
            f"{folder}: {doing} with other settings ({change}); pass --overwrite to replace it, "
            f"or choose another --output_dir"
        )
    logger.info("train: --overwrite: removing the previous run in %s (%s)", folder, change)
    if rank() == 0:
        shutil.rmtree(folder)
    barrier()


def check_resume(resume: str | None) -> None:
    """Refuse ``--resume_from_checkpoint PATH`` before any work (and before --output_dir is made)
    when PATH is not a whole checkpoint; ``auto`` and None pass."""
    if resume in (None, "auto"):
        return
    folder = Path(resume)
    if not folder.is_dir():
        raise GrecError(f"{resume}: checkpoint folder not found (given as --resume_from_checkpoint)")
    problem = resume_problem(folder)
    if problem:
        raise GrecError(
            f"{resume}: cannot resume from it: {problem}; give an earlier checkpoint-N, or "
            f"--resume_from_checkpoint auto to take the newest whole one in --output_dir"
        )


def run_trainer(
    trainer, artifacts: RunArtifacts, resume: str | None, output_dir: str, keep_cpu_memory: bool = True
) -> dict:
    """Train (resuming from a checkpoint, or with "auto" the newest whole one); return training_state.json.

    On a CPU, freed memory stays in the process while training unless ``keep_cpu_memory`` is false
    (grec/lm/cpu_memory.py).
    """
    artifacts.trainer = trainer
    plain_progress(trainer)
    if resume == "auto":
        resume = latest_complete_checkpoint(output_dir)
        logger.info("resuming from %s", resume or "scratch (no complete checkpoint in --output_dir)")
    with kept_freed_memory(keep_cpu_memory and trainer.args.device.type == "cpu"):
        trainer.train(resume_from_checkpoint=resume)
    return read_json(Path(output_dir) / TRAINING_STATE)
