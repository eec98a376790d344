"""Vectorised beam search over a fixed-depth SID catalog: every beam of every user in one tensor op per step.

Each step takes the model's log-probabilities over the whole vocabulary (so scores are true
sequence log-probabilities), gathers the columns of the level's tokens, masks codes that lead to
no item (and, at the last level, items the user has seen), and keeps the best ``num_beams`` of
beams x codes per user. Scores are plain sums of log-probabilities (no length normalisation,
as D3 recommends). No Python loop runs per beam and nothing waits on the host inside a step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grec.decoding.caches import beam_cache
from grec.decoding.sid_index import SidIndex

NEG = float("-inf")


@dataclass
class BeamResult:
    """``items[b, k]``: row (in ``index.item_ids``) of user b's k-th item, -1 when fewer exist; ``scores`` alike."""

    items: torch.Tensor
    scores: torch.Tensor


def _exclusion_mask(exclude: list[list[int]] | None, batch: int, n_items: int, device) -> torch.Tensor | None:
    if not exclude:
        return None
    mask = torch.zeros(batch, n_items, dtype=torch.bool, device=device)
    for b, rows in enumerate(exclude):
        if rows:
            mask[b, torch.as_tensor(rows, device=device)] = True
    return mask


@torch.no_grad()
def sid_beam_search(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    index: SidIndex,
    num_beams: int = 20,
    num_return_sequences: int | None = None,
    seq2seq: bool = False,
    exclude: list[list[int]] | None = None,
) -> BeamResult:
    """Top items per prompt. Prompts are left-padded for causal models.

    Args:
        model: a Hugging Face causal or encoder-decoder LM whose vocabulary holds the SID tokens.
        input_ids: (batch, length) prompts.
        attention_mask: (batch, length), 0 on padding.
        index: the catalog (``SidIndex.build``).
        num_beams: beams per user.
        num_return_sequences: items returned per user (at most num_beams).
        seq2seq: the model is an encoder-decoder.
        exclude: per user, item rows never to return (their history).
    """
    num_return = num_return_sequences or num_beams
    batch, width = input_ids.shape[0], num_beams
    banned = _exclusion_mask(exclude, batch, len(index.item_ids), input_ids.device)
    # subtrees whose every item is excluded are closed early, so no beam is spent on them
    dead = [None] + [index.dead_nodes(t, exclude) for t in range(1, index.levels)] if banned is not None else None

    with beam_cache(model, seq2seq, width, index.levels - 1) as cache:
        return _search(cache, input_ids, attention_mask, index, width, num_return, banned, dead)


def _search(cache, input_ids, attention_mask, index, width, num_return, banned, dead) -> BeamResult:
    batch, device = input_ids.shape[0], input_ids.device
    flat = torch.arange(batch, device=device).repeat_interleave(width)
    logits = cache.start(input_ids, attention_mask)
    scores = torch.full((batch, width), NEG, device=device)
    scores[:, 0] = 0.0  # all beams start equal: expand only the first
    node = torch.zeros(batch * width, dtype=torch.long, device=device)
    for level in range(index.levels):
        tokens = index.level_tokens[level]
        size = tokens.shape[0]
        logp = torch.log_softmax(logits.float(), dim=-1)[:, tokens.clamp(min=0)]  # (beams, size)
        target = index.next_node[level][node].long()  # (beams, size): next node or item row, -1 = dead end
        valid = (target >= 0) & (tokens >= 0)
        if banned is not None:
            closed = banned if level == index.levels - 1 else dead[level + 1]
            valid &= ~closed[flat[:, None], target.clamp(min=0)]
        logp = logp.masked_fill(~valid, NEG)
        total = (scores.reshape(-1, 1) + logp).reshape(batch, width * size)
        scores, choice = total.topk(width, dim=1)
        parent = (choice // size) + torch.arange(batch, device=device)[:, None] * width  # flat beam index
        code = choice % size
        parent, code = parent.reshape(-1), code.reshape(-1)
        node = target[parent, code].clamp(min=0)
        if level == index.levels - 1:
            break
        logits = cache.step(parent, tokens.clamp(min=0)[code].unsqueeze(1))  # dead beams (score -inf) feed any valid id
    items = node.reshape(batch, width)
    items = items.masked_fill(torch.isinf(scores), -1)
    return BeamResult(items=items[:, :num_return], scores=scores[:, :num_return])


@torch.no_grad()
def sid_sample(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    index: SidIndex,
    num_samples: int,
    temperature: float = 1.0,
    seq2seq: bool = False,
    exclude: list[list[int]] | None = None,
    generator: torch.Generator | None = None,
) -> BeamResult:
    """``num_samples`` items per prompt drawn from the model, code by code, restricted to the catalog.

    Each sample draws its next code from softmax(log p / temperature) over the codes that lead to an
    item (not an excluded one); ``scores`` are the samples' untempered sequence log-probabilities.
    Samples of one prompt may repeat an item, as samples do. Same caches as the beam search: each
    sample is a beam that only ever continues itself.
    """
    batch, width = input_ids.shape[0], num_samples
    banned = _exclusion_mask(exclude, batch, len(index.item_ids), input_ids.device)
    dead = [None] + [index.dead_nodes(t, exclude) for t in range(1, index.levels)] if banned is not None else None
    device = input_ids.device
    with beam_cache(model, seq2seq, width, index.levels - 1) as cache:
        flat = torch.arange(batch, device=device).repeat_interleave(width)
        logits = cache.start(input_ids, attention_mask)
        scores = torch.zeros(batch * width, device=device)
        node = torch.zeros(batch * width, dtype=torch.long, device=device)
        own = torch.arange(batch * width, device=device)
        for level in range(index.levels):
            tokens = index.level_tokens[level]
            logp = torch.log_softmax(logits.float(), dim=-1)[:, tokens.clamp(min=0)]
            target = index.next_node[level][node].long()
            valid = (target >= 0) & (tokens >= 0)
            if banned is not None:
                closed = banned if level == index.levels - 1 else dead[level + 1]
                valid &= ~closed[flat[:, None], target.clamp(min=0)]
            logp = logp.masked_fill(~valid, NEG)
            stuck = ~valid.any(1)  # every item of the prompt excluded: nothing to draw
            weights = torch.softmax(logp.masked_fill(stuck[:, None], 0.0) / temperature, dim=-1)
            code = torch.multinomial(weights, 1, generator=generator).squeeze(1)
            scores = scores + logp[own, code]
            node = target[own, code].clamp(min=0)
            if level == index.levels - 1:
                break
            logits = cache.step(own, tokens.clamp(min=0)[code].unsqueeze(1))
    items = node.reshape(batch, width).masked_fill(torch.isinf(scores.reshape(batch, width)), -1)
    return BeamResult(items=items, scores=scores.reshape(batch, width))
