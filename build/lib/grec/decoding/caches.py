"""How a beam search keeps its key/value cache: one class per strategy, one interface.

``start(input_ids, attention_mask)`` runs the prompts and returns the first step's logits, one row
per beam; ``step(parent, tokens)`` moves each beam's cache to its parent's, feeds one token per
beam and returns the next logits. ``beam_cache`` picks the cheapest strategy the model allows:
encoder-decoders share one cross-attention cache per user (``shared_cross.py``) and causal models
one prompt cache per user (``shared_prompt.py``); models outside transformers' attention interface
repeat the cache per beam.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from grec.decoding.shared_cross import one_cross_cache_per_user
from grec.decoding.shared_prompt import SharedPromptCache, one_prompt_cache_per_user, prompt_mask


def encode_prompts(model, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """A causal model's forward over left-padded prompts: (output with the last position's logits only, positions).

    Positions are ``generate``'s: the running count of unmasked tokens, 0 on left padding.
    """
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True, logits_to_keep=1
    )
    return out, positions


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


class CausalCache:
    """A decoder-only model whose prompt cache is repeated for every beam."""

    def __init__(self, model, width: int, steps: int):
        self.model, self.width, self.steps = model, width, steps

    def _prefill(self, out, attention_mask: torch.Tensor) -> None:
        self.cache = out.past_key_values
        self.cache.batch_repeat_interleave(self.width)
        self.mask = attention_mask.repeat_interleave(self.width, 0)

    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out, positions = encode_prompts(self.model, input_ids, attention_mask)
        self.prompt_length = input_ids.shape[1]
        self._prefill(out, attention_mask)
        self.position = positions[:, -1:].repeat_interleave(self.width, 0)
        return out.logits[:, -1, :].repeat_interleave(self.width, 0)

    def _reorder(self, parent: torch.Tensor, tokens: torch.Tensor) -> None:
        _reorder_after(self.cache, parent, self.prompt_length)
        self.mask = torch.cat([self.mask[parent], torch.ones_like(tokens)], dim=1)

    def step(self, parent: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        self._reorder(parent, tokens)
        self.position = self.position[parent] + 1
        out = self.model(
            input_ids=tokens,
            attention_mask=self.mask,
            position_ids=self.position,
            past_key_values=self.cache,
            use_cache=True,
        )
        self.cache = out.past_key_values
        return out.logits[:, -1, :]


class SharedPromptCausalCache(CausalCache):
    """A decoder-only model whose prompt keys and values stay once per user; beams hold only their own tokens."""

    def _prefill(self, out, attention_mask: torch.Tensor) -> None:
        self.cache = SharedPromptCache(out.past_key_values, self.width, self.steps)
        self.mask = prompt_mask(attention_mask, out.logits.dtype)  # never changes: beams see all their own tokens

    def _reorder(self, parent: torch.Tensor, tokens: torch.Tensor) -> None:
        self.cache.reorder(parent)


class Seq2SeqCache:
    """An encoder-decoder whose cross-attention cache is repeated for every beam.

    The first decoder step runs once per user (all beams are equal), then the cache is copied per beam.
    """

    def __init__(self, model, width: int, steps: int):
        self.model, self.width = model, width

    def _repeat(self, cache) -> None:
        cache.batch_repeat_interleave(self.width)

    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        batch = input_ids.shape[0]
        encoder = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
        first = torch.full(
            (batch, 1), self.model.config.decoder_start_token_id, dtype=torch.long, device=input_ids.device
        )
        out = self.model(
            encoder_outputs=encoder, attention_mask=attention_mask, decoder_input_ids=first, use_cache=True
        )
        self._repeat(out.past_key_values)
        encoder.last_hidden_state = encoder.last_hidden_state.repeat_interleave(self.width, 0)
        self.encoder, self.cache = encoder, out.past_key_values
        self.mask = attention_mask.repeat_interleave(self.width, 0)
        return out.logits[:, -1, :].repeat_interleave(self.width, 0)

    def step(self, parent: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        self.cache.self_attention_cache.reorder_cache(parent)  # cross-attention rows are equal within a user
        out = self.model(
            encoder_outputs=self.encoder,
            attention_mask=self.mask,
            decoder_input_ids=tokens,
            past_key_values=self.cache,
            use_cache=True,
        )
        self.cache = out.past_key_values
        return out.logits[:, -1, :]


class SharedCrossSeq2SeqCache(Seq2SeqCache):
    """An encoder-decoder whose beams share one copy of their user's encoder keys and values."""

    def _repeat(self, cache) -> None:
        cache.self_attention_cache.batch_repeat_interleave(self.width)


@contextmanager
def beam_cache(model, seq2seq: bool, width: int, steps: int):
    """The cache strategy for ``model`` with ``width`` beams and ``steps`` generated tokens, for the block."""
    sharing = one_cross_cache_per_user if seq2seq else one_prompt_cache_per_user
    with sharing(model) as shared:
        if seq2seq:
            yield (SharedCrossSeq2SeqCache if shared else Seq2SeqCache)(model, width, steps)
        else:
            yield (SharedPromptCausalCache if shared else CausalCache)(model, width, steps)
