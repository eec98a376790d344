"""What a task gives the shared trainer, and the helpers every task uses.

A task (registered in ``grec.base.registry.TASKS``) reads its data, builds its model from the
``MODELS`` registry, scores a split, and saves beside the weights what a later run needs to
rebuild the model (``task.json``: the model name and constructor arguments, vocabularies, labels).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from grec.base.config import from_mappings
from grec.base.errors import GrecError
from grec.base.files import TASK
from grec.base.io import read_json, write_json
from grec.base.registry import MODELS


def parse_args(cls: type, mapping: dict, flag: str) -> Any:
    """A task's settings dataclass from ``--data_args`` / ``--model_args``; unknown keys are refused."""
    return from_mappings(cls, [(flag, mapping)])


def build_model(name: str, shapes: dict, args: dict):
    """``MODELS[name](**shapes, **args)``; shapes come from the data, args from ``--model_args``."""
    cls = MODELS.get(name)
    params = inspect.signature(cls).parameters
    unknown = sorted(set(args) - set(params))
    if unknown:
        settable = sorted(p for p in params if p not in shapes and p != "self")
        raise GrecError(
            f"--model_args: model {name!r} has no setting {', '.join(unknown)}; its settings are: {', '.join(settable)}"
        )
    clash = sorted(set(args) & set(shapes))
    if clash:
        raise GrecError(f"--model_args: {', '.join(clash)} of model {name!r} comes from the data and cannot be set")
    return cls(**shapes, **args)


class Task:
    """Base class: subclasses fill ``train_set``/``valid_set`` in ``__init__`` and implement the rest.

    ``metric`` (with ``higher_is_better``) is the validation score that picks the best epoch;
    ``evaluate`` returns it among others.
    """

    default_model: str = ""
    metric: str = "loss"
    higher_is_better: bool = False

    def __init__(self, cfg):
        self.cfg = cfg
        self.model_name = cfg.model or self.default_model
        self.train_set = self.valid_set = None

    # --- what subclasses provide -------------------------------------------------------------
    def shapes(self) -> dict:
        """Model constructor arguments that come from the data (vocabulary sizes, classes)."""
        return {}

    def collate(self, rows: list) -> dict:
        raise NotImplementedError

    def evaluate(self, model, split: str) -> dict[str, float]:
        """Metrics of ``model`` on ``split`` ("valid" or "test"); may write result files."""
        raise NotImplementedError

    def extra(self) -> dict:
        """What task.json records beside the model (vocabularies, label names)."""
        return {}

    def init_model(self, model, folder: str) -> None:
        """``--init_from``: start from a finished run's weights (tasks with vocabularies grow them)."""
        load_weights(model, folder)

    # --- shared -----------------------------------------------------------------------------
    def build_model(self):
        args = dict(self.cfg.model_args)
        if getattr(self.cfg, "base_model", None):
            if "base_model" not in inspect.signature(MODELS.get(self.model_name)).parameters:
                raise GrecError(f"--base_model: model {self.model_name!r} does not start from a pretrained model")
            args["base_model"] = self.cfg.base_model
        return build_model(self.model_name, self.shapes(), args)

    def save_extra(self, folder: Path) -> None:
        write_json(
            Path(folder) / TASK,
            {
                "task": self.cfg.task,
                "model": self.model_name,
                "shapes": self.shapes(),
                "model_args": self.cfg.model_args,
                "data_args": self.cfg.data_args,
                **self.extra(),
            },
        )


def read_task_file(folder: str | Path) -> dict:
    path = Path(folder) / TASK
    if not path.is_file():
        raise GrecError(f"{folder}: not a grec task checkpoint ({TASK} missing); give a run's best/ or last/")
    return read_json(path)


def load_weights(model, folder: str | Path) -> None:
    """Load ``model.safetensors`` from a checkpoint folder into ``model`` (shapes must match)."""
    from safetensors.torch import load_file

    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        raise GrecError(f"{path}: weights not found; give a run's best/ or last/ folder")
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    missing = _untied(model, missing)
    if missing or unexpected:
        raise GrecError(
            f"{path}: weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]}); "
            f"was it trained with other --model_args?"
        )


def _untied(model, missing: list[str]) -> list[str]:
    """Missing keys that are not tied to a loaded tensor (saved models leave tied copies out)."""
    tensors, absent = model.state_dict(), set(missing)
    loaded = {tensors[k].data_ptr() for k in tensors if k not in absent}
    return [k for k in missing if tensors[k].data_ptr() not in loaded]
