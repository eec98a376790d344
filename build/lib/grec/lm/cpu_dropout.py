"""Cheaper dropout for training on the CPU, with the same distribution as torch's.

On the CPU, ``torch.nn.functional.dropout`` draws its keep-mask with ``bernoulli_``, one scalar
draw per element, and then multiplies twice; for a small model such as TIGER's T5 that is a fifth
of a training step, most of it on the attention probabilities (batch x heads x length^2 elements).
Here the mask is ``uniform_() >= p``: the same Bernoulli(1 - p) keep-mask, drawn by torch's
vectorised uniform generator in about half the time, and kept as a float tensor of 0 and
1 / (1 - p) so that both passes are one plain multiply (a bool mask costs a dtype conversion each).

``with cpu_dropout(model):`` swaps the model's ``nn.Dropout`` modules for :class:`Dropout` and
routes its attention through :func:`attention`, which is transformers' SDPA attention except while
training with attention dropout, where it computes softmax(QK^T + bias) explicitly so the
probabilities' dropout is drawn here too; when the block ends the model is as it was. Outside
training the function is SDPA, so the ranking inside a training run (``--eval_metric ndcg``) may
switch it for the SID search's shared prompt cache, as ``grec infer`` does. GPUs keep torch's fused
kernels: nothing is swapped there.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from grec.lm.attention import base_model, register

ATTENTION = "grec_cpu_dropout"


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        keep = torch.empty(x.shape, device=x.device).uniform_().ge_(p)  # drawn in float32 for bf16 inputs too
        scale = keep.mul_(1.0 / (1.0 - p)).to(x.dtype)  # 0 or 1 / (1 - p)
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (scale,) = ctx.saved_tensors
        return grad * scale, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p), as F.dropout does."""
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return torch.zeros_like(x)
    return _Dropout.apply(x, p)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments and state) drawing its mask with :func:`dropout`; never in place."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def attention(
    module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, position_bias=None, **kwargs
):
    """transformers' attention-function signature; SDPA unless training with attention dropout."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    if not module.training or not dropout:
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
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    scores = torch.matmul(query, key.transpose(2, 3))  # edited in place below: matmul's backward needs only q, k
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    if scaling != 1.0:
        scores.mul_(scaling)
    if position_bias is not None:
        scores.add_(position_bias)
    q_len, k_len = scores.shape[-2:]
    causal = kwargs.get("is_causal")
    causal = getattr(module, "is_causal", False) if causal is None else causal
    if attention_mask is None and causal and q_len > 1:  # SDPA's mask functions leave plain causal masks out
        attention_mask = torch.ones(q_len, k_len, dtype=torch.bool, device=scores.device).tril(k_len - q_len)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores.masked_fill_(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores.add_(attention_mask)
    probs = _Dropout.apply(torch.softmax(scores, dim=-1), dropout)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


@contextmanager
def cpu_dropout(model: nn.Module):
    """Draw ``model``'s dropout with this module for the block, then restore it; yields whether anything changed.

    Attention goes through :func:`attention` only where the model used SDPA, so models that asked
    for eager attention (to return attention weights) keep it.
    """
    swapped = []
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, Dropout(child.p, child.inplace))
                swapped.append((parent, name, child))
    base = base_model(model)
    previous = getattr(getattr(base, "config", None), "_attn_implementation", None)
    if previous == "sdpa":
        register(ATTENTION, attention, switchable=True)
        base.set_attn_implementation(ATTENTION)  # the encoder and decoder stacks hold their own configs
    try:
        yield previous == "sdpa" or bool(swapped)
    finally:
        if previous == "sdpa":
            base.set_attn_implementation(previous)
        for parent, name, child in swapped:
            setattr(parent, name, child)
