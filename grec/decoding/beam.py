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

from grec.decoding.shared_cross import one_cross_cache_per_user
from grec.decoding.shared_prompt import SharedPromptCache, one_prompt_cache_per_user, prompt_mask
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


def _reorder_after(cache, parent: torch.Tensor, start: int) -> None:
    """Reorder a causal cache's beams from position ``start`` on.

    A parent is always one of the same user's beams, and the positions before ``start`` (the
    prompt) are equal across a user's beams, so only the generated positions need moving: a copy
    of a few tokens per beam instead of the whole prompt cache (4 GB for SmolLM2, 64 users x 20
    beams, at every level). Cache layers of other kinds are reordered whole.
    """
    from transformers.cache_utils import DynamicLayer

    for layer in cache.layers:
        if type(layer) is DynamicLayer and layer.keys is not None and layer.keys.dim() == 4:
            layer.keys[:, :, start:] = layer.keys[parent, :, start:]
            layer.values[:, :, start:] = layer.values[parent, :, start:]
        else:
            layer.reorder_cache(parent)


def encode_prompts(model, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """A causal model's forward over left-padded prompts: (output with the last position's logits only, positions).

    Positions are ``generate``'s: the running count of unmasked tokens, 0 on left padding.
    """
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True,
                logits_to_keep=1)  # fmt: skip
    return out, positions


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

    if seq2seq:
        with one_cross_cache_per_user(model) as shared:
            return _search(model, input_ids, attention_mask, index, width, num_return, True, banned, dead, shared)
    with one_prompt_cache_per_user(model) as shared:
        return _search(model, input_ids, attention_mask, index, width, num_return, False, banned, dead, shared)


def _search(model, input_ids, attention_mask, index, width, num_return, seq2seq, banned, dead, shared):
    """``shared``: one cross-attention cache (seq2seq) or one prompt cache (causal) per user, not per beam."""
    batch, device = input_ids.shape[0], input_ids.device
    flat = torch.arange(batch, device=device).repeat_interleave(width)
    if seq2seq:  # the first step runs once per user (all beams are equal), then the cache is copied per beam
        encoder = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
        start = model.config.decoder_start_token_id
        step_ids = torch.full((batch, 1), start, dtype=torch.long, device=device)
        out = model(encoder_outputs=encoder, attention_mask=attention_mask, decoder_input_ids=step_ids, use_cache=True)
        if shared:  # the beams of a user share one copy of the encoder's keys and values (shared_cross.py)
            out.past_key_values.self_attention_cache.batch_repeat_interleave(width)
        else:
            out.past_key_values.batch_repeat_interleave(width)
        encoder.last_hidden_state = encoder.last_hidden_state.repeat_interleave(width, 0)
        mask = attention_mask.repeat_interleave(width, 0)
        cache = out.past_key_values
    else:
        out, positions = encode_prompts(model, input_ids, attention_mask)
        if shared:  # the prompt's keys and values stay once per user; beams hold only their generated tokens
            cache = SharedPromptCache(out.past_key_values, width, index.levels - 1)
            mask = prompt_mask(attention_mask, out.logits.dtype)
        else:
            cache = out.past_key_values
            cache.batch_repeat_interleave(width)
            mask = attention_mask.repeat_interleave(width, 0)
        position = positions[:, -1:].repeat_interleave(width, 0)
    logits = out.logits[:, -1, :].repeat_interleave(width, 0)

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
        if seq2seq:  # cross-attention rows are equal across one user's beams: reorder self-attention only
            cache.self_attention_cache.reorder_cache(parent)
        elif shared:
            cache.reorder(parent)
        else:
            _reorder_after(cache, parent, input_ids.shape[1])
        step = tokens.clamp(min=0)[code].unsqueeze(1)  # dead beams (score -inf) feed any valid id
        if seq2seq:
            out = model(encoder_outputs=encoder, attention_mask=mask, decoder_input_ids=step, past_key_values=cache,
                        use_cache=True)  # fmt: skip
        else:
            if not shared:  # the shared prompt's mask never changes: beams attend to all their own tokens
                mask = torch.cat([mask[parent], torch.ones_like(step)], dim=1)
            position = position[parent] + 1
            out = model(input_ids=step, attention_mask=mask, position_ids=position, past_key_values=cache,
                        use_cache=True)  # fmt: skip
        cache, logits = out.past_key_values, out.logits[:, -1, :]
    items = node.reshape(batch, width)
    items = items.masked_fill(torch.isinf(scores), -1)
    return BeamResult(items=items[:, :num_return], scores=scores[:, :num_return])
