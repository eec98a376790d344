"""Causal beam search that keeps one copy of each prompt's keys and values per user, not one per beam.

A causal beam search usually repeats the prompt's cache for every beam: for SmolLM2 with 40
users x 20 beams and 250-token prompts that is ~9 GB of identical keys and values, copied once and
read again at every step. ``SharedPromptCache`` keeps the prompt part once per user and only the
generated positions (a few tokens) per beam; the registered attention function attends a user's
beams, as one group of queries, to the shared prompt and each beam to its own generated tokens,
with a single softmax over both. Same result as the repeated cache, to float rounding (tested).

Used for the LLaMA-style models whose attention calls ``past_key_values.update`` and then the
attention interface (LLaMA, SmolLM2, Qwen2/3 without sliding windows); other models keep the
repeated cache.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from grec.lm.attention import attention_for_block, base_model

NAME = "grec_shared_prompt"
MODEL_TYPES = ("llama", "qwen2", "qwen3")


class SharedPromptCache:
    """Prompt keys/values per user (from the prefill's cache) plus ``steps`` generated positions per beam.

    ``update`` stores the new position of every beam and hands the attention a pair
    (prompt, generated so far) for keys and for values; ``reorder`` moves beams' generated parts.
    """

    def __init__(self, prefill_cache, width: int, steps: int):
        self.prompt = [(layer.keys, layer.values) for layer in prefill_cache.layers]
        self.filled = [0] * len(self.prompt)
        self.keys, self.values = [], []
        for keys, values in self.prompt:
            users, heads, _, dim = keys.shape
            self.keys.append(keys.new_empty(users * width, heads, steps, dim))
            self.values.append(values.new_empty(users * width, heads, steps, dim))

    def update(self, keys: torch.Tensor, values: torch.Tensor, layer_idx: int, *args, **kwargs):
        start, end = self.filled[layer_idx], self.filled[layer_idx] + keys.shape[2]
        self.keys[layer_idx][:, :, start:end] = keys
        self.values[layer_idx][:, :, start:end] = values
        self.filled[layer_idx] = end
        prompt_keys, prompt_values = self.prompt[layer_idx]
        return (prompt_keys, self.keys[layer_idx][:, :, :end]), (prompt_values, self.values[layer_idx][:, :, :end])

    def reorder(self, parent: torch.Tensor) -> None:
        """Beam i continues beam ``parent[i]`` (always one of the same user's beams)."""
        for layer, end in enumerate(self.filled):
            self.keys[layer][:, :, :end] = self.keys[layer][parent, :, :end]
            self.values[layer][:, :, :end] = self.values[layer][parent, :, :end]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.prompt[layer_idx][0].shape[2] + self.filled[layer_idx]


def prompt_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The prompt's padding as an additive (users, 1, 1, prompt) mask; a 4D mask also skips HF's mask building."""
    blocked = attention_mask[:, None, None, :] == 0
    return torch.zeros(blocked.shape, dtype=dtype, device=blocked.device).masked_fill(blocked, torch.finfo(dtype).min)


def shared_prompt_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """One decoding step of (users x beams) queries over the shared prompt and each beam's own positions.

    ``key`` and ``value`` are (prompt, generated) pairs from ``SharedPromptCache.update``;
    ``attention_mask`` is ``prompt_mask``. Anything else (the prefill) goes to PyTorch's SDPA.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not isinstance(key, tuple):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    (prompt_k, own_k), (prompt_v, own_v) = key, value
    rows, heads, _, dim = query.shape
    users, kv_heads, prompt_len, _ = prompt_k.shape
    width, group = rows // users, heads // kv_heads
    scale = scaling if scaling is not None else dim**-0.5
    # query head h reads key head h // group; a user's beams x group heads form one block of queries
    grouped = query.reshape(users, width, kv_heads, group, dim).transpose(1, 2).reshape(users, kv_heads, -1, dim)
    scores_prompt = torch.matmul(grouped, prompt_k.transpose(-1, -2)) * scale + attention_mask
    own = query.reshape(rows, kv_heads, group, dim)
    scores_own = torch.matmul(own, own_k.transpose(-1, -2)) * scale  # (rows, kv_heads, group, steps)
    scores_own = (
        scores_own.reshape(users, width, kv_heads, group, -1)
        .transpose(1, 2)
        .reshape(users, kv_heads, width * group, -1)
    )
    probs = torch.softmax(torch.cat([scores_prompt, scores_own], -1).float(), -1).to(query.dtype)
    out = torch.matmul(probs[..., :prompt_len], prompt_v)  # (users, kv_heads, width * group, dim)
    own_probs = probs[..., prompt_len:].reshape(users, kv_heads, width, group, -1).transpose(1, 2)
    own_out = torch.matmul(own_probs.reshape(rows, kv_heads, group, -1), own_v)  # (rows, kv_heads, group, dim)
    out = out.reshape(users, kv_heads, width, group, dim).transpose(1, 2).reshape(rows, heads, dim)
    return (out + own_out.reshape(rows, heads, dim)).unsqueeze(1), None


def _supported(model) -> bool:
    config = base_model(model).config
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    return config.model_type in MODEL_TYPES and all(t == "full_attention" for t in layer_types)


@contextmanager
def one_prompt_cache_per_user(model):
    """Switch a causal LM to ``shared_prompt_attention`` for the block; yields whether it did."""
    if not _supported(model):
        yield False
        return
    with attention_for_block(model, NAME, shared_prompt_attention) as switched:
        yield switched
