"""``grec run --recipe NAME``: a recipe file's stage chain, skipping stages already done alike.

A recipe (``grec/configs/recipes/NAME.yaml``, packaged with grec, or any YAML path) lists stages
in order, each with the flags of its command; ``{data}`` and ``{out}`` in values are replaced by
``--data`` / ``--out``, ``{configs}`` by grec's packaged configs folder. A recipe may start from
another (``extends: sidlm``), add stages (``stages:``, placed before the first stage of the kind
named by ``before:``, else at the end) and change flags per stage kind or per stage name
(``set:``; a stage may carry ``name:`` so that one of several stages of a kind can be addressed).
A finished stage leaves its settings in ``<out>/.recipe/``; a later run with the same settings
skips it (``--force`` reruns everything); a training stage killed part-way resumes from its
newest whole checkpoint (``resume_from_checkpoint: auto`` unless the recipe says otherwise).
``--overrides '{train: {num_epochs: 1}}'`` changes the flags of every stage of a kind (or of the one
stage of that name), e.g. for a short smoke run. Every stage's flags are checked before the first
stage runs.
"""

from __future__ import annotations

import importlib.resources
import logging
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from grec.base.config import checked_values, from_mappings, read_yaml
from grec.base.errors import GrecError
from grec.base.fields import flagged
from grec.base.files import SETTINGS
from grec.base.io import read_json, write_json
from grec.base.secrets import recorded
from grec.stages import STAGES

logger = logging.getLogger("grec")
CONFIGS = Path(str(importlib.resources.files("grec") / "configs"))  # package data, wherever grec is installed
RECIPE_DIR = CONFIGS / "recipes"
ALWAYS = ("evaluate",)  # cheap, and it must see every result file


@dataclass
class RunConfig:
    """grec run: run a recipe's stage chain end to end (prepare, index, train, infer, evaluate, ...).

    Example: grec run --recipe tiger --data data/ml-100k --out outputs/tiger

    Args:
        recipe: a recipe name ({recipes}; packaged in grec/configs/recipes) or a YAML file.
        data: the prepared data folder, {data} in the recipe.
        out: the run's folder, {out} in the recipe.
        overrides: flags to change per stage kind or stage name, e.g. '{train: {num_epochs: 1}, infer: {sample: 20}}'.
        force: rerun stages even when their settings match a finished run.
        dataset: the data set the recipe's prepare stage reads (ml-1m, amazon, ...); default: the one --data was prepared from (its settings.json), else --data's folder name when it names a data set (data/ml-1m), else the recipe's own.
    """

    recipe: str = "tiger"
    data: str = "data/ml-100k"
    out: str = "outputs/run"
    overrides: dict = field(default_factory=dict)
    force: bool = False
    dataset: str | None = None


def recipe_names() -> list[str]:
    """The packaged recipes, ``paper/NAME`` ones last."""
    own = sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))
    return own + sorted(f"paper/{p.stem}" for p in (RECIPE_DIR / "paper").glob("*.yaml"))


RunConfig.__doc__ = RunConfig.__doc__.replace("{recipes}", ", ".join(recipe_names()))  # --help lists every one


def recipe_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise GrecError(f"{path}: recipe file not found")
        return path
    candidate = RECIPE_DIR / f"{name}.yaml"
    if not candidate.is_file():
        known = ", ".join(recipe_names())
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


def _merge(flags: dict, changes: dict) -> dict:
    """``flags`` with ``changes`` applied; mappings merge one level deep."""
    flags = dict(flags)
    for key, value in changes.items():
        flags[key] = {**flags[key], **value} if isinstance(value, dict) and isinstance(flags.get(key), dict) else value
    return flags


def _check_changes(changes: Any, where: str, stages: list[dict]) -> dict:
    """``changes`` (stage kind or stage name -> flags), each key naming a stage of ``stages``."""
    if changes is None:
        return {}
    if not isinstance(changes, dict):
        raise GrecError(f"{where}: expected a mapping of stage kind (or stage name) -> flags, got {changes!r}")
    kinds = {s["stage"] for s in stages}
    names = {s["name"] for s in stages if "name" in s}
    for key, flags in changes.items():
        if key not in kinds and key not in names:
            if key in STAGES:
                raise GrecError(f"{where}: this recipe has no {key} stage (its stages: {', '.join(_labels(stages))})")
            raise GrecError(
                f"{where}: unknown stage {key!r}; give a stage kind ({', '.join(STAGES)}) "
                f"or a stage name of this recipe ({', '.join(sorted(names)) or 'none'})"
            )
        if not isinstance(flags, dict):
            raise GrecError(f"{where}: {key}: expected a mapping of flag -> value, got {flags!r}")
    return changes


def _labels(stages: list[dict]) -> list[str]:
    return [f"{s['stage']} ({s['name']})" if "name" in s else s["stage"] for s in stages]


def _changes_for(stage: dict, changes: dict) -> dict:
    """The flags ``changes`` sets on ``stage``: by its kind, then by its name (the name wins)."""
    return _merge(changes.get(stage["stage"], {}), changes.get(stage.get("name"), {}) if "name" in stage else {})


def _stage_list(path: Path, seen: tuple[Path, ...] = ()) -> list[dict]:
    """The recipe's stage entries, its ``extends:`` chain resolved."""
    if path.resolve() in seen:
        raise GrecError(f"{path}: `extends:` loops back to itself")
    recipe = read_yaml(path)
    own = recipe.get("stages", [])
    if not isinstance(own, list) or (not own and "extends" not in recipe):
        raise GrecError(f"{path}: expected `stages:`, a list of mappings each with `stage:` and its flags")
    for number, entry in enumerate(own, 1):
        if not isinstance(entry, dict) or entry.get("stage") not in STAGES:
            raise GrecError(f"{path}: stage {number} needs `stage:` set to one of {', '.join(STAGES)}")
        if "name" in entry and (not isinstance(entry["name"], str) or entry["name"] in STAGES):
            raise GrecError(f"{path}: stage {number}: `name:` must be a word that is not a stage kind")
    if "extends" not in recipe:
        return list(own)
    stages = _stage_list(recipe_path(str(recipe["extends"])), (*seen, path.resolve()))
    changes = _check_changes(recipe.get("set", {}), f"{path}: set", stages)
    stages = [{**_merge(s, _changes_for(s, changes)), "stage": s["stage"]} for s in stages]
    before = recipe.get("before")
    kinds = [s["stage"] for s in stages]
    if before is not None and before not in kinds:
        raise GrecError(f"{path}: before: {before!r} is not a stage of {recipe['extends']} ({', '.join(kinds)})")
    at = kinds.index(before) if before is not None else len(stages)
    return stages[:at] + list(own) + stages[at:]


def stage_keys(recipe: str) -> set[str]:
    """The stage kinds and stage names of ``recipe``: the keys its ``--overrides`` may use."""
    stages = _stage_list(recipe_path(recipe))
    return {s["stage"] for s in stages} | {s["name"] for s in stages if "name" in s}


def load_recipe(cfg: RunConfig) -> list[tuple[str, dict]]:
    """The recipe's (stage, flags) list with placeholders filled and overrides applied."""
    path = recipe_path(cfg.recipe)
    stages = _stage_list(path)
    overrides = _check_changes(cfg.overrides, "--overrides", stages)
    names = {"data": cfg.data, "out": cfg.out, "configs": str(CONFIGS)}
    target = _dataset(cfg)
    out = []
    for entry in stages:
        own = {k: v for k, v in entry.items() if k not in ("stage", "name")}
        if entry["stage"] == "prepare" and target is not None:  # --data / --dataset retarget the recipe
            own["dataset"] = target
        flags = _merge(own, _changes_for(entry, overrides))
        out.append((entry["stage"], _fill(flags, names)))
    return out


def _dataset(cfg: RunConfig) -> str | None:
    """The data set --dataset or --data names (see RunConfig), or None to keep the recipe's."""
    from grec.prepare.datasets import DATASETS

    if cfg.dataset is not None:
        if cfg.dataset not in DATASETS:
            raise GrecError(f"--dataset: unknown data set {cfg.dataset!r}; choose one of {', '.join(DATASETS)}")
        return cfg.dataset
    marker = Path(cfg.data) / SETTINGS
    if marker.is_file():
        return read_json(marker).get("settings", {}).get("dataset")
    return Path(cfg.data).name if Path(cfg.data).name in DATASETS else None


def check_stages(stages: list[tuple[str, dict]]) -> None:
    """Every stage's flag names and value types, before the first stage runs (a typo in the last
    stage should not cost the run of the first ones). File checks wait for each stage's turn."""
    for number, (stage, flags) in enumerate(stages, 1):
        checked_values(STAGES[stage].load()[0], [(f"recipe stage {number} ({stage})", flags)])


def run_recipe(cfg: RunConfig) -> dict:
    """Run the chain; return the last evaluate table (or {})."""
    stages = load_recipe(cfg)
    check_stages(stages)
    marks = Path(cfg.out) / ".recipe"
    table: dict = {}
    for number, (stage, flags) in enumerate(stages, 1):
        config_class, function = STAGES[stage].load()
        if "resume_from_checkpoint" in {f.name for f in fields(config_class)}:
            flags = {"resume_from_checkpoint": "auto", **flags}  # a killed recipe's training goes on where it stopped
        config = from_mappings(config_class, [(f"recipe stage {number} ({stage})", flags)])
        settings = {k: v for k, v in recorded(config).items() if k not in flagged(config, "neutral")}
        mark = marks / f"{number:02d}-{stage}.json"
        if not cfg.force and stage not in ALWAYS and mark.is_file() and read_json(mark)["settings"] == settings:
            logger.info("[%d/%d] %s: done before with these settings; skipped", number, len(stages), stage)
            continue
        logger.info("[%d/%d] %s", number, len(stages), stage)
        started = time.time()
        result = function(config)
        if stage == "evaluate":
            table = result
        write_json(mark, {"settings": settings, "seconds": round(time.time() - started, 1)})
    return table
