"""Tasks for the shared trainer (``grec train-task``): each module registers its task and models."""

import grec.models  # noqa: F401
from grec.tasks import ctr, image_cls, lm_pretrain, seqrec, text_cls  # noqa: F401
from grec.tasks.config import TaskConfig
from grec.tasks.trainer import train_task

__all__ = ["TaskConfig", "train_task"]
