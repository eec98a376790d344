"""Task ``lm_pretrain``: a causal LM pretrained (from a config) or further pretrained (``--base_model``) on text.

The corpus is split by document, tokenised once into memory-mapped token files under
``token_dir`` (reused while the corpus and settings are unchanged) and packed into
``block_size`` blocks without padding. A tokenizer is trained on the training documents with
``grec tokenizer`` unless one is given (``tokenizer``) or the base model brings its own.
Validation perplexity each epoch picks ``best/``; checkpoints are plain Hugging Face model
folders that ``grec generate`` and ``grec train --base_model`` load.
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from grec.base.errors import GrecError
from grec.base.registry import TASKS
from grec.tasks.base import Task, parse_args
from grec.tasks.lm_data import (
    SPLITS,
    PackedBlocks,
    build_token_files,
    collate_blocks,
    documents,
    is_built,
    source_fingerprint,
)

logger = logging.getLogger("grec")


@dataclass
class LmData:
    """data_args of lm_pretrain: block_size (tokens per training sequence), tokenizer (a Hugging Face tokenizer folder; empty: the base model's, or one trained on the training documents), vocab_size, tokenizer_type (unigram or bpe) and tokenizer_sample (documents sampled to train it; 0 all) for a trained tokenizer, fields (JSON-lines fields holding text), valid_fraction and test_fraction (documents held out), max_documents (the first N documents of the corpus, -1 all), token_dir (where split texts and token files go; default OUTPUT_DIR/tokens)."""

    block_size: int = 128
    tokenizer: str = ""
    vocab_size: int = 4000
    tokenizer_type: str = "unigram"
    tokenizer_sample: int = 1_000_000
    fields: list[str] = field(default_factory=lambda: ["text"])
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    max_documents: int = -1
    token_dir: str = ""

    def __post_init__(self) -> None:
        if self.block_size < 2:
            raise GrecError(f"--data_args block_size: must be at least 2, got {self.block_size}")
        if not (
            0 < self.valid_fraction < 1 and 0 < self.test_fraction < 1 and self.valid_fraction + self.test_fraction < 1
        ):
            raise GrecError(
                f"--data_args valid_fraction / test_fraction: each in (0, 1) with a sum below 1, got "
                f"{self.valid_fraction} and {self.test_fraction}"
            )
        if self.tokenizer and not Path(self.tokenizer, "tokenizer_config.json").is_file():
            raise GrecError(
                f"{self.tokenizer}: not a Hugging Face tokenizer folder (no tokenizer_config.json); "
                f"make one with grec tokenizer"
            )


@TASKS.register("lm_pretrain")
class LmPretrainTask(Task):
    default_model = "llama"
    metric, higher_is_better = "perplexity", False

    def __init__(self, cfg):
        super().__init__(cfg)
        if cfg.base_model and not cfg.model:
            self.model_name = "causal_lm"
        self.args = parse_args(LmData, cfg.data_args, "--data_args")
        folder = Path(self.args.token_dir or Path(cfg.output_dir) / "tokens")
        fractions, limit = (self.args.valid_fraction, self.args.test_fraction), self.args.max_documents
        key = {
            "source": source_fingerprint(cfg.data),
            "fields": self.args.fields,
            "seed": cfg.seed,
            "fractions": list(fractions),
            "max_documents": limit,
            "tokenizer": self._tokenizer_key(),
        }
        docs = documents(cfg.data, self.args.fields)
        build = partial(build_token_files, folder, key, docs, self._tokenizer, fractions, cfg.seed, limit)
        meta = _once(build, folder, key)
        self.tokenizer, self.meta = meta.pop("tokenizer"), meta
        self.splits = {
            name: PackedBlocks(folder / f"{name}.bin", meta["dtype"], self.args.block_size) for name in SPLITS
        }
        for name, blocks in self.splits.items():
            if len(blocks) == 0:
                raise GrecError(
                    f"lm_pretrain: the {name} split has {meta['tokens'][name]} tokens, fewer than one "
                    f"block of {self.args.block_size} + 1; lower block_size or use more text"
                )
        self.train_set = self.splits["train"]  # validation is the perplexity scorer, not the Trainer's loop

    def _tokenizer_key(self):
        if self.args.tokenizer:
            return str(Path(self.args.tokenizer).resolve())
        if self.cfg.base_model:
            return self.cfg.base_model
        return {"train": self.args.vocab_size, "type": self.args.tokenizer_type, "sample": self.args.tokenizer_sample}

    def _tokenizer(self, train_text: Path, fresh: bool):
        tokenizer = self._load_tokenizer(train_text, fresh)
        if tokenizer.eos_token_id is None:
            raise GrecError(
                f"the tokenizer ({self._tokenizer_key()}) has no end-of-text token; packing separates "
                f"documents with it. Give one with an eos token (grec tokenizer makes one)"
            )
        return tokenizer

    def _load_tokenizer(self, train_text: Path, fresh: bool):
        from transformers import AutoTokenizer

        if self.args.tokenizer:
            return AutoTokenizer.from_pretrained(self.args.tokenizer)
        if self.cfg.base_model:
            from grec.lm.loading import resolve_base_model

            return AutoTokenizer.from_pretrained(resolve_base_model(self.cfg.base_model, tokenizer_only=True))
        from grec.tokenizer import TokenizerConfig, train_tokenizer

        folder = train_text.parent / "tokenizer"
        if fresh or not (folder / "tokenizer_config.json").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            settings = TokenizerConfig(
                corpus=[str(train_text)],
                vocab_size=self.args.vocab_size,
                style="llama",
                model_type=self.args.tokenizer_type,
                max_sentences=self.args.tokenizer_sample,
                out=str(folder),
            )
            return train_tokenizer(settings)
        return AutoTokenizer.from_pretrained(folder)

    def shapes(self) -> dict:
        t = self.tokenizer
        return {
            "vocab_size": len(t),
            "bos_token_id": t.bos_token_id,
            "eos_token_id": t.eos_token_id,
            "pad_token_id": t.pad_token_id,
        }

    def build_model(self):
        from grec.models.lm import positions

        model = super().build_model()
        limit = positions(model)
        if limit is not None and self.args.block_size > limit:
            raise GrecError(
                f"--data_args block_size {self.args.block_size} is larger than the model's {limit} positions; "
                f"lower block_size"
                + ("" if self.cfg.base_model else " or raise max_position_embeddings in --model_args")
            )
        vocab = len(self.tokenizer)
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(model.config, name, None)
            for token in value if isinstance(value, list) else [value]:
                if token is not None and not 0 <= token < vocab:
                    raise GrecError(
                        f"the model config's {name} is {token}, but the tokenizer has {vocab} tokens; "
                        f"use the tokenizer the model was trained with (--data_args tokenizer)"
                    )
        return model

    def extra(self) -> dict:
        return {"block_size": self.args.block_size, "documents": self.meta["documents"], "tokens": self.meta["tokens"]}

    def save_extra(self, folder) -> None:
        super().save_extra(folder)
        self.tokenizer.save_pretrained(folder)

    def collate(self, rows: list) -> dict:
        return collate_blocks(rows)

    @torch.no_grad()
    def evaluate(self, model, split: str) -> dict[str, float]:
        """Mean next-token cross-entropy over every target token of the split, and its exponential."""
        blocks = self.splits[split]
        device = next(model.parameters()).device
        # keep one batch's logits near 256 MB whatever eval_batch_size says
        rows = max(1, min(self.cfg.eval_batch_size, 2**26 // (self.args.block_size * len(self.tokenizer))))
        total, count = 0.0, 0
        for start in range(0, len(blocks), rows):
            batch = collate_blocks([blocks[k] for k in range(start, min(start + rows, len(blocks)))])
            logits = model(input_ids=batch["input_ids"].to(device)).logits.float()
            targets = batch["shift_labels"].to(device)
            total += torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum").item()
            count += targets.numel()
        loss = total / count
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}


def _once(build, folder: Path, key: dict):
    """Run ``build``; with several processes the first local one builds and the others wait for its files."""
    import os
    import time

    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        return build()
    waited = 0
    while not is_built(folder, key):  # if the builder fails, the launcher stops this process too
        if waited == 0:
            logger.info("lm_pretrain: waiting for process 0 to tokenise the corpus into %s", folder)
        time.sleep(1)
        waited += 1
    return build()
