"""Item text -> embeddings with any Hugging Face encoder: batched, pooled, L2-normalised.

Encoder-only models (BERT, MiniLM) and T5 encoders pool the last hidden state by the mean over
the attention mask; causal LMs (LLaMA, Qwen: BIGRec and LC-Rec embed items this way) can pool
the mean or the last real token. The default encoder is the packaged all-MiniLM-L6-v2.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from grec.base import assets
from grec.base.errors import GrecError
from grec.base.io import cache_dir
from grec.base.progress import progress

logger = logging.getLogger("grec")
POOLINGS = ("mean", "last", "cls")


_LAST: dict = {}  # the last encoder loaded, by (folder, device): grounding embeds batch after batch


def load_encoder(path: str | Path | None, device: str = "cpu"):
    """Tokenizer and encoder module for ``path`` (default: the packaged MiniLM); returns (tok, model, kind).

    The last one loaded is kept, so that embedding batch after batch loads the encoder once."""
    folder = Path(path) if path is not None else assets.minilm_dir()
    config = folder / "config.json"
    key = (str(folder.resolve()), str(device), config.stat().st_mtime_ns if config.is_file() else 0)
    if key not in _LAST:
        _LAST.clear()
        _LAST[key] = _load_encoder(folder, device)
    return _LAST[key]


def _load_encoder(folder: Path, device: str):
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    if not folder.is_dir():
        raise GrecError(f"{folder}: encoder folder not found; --encoder takes a Hugging Face model folder")
    config = AutoConfig.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if getattr(config, "is_encoder_decoder", False):
        from transformers import T5EncoderModel

        model, kind = T5EncoderModel.from_pretrained(folder), "encoder"
    else:
        model = AutoModel.from_pretrained(folder)
        kind = (
            "causal" if getattr(config, "is_decoder", False) or "CausalLM" in str(config.architectures) else "encoder"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model.to(device).eval(), kind


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool ``batch x length x dim`` states over the positions where ``mask`` is 1."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        # the last real token, whichever side the padding is on
        last = mask.shape[1] - 1 - mask.flip(1).argmax(1)
        return hidden[torch.arange(len(hidden)), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


def _cache_file(texts: list[str], folder: Path, settings: tuple) -> Path:
    digest = hashlib.sha256(repr((str(folder.resolve()), settings, torch.__version__)).encode())
    for file in sorted(folder.iterdir()):
        if file.is_file():
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(len(texts).to_bytes(8, "little"))
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return cache_dir() / "embeddings" / f"{digest.hexdigest()[:32]}.npy"


def embed_texts(
    texts: list[str],
    encoder: str | Path | None = None,
    pooling: str = "mean",
    batch_size: int = 64,
    max_length: int = 128,
    device: str = "cpu",
    cache: bool = True,
) -> np.ndarray:
    """Embed ``texts``; returns float32 ``len(texts) x dim`` with unit-norm rows (from the cache when
    the same texts were embedded alike before, unless ``cache`` is false)."""
    if pooling not in POOLINGS:
        raise GrecError(f"--pooling: expected one of {', '.join(POOLINGS)}, got {pooling!r}")
    folder = Path(encoder) if encoder is not None else assets.minilm_dir()
    if not cache or not folder.is_dir():
        return _embed(texts, folder, pooling, batch_size, max_length, device)
    path = _cache_file(texts, folder, (pooling, batch_size, max_length, str(device)))
    if path.is_file():
        cached = np.load(path)
        if cached.ndim == 2 and len(cached) == len(texts):
            logger.info("embeddings of %d texts taken from the cache (%s)", len(texts), path)
            return cached
    out = _embed(texts, folder, pooling, batch_size, max_length, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}.npy")
    np.save(tmp, out)
    os.replace(tmp, path)
    return out


@torch.no_grad()
def _embed(texts: list[str], folder: Path, pooling: str, batch_size: int, max_length: int, device: str) -> np.ndarray:
    tokenizer, model, _ = load_encoder(folder, device)
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths batch together
    out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    for start in progress(range(0, len(texts), batch_size), desc="index: embed items", unit="batch"):
        rows = order[start : start + batch_size]
        batch = tokenizer(
            [texts[i] for i in rows], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        ).to(device)
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        vectors = torch.nn.functional.normalize(pool(hidden, batch["attention_mask"], pooling).float(), dim=-1)
        out[rows] = vectors.cpu().numpy()
    return out
