"""Causal-LM training that skips work on the prompt: sparse logits and a shared prompt prefix.

A recommendation record is a long prompt (instruction + history) and a short response (an item's
SID or title). With the prompt masked out of the loss, the logits at prompt and padding positions
are computed, soft-maxed and thrown away: for SmolLM2 (49k-token vocabulary) that is a (batch,
length, 49k) tensor per step. The collator below marks the positions whose next token is a target
and the model projects only those rows (``logits_to_keep`` as a boolean mask); the loss is the same
cross-entropy, summed and divided exactly as the Trainer divides the full-logits loss.

The rows of a batch also start with the same prompt head (template + instruction); ``CausalTrainer``
encodes that head once per batch and reuses its keys and values for every row.
"""

from __future__ import annotations

import inspect


def keeps_logits_by_mask(model) -> bool:
    """Whether the (possibly peft-wrapped) causal model takes ``logits_to_keep`` as a boolean mask.

    Asked of the model itself: a three-token forward with the last two positions kept must return
    exactly two rows of logits. Models written with transformers' ``slice_logits_to_keep`` pass
    (LLaMA, Qwen, GPT-2, SmolLM and nearly all others); the few that slice by hand, taking only a
    count or 1-D positions, do not, and train with the full logits.
    """
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if "logits_to_keep" not in inspect.signature(base.forward).parameters:
        return False
    device = next(base.parameters()).device
    ids = torch.zeros(1, 3, dtype=torch.long, device=device)
    keep = torch.tensor([[False, True, True]], device=device)
    try:
        with torch.no_grad():
            logits = base(input_ids=ids, logits_to_keep=keep).logits
    except (IndexError, RuntimeError, TypeError, ValueError):
        return False
    return logits.dim() == 2 and logits.shape[0] == 2


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


MIN_SHARED_PREFIX = 8  # shorter common prefixes are not worth a second model call


def shared_prefix_length(inputs) -> int:
    """Tokens every row of the batch starts with, when they may be encoded once for the whole batch.

    Rows share a prompt head (the template and the instruction: 73 of 193 tokens on average for
    grec's SID records). The shared part must end before each row's last real token and hold no
    position whose next token is a target; otherwise 0.
    """
    ids, mask, keep = inputs["input_ids"], inputs["attention_mask"], inputs.get("logits_to_keep")
    if keep is None or ids.shape[0] < 2:
        return 0
    same = (ids == ids[:1]).all(0).long()
    prefix = int(same.cumprod(0).sum())
    prefix = min(prefix, int(mask.sum(1).min()) - 1)
    targets = keep[:, :prefix].any(0).nonzero()
    if len(targets):
        prefix = int(targets[0])
    return prefix if prefix >= MIN_SHARED_PREFIX else 0


def forward_with_shared_prefix(model, inputs, prefix: int):
    """One pass over the shared prefix (one row), its key/value cache repeated for every row, then the rest.

    Same logits as a full pass (the rows' own tokens attend to the same prefix keys and values);
    gradients through the prefix flow back summed over the rows. Dropout masks on the prefix are
    drawn once for the batch instead of once per row.
    """
    import torch

    ids, mask, keep = inputs["input_ids"], inputs["attention_mask"], inputs["logits_to_keep"]
    rows, length = ids.shape
    head = model(input_ids=ids[:1, :prefix], attention_mask=mask[:1, :prefix], use_cache=True, logits_to_keep=1)
    cache = head.past_key_values
    cache.batch_repeat_interleave(rows)
    positions = torch.arange(prefix, length, device=ids.device).expand(rows, -1)
    return model(
        input_ids=ids[:, prefix:],
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=keep[:, prefix:],
    )


def causal_trainer_class():
    """A ``transformers.Trainer`` that encodes a batch's shared prompt prefix once (see above)."""
    from transformers import Trainer

    class CausalTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # not under nn.DataParallel, nor with activation checkpointing (it turns the key/value cache off)
            plain = self.args.n_gpu <= 1 and not self.args.activation_checkpointing
            prefix = shared_prefix_length(inputs) if plain else 0
            if not prefix:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            outputs = forward_with_shared_prefix(model, inputs, prefix)
            loss = labelled_token_loss(outputs, inputs["labels"], num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                # num_items_in_batch counts targets on every process: undo the division by the process count,
                # as the Trainer does for its own loss (tensor-parallel ranks share their batch)
                loss = loss * (self.accelerator.num_processes // self.get_tp_size())
            return (loss, outputs) if return_outputs else loss

    return CausalTrainer
