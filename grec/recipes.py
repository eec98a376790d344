"""``grec run --recipe NAME``: a recipe file's stage chain, skipping stages already done alike.

A recipe (``configs/recipes/NAME.yaml``, or any YAML path) lists stages in order, each with the
flags of its command; ``{data}`` and ``{out}`` in values are replaced by ``--data`` / ``--out``,
``{configs}`` by the repository's configs/ folder.
A finished stage leaves its settings in ``<out>/.recipe/``; a later run with the same settings
skips it (``--force`` reruns everything). ``--overrides '{train: {num_epochs: 1}}'`` changes the
flags of every stage of a kind, e.g. for a short smoke run.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grec.config import from_mappings, read_yaml
from grec.errors import GrecError
from grec.io import read_json, write_json

logger = logging.getLogger("grec")
RECIPE_DIR = Path(__file__).resolve().parents[1] / "configs" / "recipes"
STAGES = {  # stage -> (module, config class, function)
    "prepare": ("grec.prepare", "PrepareConfig", "prepare"),
    "index": ("grec.index", "IndexConfig", "build_index"),
    "tokenizer": ("grec.tokenizer", "TokenizerConfig", "train_tokenizer"),
    "records": ("grec.records", "RecordsConfig", "build_records"),
    "train": ("grec.train", "TrainConfig", "train"),
    "train-task": ("grec.tasks", "TaskConfig", "train_task"),
    "infer": ("grec.infer", "InferConfig", "infer"),
    "popularity": ("grec.infer.popularity", "PopularityConfig", "popularity"),
    "evaluate": ("grec.evaluate", "EvaluateConfig", "evaluate"),
}
ALWAYS = ("evaluate",)  # cheap, and it must see every result file
SPEED_ONLY = {"keep_cpu_memory"}  # flags that change how fast a stage runs, not what it writes: not compared


@dataclass
class RunConfig:
    """grec run: run a recipe's stage chain end to end (prepare, index, train, infer, evaluate, ...).

    Example: grec run --recipe tiger --data data/ml-100k --out outputs/tiger

    Args:
        recipe: a recipe name in configs/recipes (tiger, sidlm, lcrec, bigrec, sasrec, demo) or a YAML file.
        data: the prepared data folder, {data} in the recipe.
        out: the run's folder, {out} in the recipe.
        overrides: flags to change per stage kind, e.g. '{train: {num_epochs: 1}, infer: {sample: 20}}'.
        force: rerun stages even when their settings match a finished run.
    """

    recipe: str = "tiger"
    data: str = "data/ml-100k"
    out: str = "outputs/run"
    overrides: dict = field(default_factory=dict)
    force: bool = False


def recipe_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise GrecError(f"{path}: recipe file not found")
        return path
    candidate = RECIPE_DIR / f"{name}.yaml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPE_DIR.glob("*.yaml")))
        raise GrecError(f"unknown recipe {name!r}; recipes in {RECIPE_DIR}: {known}; or give a YAML file")
    return candidate


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, text in names.items():
            value = value.replace("{" + key + "}", text)
        return value
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def load_recipe(cfg: RunConfig) -> list[tuple[str, dict]]:
    """The recipe's (stage, flags) list with placeholders filled and overrides applied."""
    path = recipe_path(cfg.recipe)
    stages = read_yaml(path).get("stages")
    if not isinstance(stages, list) or not stages:
        raise GrecError(f"{path}: expected `stages:`, a list of mappings each with `stage:` and its flags")
    unknown = sorted(set(cfg.overrides) - set(STAGES))
    if unknown:
        raise GrecError(f"--overrides: unknown stage {unknown[0]!r}; stages are {', '.join(STAGES)}")
    out = []
    for number, entry in enumerate(stages, 1):
        if not isinstance(entry, dict) or entry.get("stage") not in STAGES:
            raise GrecError(f"{path}: stage {number} needs `stage:` set to one of {', '.join(STAGES)}")
        flags = {k: v for k, v in entry.items() if k != "stage"}
        for key, value in cfg.overrides.get(entry["stage"], {}).items():  # mappings merge one level deep
            flags[key] = {**flags[key], **value} if isinstance(value, dict) and isinstance(flags.get(key), dict) else value
        out.append((entry["stage"], _fill(flags, {"data": cfg.data, "out": cfg.out, "configs": str(RECIPE_DIR.parent)})))
    return out


def run_recipe(cfg: RunConfig) -> dict:
    """Run the chain; return the last evaluate table (or {})."""
    stages = load_recipe(cfg)
    marks = Path(cfg.out) / ".recipe"
    table: dict = {}
    for number, (stage, flags) in enumerate(stages, 1):
        module, cls_name, fn_name = STAGES[stage]
        module = importlib.import_module(module)
        config = from_mappings(getattr(module, cls_name), [(f"recipe stage {number} ({stage})", flags)])
        settings = {k: v for k, v in json.loads(json.dumps(asdict(config), default=str)).items() if k not in SPEED_ONLY}
        mark = marks / f"{number:02d}-{stage}.json"
        if not cfg.force and stage not in ALWAYS and mark.is_file() and read_json(mark)["settings"] == settings:
            logger.info("[%d/%d] %s: done before with these settings; skipped", number, len(stages), stage)
            continue
        logger.info("[%d/%d] %s", number, len(stages), stage)
        started = time.time()
        result = getattr(module, fn_name)(config)
        if stage == "evaluate":
            table = result
        write_json(mark, {"settings": settings, "seconds": round(time.time() - started, 1)})
    return table
