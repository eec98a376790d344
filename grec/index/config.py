"""``IndexConfig``: every flag of ``grec index``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.fields import neutral, unrecorded
from grec.base.io import check_output
from grec.base.registry import QUANTIZERS, load_plugins

DEDUPS = ("level", "sinkhorn")


@dataclass
class IndexConfig:
    """grec index: item text -> embeddings -> collision-free semantic IDs (e.g. <a_12><b_7><c_201><d_0>).

    Reads items.jsonl from a prepared folder; writes item_ids.json, embeddings.npy, sid_codes.npy,
    sid_map.json, quantizer.npz, report.json and settings.json to --out (docs/formats.md).
    Example: grec index --data data/ml-100k --out data/ml-100k/sid --method rqkmeans --levels 3 --codebook_size 256

    Args:
        data: a folder written by grec prepare (its items.jsonl is indexed).
        out: output folder; default <data>/sid.
        method: rqkmeans (residual k-means), rqvae (residual-quantised VAE, TIGER/LC-Rec), random or sequential (baselines), or a quantizer a --plugin registers in grec.base.registry.QUANTIZERS.
        levels: code levels before de-duplication.
        codebook_size: codes per level.
        balanced: rqkmeans: cap each code at ceil(items / codebook_size) items (even use, fewer collisions).
        dedup: level: append a code numbering items that share an ID (TIGER); sinkhorn: move colliding items to free last-level codes (LC-Rec).
        embeddings: a .npy file of item embeddings (rows in items.jsonl order) to use instead of running the encoder.
        collab_weight: mix in collaborative vectors (PPMI-SVD of item co-occurrence in train.jsonl) with this weight, 0 (text only) to 1 (co-occurrence only).
        collab_dim: dimensions of the collaborative vectors.
        encoder: a Hugging Face encoder folder (BERT, T5, or a causal LM); default: the packaged all-MiniLM-L6-v2.
        pooling: mean, last (last real token, for causal LMs) or cls.
        batch_size: items per encoder batch.
        max_length: encoder tokens per item text.
        kmeans_iters: Lloyd iterations per k-means level.
        rqvae_hidden: rqvae: encoder layer widths (the decoder mirrors them).
        rqvae_dim: rqvae: latent (code vector) dimension.
        rqvae_epochs: rqvae: training epochs.
        rqvae_lr: rqvae: learning rate (AdamW).
        rqvae_batch_size: rqvae: items per training batch.
        rqvae_beta: rqvae: commitment loss weight.
        seed: random seed (k-means, RQ-VAE, random IDs).
        update: give codes to items new in items.jsonl with the quantiser already in --out; existing items keep their codes.
        import_file: an LC-Rec / MiniOneRec NAME.index.json to take the semantic IDs from instead of computing them (items matched by id, or by title through the NAME.item.json beside it; items sharing an ID get a last code apart).
        export_format: also write the SID map in lcrec or minionerec layout (NAME.index.json, NAME.item.json; minionerec adds NAME.info.txt) to <out>/<format>/.
        device: torch device for the encoder and the RQ-VAE (cpu, cuda).
        cache_embeddings: reuse the encoder's output for the same item texts, encoder and settings from grec's cache ($GREC_CACHE/embeddings, default ~/.cache/grec): re-indexing with other quantizer settings skips the encoder.
        overwrite: replace an output folder built with different settings.
        plugin: Python files or modules to import first, so a quantizer they register can be named by --method.
    """

    data: str = "data/ml-100k"
    out: str | None = unrecorded(None)
    method: str = "rqkmeans"
    levels: int = 3
    codebook_size: int = 256
    balanced: bool = False
    dedup: str = "level"
    embeddings: str | None = None
    collab_weight: float = 0.0
    collab_dim: int = 64
    encoder: str | None = None
    pooling: str = "mean"
    batch_size: int = 64
    max_length: int = 128
    kmeans_iters: int = 25
    rqvae_hidden: list[int] | None = None
    rqvae_dim: int = 32
    rqvae_epochs: int = 200
    rqvae_lr: float = 1e-3
    rqvae_batch_size: int = 1024
    rqvae_beta: float = 0.25
    seed: int = 42
    update: bool = unrecorded(False)
    import_file: str | None = unrecorded(None)
    export_format: str | None = unrecorded(None)
    device: str = unrecorded("cpu")
    cache_embeddings: bool = neutral(True)
    overwrite: bool = neutral(False)
    plugin: list[str] = unrecorded(factory=list)

    def __post_init__(self) -> None:
        self.out = self.out or str(Path(self.data) / "sid")
        check_output(self.out, "--out")
        self.rqvae_hidden = list(self.rqvae_hidden) if self.rqvae_hidden else [512, 256, 128]
        load_plugins([self.plugin] if isinstance(self.plugin, str) else list(self.plugin))
        import grec.quantizers  # noqa: F401  (importing them registers grec's own quantizers)

        if self.method not in QUANTIZERS:
            raise GrecError(f"--method: unknown method {self.method!r}; choose one of {', '.join(QUANTIZERS.names())}")
        if self.dedup not in DEDUPS:
            raise GrecError(f"--dedup: expected one of {', '.join(DEDUPS)}, got {self.dedup!r}")
        if self.levels < 1:
            raise GrecError(f"--levels: must be at least 1, got {self.levels}")
        if self.codebook_size < 2:
            raise GrecError(f"--codebook_size: must be at least 2, got {self.codebook_size}")
        if self.levels + (self.dedup == "level") > 26:
            raise GrecError("--levels: at most 26 levels (tokens are named <a_..> to <z_..>)")
        if not 0.0 <= self.collab_weight <= 1.0:
            raise GrecError(
                f"--collab_weight: between 0 (text only) and 1 (co-occurrence only), got {self.collab_weight}"
            )
        if self.balanced and self.method != "rqkmeans":
            raise GrecError("--balanced: only applies to --method rqkmeans")
        for name in (
            "batch_size",
            "max_length",
            "kmeans_iters",
            "rqvae_dim",
            "rqvae_epochs",
            "rqvae_batch_size",
            "collab_dim",
        ):
            if getattr(self, name) < 1:
                raise GrecError(f"--{name}: must be at least 1")
        items = Path(self.data) / "items.jsonl"
        if not items.is_file():
            raise GrecError(f"{items}: file not found; run `grec prepare --out {self.data}` first or fix --data")
        if self.import_file is not None and not Path(self.import_file).is_file():
            raise GrecError(f"{self.import_file}: file not found (given as --import_file)")
        if self.import_file is not None and self.update:
            raise GrecError("--import_file and --update: choose one")
        if self.export_format not in (None, "lcrec", "minionerec"):
            raise GrecError(f"--export_format: expected lcrec or minionerec, got {self.export_format!r}")
        if self.embeddings is not None and not Path(self.embeddings).is_file():
            raise GrecError(f"{self.embeddings}: file not found (given as --embeddings)")
