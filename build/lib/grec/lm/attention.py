"""Plumbing for grec's own attention functions: register one with transformers, switch a model to it.

Each function (``grec.decoding.shared_cross``, ``grec.decoding.shared_prompt``,
``grec.lm.cpu_dropout``) keeps transformers' attention-function signature and builds its masks
as SDPA does, so it is registered together with SDPA's mask function.
"""

from __future__ import annotations

from contextlib import contextmanager

# implementations a block may switch away from and restore: transformers' own, and grec's that
# equal SDPA outside training (registered with ``switchable=True``)
SWITCHABLE = {"sdpa", "eager"}


def register(name: str, function, switchable: bool = False) -> None:
    """Make ``name`` an attention implementation calling ``function``, with SDPA's mask building.

    ``switchable``: ``function`` computes plain SDPA attention whenever the model is not training,
    so :func:`attention_for_block` may swap it for a block (e.g. the ranking inside a training run).
    """
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(name, function)
    AttentionMaskInterface.register(name, sdpa_mask)
    if switchable:
        SWITCHABLE.add(name)


def base_model(model):
    """The transformers model under a peft wrapper (the model itself when there is none)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


@contextmanager
def attention_for_block(model, name: str, function):
    """Run the block with ``model``'s attention set to ``function``, then restore it; yields whether it could.

    Only models on transformers' SDPA or eager attention, or on a grec function registered as
    switchable, are switched (others, e.g. flash attention or models outside the attention
    interface, yield False and keep theirs).
    """
    base = base_model(model)
    previous = base.config._attn_implementation
    if not getattr(base, "_can_set_attn_implementation", lambda: False)() or previous not in SWITCHABLE:
        yield False
        return
    register(name, function)
    base.set_attn_implementation(name)
    try:
        yield True
    finally:
        base.set_attn_implementation(previous)
