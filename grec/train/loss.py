"""Causal-LM loss on the labelled positions only: the vocabulary projection skips the prompt.

A recommendation record is a long prompt (instruction + history) and a short response (an item's
SID or title). With the prompt masked out of the loss, the logits at prompt and padding positions
are computed, soft-maxed and thrown away: for SmolLM2 (49k-token vocabulary) that is a (batch,
length, 49k) tensor per step. The collator below marks the positions whose next token is a target
and the model projects only those rows (``logits_to_keep`` as a boolean mask); the loss is the same
cross-entropy, summed and divided exactly as the Trainer divides the full-logits loss.
"""

from __future__ import annotations

import inspect


def keeps_logits_by_mask(model) -> bool:
    """Whether the (possibly peft-wrapped) causal model's forward takes ``logits_to_keep``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


class LabelledPositions:
    """Wraps a padding collator; adds ``logits_to_keep``: True where the next token is a target."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features):
        batch = self.collator(features)
        labels = batch["labels"]
        keep = labels.new_zeros(labels.shape, dtype=bool)
        keep[:, :-1] = labels[:, 1:] != -100
        batch["logits_to_keep"] = keep
        return batch


def labelled_token_loss(outputs, labels, num_items_in_batch=None):
    """Cross-entropy of the kept logits (rows in batch-major order) against their next tokens.

    Divided by ``num_items_in_batch`` (targets in the whole accumulated batch) when the Trainer
    gives it, else the mean over this batch's targets, as Hugging Face's causal-LM loss does.
    """
    import torch.nn.functional as F

    targets = labels[:, 1:][labels[:, 1:] != -100]
    logits = outputs["logits"].float()
    if num_items_in_batch is None:
        return F.cross_entropy(logits, targets)
    total = F.cross_entropy(logits, targets, reduction="sum")
    if hasattr(num_items_in_batch, "to"):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch
