"""The pretraining corpus on disk: documents split once into text files, tokenised into memory-mapped token files.

Nothing holds the corpus in RAM: documents stream from the source into ``train.txt`` /
``valid.txt`` / ``test.txt`` (one per line), each is tokenised in batches and appended to a flat
``.bin`` file of token ids (``bos? doc eos`` per document), and training reads blocks from a
``numpy.memmap`` of it. ``PackedBlocks`` cuts a token file into ``block_size`` inputs whose
targets are the next tokens: block ``i`` reads tokens ``[i*B, i*B + B]``, so every token after
the first is a target exactly once, documents run across block borders, and there is no padding.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch

from grec.base.errors import GrecError
from grec.base.io import atomic_open, read_json, write_json
from grec.base.progress import progress

SPLITS = ("train", "valid", "test")


PACKAGED = "clothing-reviews"


def corpus_files(data: str | None) -> list[Path] | None:
    """The files of ``--data`` (comma-separated; a prepare folder stands for its items.jsonl), or
    None for the packaged clothing reviews."""
    if data in (None, "", PACKAGED):
        return None
    files = []
    for name in (p.strip() for p in data.split(",") if p.strip()):
        path = Path(name)
        if path.is_dir():
            if not (path / "items.jsonl").is_file():
                raise GrecError(f"{path}: a folder given as --data must be a grec prepare folder (items.jsonl missing)")
            path = path / "items.jsonl"
        elif not path.is_file():
            raise GrecError(f"{path}: corpus file not found (given as --data)")
        files.append(path)
    return files


def documents(data: str | None, fields: list[str]) -> Iterator[str]:
    """Texts of ``--data``: the packaged clothing reviews (default), a prepared folder's item
    texts, or text / JSON-lines files (comma-separated), one document per line or record."""
    from grec.tokenizer import corpus_lines

    files = corpus_files(data)
    if files is None:
        import pandas as pd

        from grec.base.assets import dataset_file

        table = pd.read_parquet(dataset_file(PACKAGED), columns=["Title", "Review Text"])
        for title, text in table.itertuples(index=False):
            parts = [str(p).strip() for p in (title, text) if isinstance(p, str) and p.strip()]
            if parts:
                yield " ".join(". ".join(parts).split())
        return
    yield from corpus_lines([str(f) for f in files], fields)


def source_fingerprint(data: str | None) -> list:
    """What identifies the corpus: names, sizes and modification times of its files."""
    files = corpus_files(data)
    if files is None:
        return [[PACKAGED]]
    return [[str(f), f.stat().st_size, int(f.stat().st_mtime)] for f in files]


def split_documents(
    docs: Iterator[str], folder: Path, fractions: tuple[float, float], seed: int, max_documents: int
) -> dict[str, int]:
    """Write each document to one of train/valid/test.txt (a seeded draw per document); return counts."""
    rng = random.Random(seed)
    counts = dict.fromkeys(SPLITS, 0)
    with ExitStack() as stack:
        files = {
            name: stack.enter_context(atomic_open(folder / f"{name}.txt", "w", encoding="utf-8")) for name in SPLITS
        }
        for k, doc in enumerate(progress(docs, desc="lm_pretrain: split documents", unit=" docs")):
            if 0 <= max_documents <= k:
                break
            draw = rng.random()
            name = "valid" if draw < fractions[0] else "test" if draw < sum(fractions) else "train"
            files[name].write(doc + "\n")
            counts[name] += 1
    for name in SPLITS:
        if counts[name] == 0:
            raise GrecError(
                f"lm_pretrain: the {name} split got no documents ({sum(counts.values())} in all); "
                f"use a larger corpus or change valid_fraction / test_fraction in --data_args"
            )
    return counts


def token_dtype(vocab_size: int):
    return np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32


def tokenize_file(text_file: Path, out: Path, tokenizer, batch: int = 1000) -> int:
    """Append ``bos? ids eos`` per line of ``text_file`` to the token file ``out``; return the token count."""
    dtype = token_dtype(len(tokenizer))
    head = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    tail = [tokenizer.eos_token_id]
    count = 0

    def flush(lines: list[str], handle) -> int:
        ids = tokenizer(lines, add_special_tokens=False)["input_ids"]
        flat = np.fromiter((t for seq in ids for t in (*head, *seq, *tail)), dtype=np.int64)
        handle.write(flat.astype(dtype).tobytes())
        return len(flat)

    with open(text_file, encoding="utf-8") as source, atomic_open(out, "wb") as handle:
        lines: list[str] = []
        for line in progress(source, desc=f"lm_pretrain: tokenise {text_file.name}", unit=" docs"):
            lines.append(line.rstrip("\n"))
            if len(lines) == batch:
                count += flush(lines, handle)
                lines = []
        if lines:
            count += flush(lines, handle)
    return count


def _fingerprint(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def is_built(folder: Path, key: dict) -> bool:
    """Whether ``folder`` holds token files made from the corpus and settings ``key``."""
    meta_file = folder / "meta.json"
    return meta_file.is_file() and read_json(meta_file).get("fingerprint") == _fingerprint(key)


def build_token_files(
    folder: Path, key: dict, docs: Iterator[str], tokenizer_for, fractions, seed: int, max_documents: int
) -> dict:
    """Split and tokenise into ``folder`` unless ``meta.json`` there was made with the same ``key``.

    ``tokenizer_for(train_txt, fresh)`` returns the tokenizer (it may train one on the training
    text; ``fresh``: the split changed, so a tokenizer trained before is stale).
    Returns the meta: the key, document and token counts per split, and the token dtype.
    """
    meta_file = folder / "meta.json"
    fingerprint = _fingerprint(key)
    if is_built(folder, key):
        meta = read_json(meta_file)
        return {**meta, "tokenizer": tokenizer_for(folder / "train.txt", False)}
    folder.mkdir(parents=True, exist_ok=True)
    meta_file.unlink(missing_ok=True)
    docs_per_split = split_documents(docs, folder, fractions, seed, max_documents)
    tokenizer = tokenizer_for(folder / "train.txt", True)
    tokens = {name: tokenize_file(folder / f"{name}.txt", folder / f"{name}.bin", tokenizer) for name in SPLITS}
    meta = {
        "fingerprint": fingerprint,
        "key": key,
        "documents": docs_per_split,
        "tokens": tokens,
        "dtype": np.dtype(token_dtype(len(tokenizer))).name,
    }
    write_json(meta_file, meta)
    return {**meta, "tokenizer": tokenizer}


class PackedBlocks(torch.utils.data.Dataset):
    """Blocks of ``block_size`` input tokens from a token file; item ``i`` is tokens ``[i*B, i*B + B]``."""

    def __init__(self, path: Path, dtype: str, block_size: int):
        self.path, self.dtype, self.block_size = path, dtype, block_size
        self.size = path.stat().st_size // np.dtype(dtype).itemsize
        self._tokens = None

    @property
    def tokens(self) -> np.ndarray:
        if self._tokens is None:  # opened lazily, so data-loader workers each map the file themselves
            self._tokens = np.memmap(self.path, dtype=self.dtype, mode="r")
        return self._tokens

    def __len__(self) -> int:
        return max(0, (self.size - 1) // self.block_size)

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = index * self.block_size
        return torch.from_numpy(self.tokens[start : start + self.block_size + 1].astype(np.int64))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tokens": None}


def collate_blocks(rows: list[torch.Tensor]) -> dict:
    """Inputs are a block's first B tokens, targets its last B (already shifted: ``shift_labels``)."""
    blocks = torch.stack(rows)
    targets = blocks[:, 1:].contiguous()
    inputs = blocks[:, :-1].contiguous()
    return {"input_ids": inputs, "attention_mask": torch.ones_like(inputs), "labels": targets, "shift_labels": targets}
