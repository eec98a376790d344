"""``grec export``: merge a LoRA checkpoint into its base model; a standalone folder inference loads without peft."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.sid import SidMap
from grec.lm.checkpoint import check_checkpoint, load_trained
from grec.lm.serving_files import copy_serving_files


@dataclass
class ExportConfig:
    """grec export: merge LoRA adapters into the base model (merge_and_unload) and save model, tokenizer and SID map.

    Example: grec export --checkpoint outputs/lcrec/best --out outputs/lcrec/merged

    Args:
        checkpoint: a best/ or last/ folder written by grec train.
        out: folder for the merged model.
    """

    checkpoint: str = ""
    out: str = ""

    def __post_init__(self) -> None:
        check_checkpoint(self.checkpoint)
        if not self.out:
            raise GrecError("--out: required")


def export(cfg: ExportConfig) -> Path:
    """Write the merged model to ``cfg.out`` (atomically: a temporary folder renamed at the end)."""
    model, tokenizer, _ = load_trained(cfg.checkpoint)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    out = Path(cfg.out)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if (Path(cfg.checkpoint) / "sid_map.json").is_file():
        SidMap.load(cfg.checkpoint).save(tmp)
    copy_serving_files(Path(cfg.checkpoint), tmp)
    shutil.copy(Path(cfg.checkpoint) / "training_state.json", tmp / "training_state.json")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
