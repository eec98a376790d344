"""``grec export``: merge a LoRA checkpoint into its base model; a standalone folder with a model card,
optionally pushed to the Hugging Face hub."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.fields import neutral
from grec.base.files import SID_MAP, TRAINING_STATE
from grec.base.folders import StagedDir, publishes
from grec.base.io import check_output, read_json
from grec.base.sid import SidMap
from grec.lm.checkpoint import check_checkpoint, load_trained
from grec.lm.serving_files import copy_serving_files
from grec.train.card import model_card


@dataclass
class ExportConfig:
    """grec export: merge LoRA adapters into the base model (merge_and_unload) and save model, tokenizer, SID map,
    the checkpoint's catalog and prompt settings, and a model card (README.md).

    Example: grec export --checkpoint outputs/lcrec/best --out outputs/lcrec/merged --metrics outputs/lcrec/results/metrics.json

    Args:
        checkpoint: a best/ or last/ folder written by grec train.
        out: folder for the merged model.
        metrics: a metrics.json written by grec evaluate, tabled in the model card.
        base_model_id: the base model's name for the model card (default: the one the adapter config records).
        push_to_hub: a hub repository (user/name) to upload the exported folder to (needs a hub login).
        private: create the hub repository as private.
        overwrite: replace a --out folder that is not empty (an earlier export, or anything else); without it such a folder is refused.
    """

    checkpoint: str = ""
    out: str = ""
    metrics: str | None = None
    base_model_id: str | None = None
    push_to_hub: str | None = None
    private: bool = False
    overwrite: bool = neutral(False)

    def __post_init__(self) -> None:
        check_checkpoint(self.checkpoint)
        if not self.out:
            raise GrecError("--out: required")
        check_output(self.out, "--out")
        checkpoint, out = Path(self.checkpoint).resolve(), Path(self.out).resolve()
        if out == checkpoint or out in checkpoint.parents or checkpoint in out.parents:
            raise GrecError(
                f"--out {self.out}: holds the checkpoint being exported, or lies inside it ({self.checkpoint}); "
                f"choose a folder outside it (e.g. {checkpoint.parent / (checkpoint.name + '-merged')})"
            )
        if self.metrics is not None and not Path(self.metrics).is_file():
            raise GrecError(f"{self.metrics}: file not found (given as --metrics; grec evaluate writes metrics.json)")
        if self.push_to_hub is not None and self.push_to_hub.count("/") != 1:
            raise GrecError(f"--push_to_hub: expected a repository id such as user/name, got {self.push_to_hub!r}")


def _base_name(cfg: ExportConfig) -> str:
    checkpoint = Path(cfg.checkpoint)
    if cfg.base_model_id:
        return cfg.base_model_id
    if (checkpoint / "adapter_config.json").is_file():
        return read_json(checkpoint / "adapter_config.json").get("base_model_name_or_path") or "unknown"
    return read_json(checkpoint / TRAINING_STATE)["arguments"].get("base_model", "unknown")


@publishes()
def export(cfg: ExportConfig) -> Path:
    """Write the merged model to ``cfg.out``, then push it. The folder is built beside ``cfg.out`` and
    replaces it whole at the end: a kill at any point leaves the previous export or the new one."""
    out = Path(cfg.out)
    if out.is_dir() and any(out.iterdir()) and not cfg.overwrite:
        raise GrecError(
            f"--out {cfg.out}: not empty; pass --overwrite to replace it (the whole folder), or choose another --out"
        )
    model, tokenizer, _ = load_trained(cfg.checkpoint)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    with StagedDir(out, "README.md", merge=False) as tmp:
        _write_export(cfg, model, tokenizer, tmp, out.name)
    if cfg.push_to_hub:
        push(out, cfg.push_to_hub, cfg.private)
    return out


def _write_export(cfg: ExportConfig, model, tokenizer, tmp: Path, name: str) -> None:
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if (Path(cfg.checkpoint) / SID_MAP).is_file():
        SidMap.load(cfg.checkpoint).save(tmp)
    copy_serving_files(Path(cfg.checkpoint), tmp)
    shutil.copy(Path(cfg.checkpoint) / TRAINING_STATE, tmp / TRAINING_STATE)
    metrics = read_json(cfg.metrics) if cfg.metrics else None
    (tmp / "README.md").write_text(model_card(tmp, cfg.push_to_hub or name, _base_name(cfg), metrics))


def push(folder: Path, repo: str, private: bool = False) -> str:
    """Upload ``folder`` to the hub repository ``repo`` (created if missing); return the commit's address."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo, private=private, exist_ok=True)
    return api.upload_folder(repo_id=repo, folder_path=str(folder), commit_message="grec export").commit_url
