"""Loading what ``grec train`` saved: a best/ or last/ folder, LoRA adapters applied."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.files import TRAINING_STATE
from grec.base.io import read_json
from grec.lm.loading import load_model, resolve_base_model

WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
SHARD_INDEX = "model.safetensors.index.json"


def file_problem(path: Path) -> str | None:
    """Why a weights or state file cannot be whole (missing, cut short, damaged), or None."""
    if not path.is_file():
        return f"{path.name} is missing"
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), "pt"):
                pass
        except Exception as err:  # safetensors raises its own error type for a short or damaged file
            return f"{path.name} is cut short or damaged ({err})"
    elif path.suffix in (".bin", ".pt", ".pth") and not zipfile.is_zipfile(path):
        return f"{path.name} is cut short or damaged (not a whole torch archive)"
    return None


def weights_problem(folder: Path) -> str | None:
    """Why ``folder`` does not hold whole model weights, or None."""
    files = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    if (folder / SHARD_INDEX).is_file():
        shards = read_json(folder / SHARD_INDEX).get("weight_map", {}).values()
        files += [folder / name for name in sorted(set(shards))]
    if not files:
        return f"no model weights ({' or '.join(WEIGHT_FILES[:2])})"
    return next((problem for problem in map(file_problem, files) if problem), None)


def check_checkpoint(checkpoint: str | Path) -> dict:
    """The ``arguments`` a best/, last/ or exported folder was trained with, after checking that it is whole."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        if any(checkpoint.with_name(f".{checkpoint.name}.{end}").is_dir() for end in ("tmp", "old")):
            raise GrecError(
                f"{checkpoint}: not there: the run was killed while publishing it; run the same training command "
                f"with --resume_from_checkpoint auto (it restores {checkpoint.name}/ first)"
            )
        raise GrecError(
            f"{checkpoint}: checkpoint folder not found; give a best/ or last/ folder that grec train wrote"
        )
    if not (checkpoint / TRAINING_STATE).is_file():
        raise GrecError(f"{checkpoint}: not a grec checkpoint (no training_state.json); give a best/ or last/ folder")
    arguments = read_json(checkpoint / TRAINING_STATE).get("arguments")
    problem = weights_problem(checkpoint)
    if problem or not isinstance(arguments, dict):
        raise GrecError(
            f"{checkpoint}: not a whole checkpoint ({problem or 'training_state.json has no arguments'}); "
            f"it was cut short while saving or copying: copy it again, or use another checkpoint"
        )
    return arguments


def load_trained(checkpoint: str | Path, in_memory: bool = False):
    """(model, tokenizer, seq2seq) of a best/ or last/ folder, LoRA adapters applied (not merged); ``in_memory``:
    see ``load_model``."""
    arguments = check_checkpoint(checkpoint)
    try:
        return _load(Path(checkpoint), arguments, in_memory)
    except (OSError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError) as err:  # pickles: refused, named
        raise GrecError(
            f"{checkpoint}: cannot load this checkpoint ({type(err).__name__}: {str(err)[:300]}); "
            f"copy it again, or use another checkpoint"
        ) from None


def _load(checkpoint: Path, arguments: dict, in_memory: bool):
    from transformers import AutoTokenizer

    if not (checkpoint / "adapter_config.json").is_file():
        return load_model(str(checkpoint), arguments["model_type"], in_memory=in_memory)
    from peft import PeftModel

    model, _, seq2seq = load_model(_base_model(checkpoint, arguments), arguments["model_type"], in_memory=in_memory)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return PeftModel.from_pretrained(model, checkpoint), tokenizer, seq2seq


def _base_model(checkpoint: Path, arguments: dict) -> str:
    """The base model of a LoRA checkpoint: the one it was trained from where this machine has it, else the
    name its adapter config records (``--base_model_id``; a relative path is read from the working folder)."""
    try:
        return resolve_base_model(arguments["base_model"])
    except GrecError as err:
        recorded = read_json(checkpoint / "adapter_config.json").get("base_model_name_or_path")
        if not recorded or recorded == arguments["base_model"]:
            raise GrecError(f"{checkpoint}: its base model is not here ({err})") from None
        try:
            return resolve_base_model(recorded)
        except GrecError:
            raise GrecError(
                f"{checkpoint}: neither its training base model {arguments['base_model']} nor the base model its "
                f"adapter config names ({recorded}) is here; put the base model there, or train with --base_model_id"
            ) from None
