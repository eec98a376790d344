"""Cross-attention that serves all of a user's beams from one copy of the encoder's keys and values.

An encoder-decoder beam search usually repeats the encoder's cross-attention cache once per beam:
with 64 users x 20 beams and 61 prompt tokens that is about 1 GB of keys and values for the TIGER
T5, copied once and read again at every decoding step, although the 20 copies are identical.
Registered as an attention implementation, ``shared_cross_attention`` keeps one copy per user and
attends each user's beams to it as a group of queries; self-attention (beams differ there) goes to
PyTorch's SDPA unchanged. Same result as the repeated cache, to float rounding (tested).
"""

from __future__ import annotations

from contextlib import contextmanager

from grec.lm.attention import attention_for_block

NAME = "grec_shared_cross"


def shared_cross_attention(
    module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, position_bias=None, **kwargs
):
    """Attention with (users x beams) query rows over (users) key rows; other shapes go to plain SDPA."""
    import torch
    from transformers.integrations.sdpa_attention import create_position_bias_mask, sdpa_attention_forward

    rows, users = query.shape[0], key.shape[0]
    if rows == users or rows % users or query.shape[2] != 1:
        if rows != users:
            key = key.repeat_interleave(rows // users, 0)
            value = value.repeat_interleave(rows // users, 0)
        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            position_bias=position_bias,
            **kwargs,
        )
    width, heads, dim = rows // users, query.shape[1], query.shape[3]
    if attention_mask is not None and attention_mask.shape[0] == rows:  # equal within a user's beams: keep one
        attention_mask = attention_mask[::width]
    grouped = query.view(users, width, heads, dim).transpose(1, 2)  # (users, heads, beams, dim)
    mask = attention_mask
    if position_bias is not None:
        mask = create_position_bias_mask(position_bias, attention_mask, False, grouped, key)
    out = torch.nn.functional.scaled_dot_product_attention(
        grouped, key, value, attn_mask=mask, scale=scaling, dropout_p=dropout if module.training else 0.0
    )
    return out.permute(0, 2, 1, 3).reshape(rows, 1, heads, dim), None


@contextmanager
def one_cross_cache_per_user(model):
    """Switch an encoder-decoder model to ``shared_cross_attention`` for the block; yields whether it did.

    Models whose attention does not go through Hugging Face's attention interface keep theirs (the
    caller then repeats the cross-attention cache per beam as before).
    """
    with attention_for_block(model, NAME, shared_cross_attention) as switched:
        yield switched
