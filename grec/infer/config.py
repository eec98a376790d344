"""``InferConfig``: every flag of ``inference.py`` / ``grec infer`` (BIGRec's names where they exist)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from grec.base.config import check_sample
from grec.base.errors import GrecError
from grec.base.fields import check_applicable, neutral, only
from grec.base.files import SID_MAP
from grec.base.io import check_output
from grec.lm.checkpoint import check_checkpoint
from grec.lm.serving_files import CATALOG

logger = logging.getLogger("grec")

METHODS = ("vectorised", "hf")
# from grounding alone (0) to popularity alone (inf): the tuned fusion is never worse than either on validation
GAMMA_GRID = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, float("inf")]


@dataclass
class InferConfig:
    """grec infer: rank catalog items for each test record with SID-constrained beam search.

    Every recommended item exists in the catalog. Writes the records with "predict" (ranked item
    ids), "predict_scores" and "predict_sids" to --result_json_data (.json: a JSON list as BIGRec writes it;
    .jsonl: JSON lines). Example:
    python inference.py --checkpoint outputs/lcrec/best --test_data_path data/ml-100k/records/sid/test.json
    --result_json_data outputs/lcrec/test.jsonl --num_beams 20

    Flags marked "sid mode", "title mode" or "grounded" (title mode with --constrained false) apply
    there only; giving one in another mode is an error.

    Args:
        checkpoint: a best/ or last/ folder from train.py, or a merged folder from grec export.
        lora_weights: BIGRec's name for --checkpoint when it holds LoRA adapters.
        base_model: accepted for BIGRec scripts; the base model recorded in the checkpoint is used, and a different one is an error.
        test_data_path: records file (grec records) to rank items for.
        result_json_data: output file: a .json name gets a JSON list (BIGRec's layout), any other (.jsonl) JSON lines; evaluate reads both.
        num_beams: beams per user.
        num_return_sequences: items returned per user; default num_beams.
        batch_size: users per forward pass.
        cutoff_len: most prompt tokens (the oldest are cut); default: the value the checkpoint was trained with, which is the only one accepted (a model ranks prompts cut as in training).
        exclude_history: never recommend an item of the record's history, i.e. the items of the prepared split row: the last --max_history (prepare's, default 50) items before the target, not older ones (the default, as popularity, SASRec and serve do; each result record says which, and evaluate marks tables that mix the two); with --method hf, which cannot, the default is false.
        method: sid mode: vectorised (grec's batched beam search) or hf (model.generate with prefix_allowed_tokens_fn).
        sid: sid mode: a SID folder to check against the checkpoint's own map (they must be identical).
        sample: rank only the first N records; -1 all.
        device: cpu, cuda, or auto.
        mode: sid (generate semantic IDs), title (generate titles, BIGRec) or auto: sid when the checkpoint has a sid_map.json, else title (so BIGRec's inference command runs unchanged).
        items: title mode: the items.jsonl whose titles make up the catalog; default: the one the checkpoint carries.
        constrained: title mode: generate only catalog titles (a token trie); false: generate freely and ground each title to items by L2 distance of text embeddings.
        encoder: grounded: the grounding encoder folder (default: the packaged MiniLM).
        ci_score: grounded: a JSON file of item id -> collaborative or popularity score, fused into grounding.
        ci_gamma: grounded: weight of --ci_score: distance x (1 + score)^-gamma; inf ranks by the score alone (distance breaks ties).
        cf_model: title mode: an item-kNN model (grec popularity --cf_model): its per-user collaborative scores are fused into grounding, or with --constrained true steer the title search (D3's text-free assistant).
        cf_delta: title mode: weight of --cf_model. Grounded: distance x (1 + cf)^-delta (inf: the collaborative score alone). Constrained: each title's beam score gains delta x log(its item's score), spread over its tokens.
        tune_gamma: grounded: choose ci_gamma (and cf_delta, with --cf_model) from the grids by NDCG@10 on --val_data_path (BIGRec tunes gamma on validation), history excluded as --exclude_history excludes it from the test ranking.
        gamma_grid: grounded: candidate gammas for --tune_gamma; default 0 (grounding alone), 0.25 ... 16 and inf (the score alone), so the choice is never worse than either ingredient on validation.
        delta_grid: grounded: candidate deltas for --tune_gamma with --cf_model; default as gamma_grid.
        val_data_path: grounded: validation records for --tune_gamma.
        val_sample: grounded: tune on a seeded random subset of this many validation records; -1 uses all.
        keep_cpu_memory: on a CPU, keep freed memory in the process between batches instead of returning it to the system each time (glibc): faster, higher peak memory (grec/lm/cpu_memory.py).
    """

    checkpoint: str | None = None
    lora_weights: str | None = None
    base_model: str | None = None
    test_data_path: str = ""
    result_json_data: str = ""
    num_beams: int = 20
    num_return_sequences: int | None = None
    batch_size: int = 16
    cutoff_len: int | None = None
    exclude_history: bool | None = None
    method: str = only("vectorised", mode=("sid",))
    sid: str | None = only(None, mode=("sid",))
    sample: int = -1
    device: str = "auto"
    mode: str = "auto"
    items: str | None = only(None, mode=("title",))
    constrained: bool = only(True, mode=("title",))
    encoder: str | None = only(None, mode=("title",), constrained=(False,))
    ci_score: str | None = only(None, mode=("title",), constrained=(False,))
    ci_gamma: float = only(0.0, mode=("title",), constrained=(False,))
    cf_model: str | None = only(None, mode=("title",))
    cf_delta: float = only(0.0, mode=("title",))
    tune_gamma: bool = only(False, mode=("title",), constrained=(False,))
    gamma_grid: list[float] | None = only(None, mode=("title",), constrained=(False,))
    delta_grid: list[float] | None = only(None, mode=("title",), constrained=(False,))
    val_data_path: str | None = only(None, mode=("title",), constrained=(False,))
    val_sample: int = only(-1, mode=("title",), constrained=(False,))
    keep_cpu_memory: bool = neutral(True)

    def __post_init__(self) -> None:
        for name in ("sample", "val_sample"):
            check_sample(name, getattr(self, name))
        self.checkpoint = self.checkpoint or self.lora_weights
        if not self.checkpoint:
            raise GrecError("--checkpoint (or --lora_weights): required")
        if self.mode not in ("auto", "sid", "title"):
            raise GrecError(f"--mode: expected auto, sid or title, got {self.mode!r}")
        self._trained_cutoff(check_checkpoint(self.checkpoint))
        if self.mode == "auto":
            self.mode = "sid" if (Path(self.checkpoint) / SID_MAP).is_file() else "title"
        if self.mode == "title" and self.items is None and (Path(self.checkpoint) / CATALOG).is_file():
            self.items = str(Path(self.checkpoint) / CATALOG)
        if self.mode == "sid" and not (Path(self.checkpoint) / SID_MAP).is_file():
            raise GrecError(
                f"{self.checkpoint}: no sid_map.json; give a checkpoint trained with --sid, or --mode title"
            )
        check_applicable(self)  # a flag of another mode would be silently ignored
        if self.mode == "title" and (self.items is None or not Path(self.items).is_file()):
            raise GrecError(
                "--items: title mode needs the items.jsonl whose titles form the catalog (this checkpoint carries none)"
            )
        self.gamma_grid = [float(g) for g in (self.gamma_grid or GAMMA_GRID)]
        self.delta_grid = [float(d) for d in (self.delta_grid or GAMMA_GRID)]
        if self.tune_gamma and (self.ci_score is None and self.cf_model is None or self.val_data_path is None):
            raise GrecError(
                "--tune_gamma: needs --ci_score FILE and/or --cf_model FILE, and --val_data_path FILE "
                "(and --mode title --constrained false)"
            )
        if self.constrained and self.mode == "title" and math.isinf(self.cf_delta):
            raise GrecError("--cf_delta: inf applies only to grounding (--constrained false); give a finite weight")
        for flag in ("ci_score", "cf_model"):
            if getattr(self, flag) is not None and not Path(getattr(self, flag)).is_file():
                raise GrecError(f"{getattr(self, flag)}: file not found (given as --{flag})")
        if not Path(self.test_data_path).is_file():
            raise GrecError(f"{self.test_data_path}: records file not found (given as --test_data_path)")
        if not self.result_json_data:
            raise GrecError("--result_json_data: required (where the ranked items go)")
        check_output(self.result_json_data, "--result_json_data", "file")
        self.num_return_sequences = self.num_return_sequences or self.num_beams
        grounded = self.mode == "title" and not self.constrained  # grounding ranks the whole catalog
        if self.num_return_sequences > self.num_beams and not grounded:
            raise GrecError(f"--num_return_sequences {self.num_return_sequences} > --num_beams {self.num_beams}")
        if self.method not in METHODS:
            raise GrecError(f"--method: expected one of {', '.join(METHODS)}, got {self.method!r}")
        if self.exclude_history is None:
            self.exclude_history = self.method != "hf"
        if self.method == "hf" and self.exclude_history:
            raise GrecError("--exclude_history needs --method vectorised (generate cannot close seen items)")
        for name in ("num_beams", "batch_size"):
            if getattr(self, name) < 1:
                raise GrecError(f"--{name}: must be at least 1")
        if self.device == "auto":
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def _trained_cutoff(self, arguments: dict) -> None:
        """``cutoff_len`` from the checkpoint's training arguments; another value given is refused."""
        trained = arguments.get("cutoff_len")
        if self.cutoff_len is None:
            if trained is None:
                logger.warning("%s records no --cutoff_len; prompts are cut at 512 tokens", self.checkpoint)
            self.cutoff_len = trained or 512
        elif trained is not None and self.cutoff_len != trained:
            raise GrecError(
                f"--cutoff_len {self.cutoff_len}: {self.checkpoint} was trained with --cutoff_len {trained}, and a "
                f"model ranks prompts cut as in training; drop the flag (infer reads it from the checkpoint)"
            )
        elif self.cutoff_len < 1:
            raise GrecError("--cutoff_len: must be at least 1")
