"""Teach a Hugging Face tokenizer and model the semantic-ID tokens.

Every SID token (``<a_12>``) becomes an added token, so no tokenizer (BPE, WordPiece,
sentencepiece) ever splits it. The model's input and output embeddings grow to the new
vocabulary (tied or not); new rows start at the mean of the existing rows or at the mean
embedding of the titles of the items that use the token. Rows that already existed are never
touched, so a checkpoint that knows some SID tokens keeps what it learned for them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from grec.base.errors import GrecError
from grec.base.sid.sidmap import TOKEN, SidMap, level_name, token
from grec.base.templates import item_text

logger = logging.getLogger("grec")
INITS = ("mean", "text", "spread")


@dataclass
class SidTokens:
    """Token ids of a SID map in one tokenizer.

    ``item_ids[k]`` holds the token ids of item k's SID (rows follow ``sid_map.item_ids``);
    ``level_ids[l][c]`` is the token id of code c on level l (-1 for codes no item uses).
    ``added`` lists the token strings this call added.
    """

    item_ids: np.ndarray
    level_ids: list[np.ndarray]
    added: list[str]

    def level_range(self, level: int) -> tuple[int, int]:
        """Smallest and largest token id on ``level`` (contiguous when added in one go)."""
        used = self.level_ids[level][self.level_ids[level] >= 0]
        return int(used.min()), int(used.max())


def _check_clashes(tokenizer, vocabulary: list[str]) -> None:
    """A SID-shaped token already in the base vocabulary means something else there: refuse."""
    vocab, added = tokenizer.get_vocab(), tokenizer.get_added_vocab()
    clashes = [t for t in vocabulary if t in vocab and t not in added]
    if clashes:
        raise GrecError(
            f"the tokenizer already has {len(clashes)} SID-shaped tokens in its own vocabulary (e.g. {clashes[0]!r}) "
            f"with another meaning; SID tokens must be new. Use a tokenizer without them"
        )


def sid_token_ids(tokenizer, sid_map: SidMap) -> SidTokens:
    """Token ids of a map's tokens in a tokenizer that already holds them (a trained checkpoint's)."""
    sizes = sid_map.level_sizes()
    vocab = tokenizer.get_vocab()
    level_ids = []
    for level, size in enumerate(sizes):
        ids = np.full(size, -1, dtype=np.int64)
        for code in np.unique(sid_map.codes[:, level]).tolist():
            if token(level, code) not in vocab:
                raise GrecError(
                    f"the tokenizer has no token {token(level, code)}: the SID map does not match this checkpoint; "
                    f"use the checkpoint's own sid_map.json"
                )
            ids[code] = vocab[token(level, code)]
        level_ids.append(ids)
    item_ids = np.stack([level_ids[level][sid_map.codes[:, level]] for level in range(sid_map.levels)], axis=1)
    return SidTokens(item_ids=item_ids, level_ids=level_ids, added=[])


def add_sid_tokens(
    tokenizer, sid_map: SidMap, model=None, init: str = "mean", titles: dict[str, str] | None = None
) -> SidTokens:
    """Add ``sid_map``'s tokens to ``tokenizer`` (only the missing ones) and grow ``model`` to match.

    Args:
        tokenizer: a Hugging Face tokenizer (changed in place).
        sid_map: the semantic IDs.
        model: a Hugging Face model whose embeddings follow the tokenizer (changed in place), or None.
        init: ``mean``: new rows are the mean of the existing rows; ``text``: the mean embedding of
            the title tokens of the items that use the token (needs ``titles``); ``spread``: the
            ``text`` rows of each level centred and scaled to the spread of the model's own rows.
            Means over many titles lie close together (cosine ~0.9 for SmolLM2), so a tied output
            layer barely tells the codes apart; spread, they start as distinct as ordinary words.
        titles: item id -> title, for ``init="text"`` and ``"spread"``.
    """
    from transformers import AddedToken

    if init not in INITS:
        raise GrecError(f"--init: expected one of {', '.join(INITS)}, got {init!r}")
    if init != "mean" and not titles:
        raise GrecError(f"--init {init} needs item titles (items.jsonl)")
    vocabulary = sid_map.vocabulary()
    _check_clashes(tokenizer, vocabulary)
    present = tokenizer.get_vocab()
    missing = [t for t in vocabulary if t not in present]
    history = sum(1 for t in tokenizer.get_added_vocab() if TOKEN.match(t))
    if missing:
        tokenizer.add_tokens([AddedToken(t, normalized=False, special=False, single_word=False) for t in missing])
    result = sid_token_ids(tokenizer, sid_map)
    result.added = missing
    _check_single_tokens(tokenizer, sid_map, result)
    if history and missing:
        logger.info("SID tokens are updated from history:%d to current:%d", history, history + len(missing))
    if model is not None:
        new_ids = torch.tensor(tokenizer.convert_tokens_to_ids(missing), dtype=torch.long)
        _grow_embeddings(model, len(tokenizer), new_ids, init, tokenizer, sid_map, titles)
    return result


def _check_single_tokens(tokenizer, sid_map: SidMap, ids: SidTokens) -> None:
    """Every level's tokens, written together, must encode to exactly their ids."""
    for level in range(sid_map.levels):
        codes = np.flatnonzero(ids.level_ids[level] >= 0)
        text = "".join(token(level, int(c)) for c in codes)
        got = tokenizer(text, add_special_tokens=False)["input_ids"]
        if got != ids.level_ids[level][codes].tolist():
            raise GrecError(
                f"the tokenizer splits level-{level_name(level)} SID tokens; it cannot hold them as added tokens"
            )


def _grow_embeddings(
    model, vocab_size: int, new_ids: torch.Tensor, init: str, tokenizer, sid_map: SidMap, titles: dict[str, str] | None
) -> None:
    inputs = model.get_input_embeddings()
    history = inputs.weight.shape[0]
    if vocab_size > history:
        logger.info("embed_tokens shape mismatched, current: %d != history: %d", vocab_size, history)
        model.resize_token_embeddings(vocab_size, mean_resizing=False)
        logger.info("embed_tokens is updated from history:%d to current:%d", history, vocab_size)
    if not len(new_ids):
        return
    tables = [model.get_input_embeddings().weight]
    outputs = model.get_output_embeddings()
    if outputs is not None and outputs.weight.data_ptr() != tables[0].data_ptr():
        tables.append(outputs.weight)
    old = torch.ones(tables[0].shape[0], dtype=torch.bool)
    old[new_ids] = False
    old[history:] = False
    with torch.no_grad():
        for table in tables:
            if init != "mean":
                rows = _title_means(table, tokenizer, sid_map, titles, new_ids)
                if init == "spread":
                    rows = _spread(rows, table[old].float(), tokenizer.convert_ids_to_tokens(new_ids.tolist()))
                table[new_ids] = rows.to(table.dtype)
            else:
                table[new_ids] = table[old].mean(0).to(table.dtype)


def _title_means(
    table: torch.Tensor, tokenizer, sid_map: SidMap, titles: dict[str, str], new_ids: torch.Tensor
) -> torch.Tensor:
    """For each new SID token, the mean over its items of the mean embedding of their title tokens."""
    fallback = table[: min(table.shape[0], len(tokenizer) - len(new_ids))].mean(0)
    item_vectors = []
    for item in sid_map.item_ids:
        ids = tokenizer(item_text(titles.get(item, "")), add_special_tokens=False)["input_ids"]
        item_vectors.append(table[ids].mean(0) if ids else fallback)
    item_vectors = torch.stack(item_vectors)
    wanted = {int(i): k for k, i in enumerate(new_ids.tolist())}
    sums = torch.zeros(len(new_ids), table.shape[1], dtype=item_vectors.dtype)
    counts = torch.zeros(len(new_ids))
    vocab = tokenizer.get_vocab()
    for level in range(sid_map.levels):
        token_ids = torch.tensor([vocab[token(level, int(c))] for c in sid_map.codes[:, level]])
        rows = torch.tensor([wanted.get(int(t), -1) for t in token_ids])
        keep = rows >= 0
        sums.index_add_(0, rows[keep], item_vectors[keep])
        counts.index_add_(0, rows[keep], torch.ones(int(keep.sum())))
    means = sums / counts.clamp(min=1)[:, None]
    means[counts == 0] = fallback
    return means


def _spread(rows: torch.Tensor, existing: torch.Tensor, names: list[str]) -> torch.Tensor:
    """Each level's rows centred on their own mean, scaled to the existing rows' mean distance from
    their mean, and moved to that mean: the text's directions kept, the spread of real tokens given."""
    centre = existing.mean(0)
    radius = (existing - centre).norm(dim=1).mean()
    levels = [TOKEN.match(name).group(1) for name in names]
    out = rows.clone().float()
    for level in sorted(set(levels)):
        pick = torch.tensor([k for k, name in enumerate(levels) if name == level])
        own = out[pick] - out[pick].mean(0)
        size = own.norm(dim=1).mean()
        out[pick] = centre + (own * (radius / size) if size > 0 else own)
    return out
