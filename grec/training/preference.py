"""Preference training on sequence log-probabilities: DPO and S-DPO, for causal and seq2seq models.

An example is one prompt and ``1 + K`` responses, the chosen one first; the collator lays each
(prompt, response) pair out as one row, as training does (causal: ``prompt + response``, the
prompt masked out of the labels; seq2seq: the prompt as encoder input, the response as labels).
``sequence_logps`` sums each row's response-token log-probabilities; the reference model's sums
come with the example (computed once, before training, by the frozen starting model), so the
reference never shares a weight with the policy that is being trained.

- DPO (Rafailov et al. 2023): ``-log sigmoid(beta * (r_chosen - r_j))`` averaged over the K negatives,
  ``r = log pi(y|x) - log pi_ref(y|x)``.
- S-DPO (Chen et al. 2024): ``-log sigmoid(-log sum_j exp(-beta * (r_chosen - r_j)))``: one softmax
  of the chosen response against all K negatives (equal to DPO when K = 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from grec.base.errors import GrecError

METHODS = ("dpo", "sdpo")


def sid_responses(tokenizer, sid_map, groups: list[list[str]]) -> list[list[list[int]]]:
    """Each group's items as response token ids: the item's SID tokens and nothing after them.

    No end-of-sequence token: the log-probability trained here is then exactly the score the
    SID-constrained beam ranks items by. A model trained on whole sequences (sidlm: ``--tasks
    sequence``) never sees an EOS after an item except at a window's end, so an EOS term would
    add several nats that vary with the history's length and teach "stop after one item".
    """
    flat = tokenizer([sid_map.sid_string(item) for group in groups for item in group], add_special_tokens=False)
    ids, out, start = flat["input_ids"], [], 0
    for group in groups:
        out.append(ids[start : start + len(group)])
        start += len(group)
    return out


def fitted_prompts(records: list[dict], tokenizer, seq2seq: bool, cutoff_len: int, responses) -> list[list[int]]:
    """Each record's prompt token ids cut by training's rule (``grec.base.prompts.fit_prompt``) to leave room for
    the longest of its responses."""
    from grec.base.prompts import bos_prefix, fit_prompt, prompt_token_ids

    bos = bos_prefix(tokenizer, seq2seq)
    prompts = prompt_token_ids(records, tokenizer)
    cut = [fit_prompt(p, bos, cutoff_len, max(map(len, group))) for p, group in zip(prompts, responses)]
    if any(p is None for p in cut):
        raise GrecError(f"--cutoff_len {cutoff_len} leaves no room for a prompt beside a response; raise it")
    return cut


def preference_rows(prompt: list[int], responses: list[list[int]], seq2seq: bool) -> list[dict]:
    """One row per response: token ids and labels (response tokens only), as ``grec train`` lays them out."""
    if seq2seq:
        return [{"input_ids": list(prompt), "labels": list(r)} for r in responses]
    return [{"input_ids": prompt + r, "labels": [-100] * len(prompt) + list(r)} for r in responses]


def preference_example(
    prompt: list[int], responses: list[list[int]], seq2seq: bool, ref: list[float] | None = None
) -> dict:
    """What ``PreferenceCollator`` takes: the rows of one prompt's responses and their reference log-probabilities
    (zeros when they are not known yet)."""
    return {
        "rows": preference_rows(prompt, responses, seq2seq),
        "ref": ref if ref is not None else [0.0] * len(responses),
    }


class PreferenceCollator:
    """Pads a batch of examples ``{"rows": [...], "ref": [...]}`` into one tensor batch of B x (1 + K) rows."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, examples: list[dict]) -> dict:
        rows = [row for example in examples for row in example["rows"]]
        width = max(len(r["input_ids"]) for r in rows)
        label_width = max(len(r["labels"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), label_width), -100, dtype=torch.long)
        for k, row in enumerate(rows):
            ids[k, : len(row["input_ids"])] = torch.tensor(row["input_ids"])
            mask[k, : len(row["input_ids"])] = 1
            labels[k, : len(row["labels"])] = torch.tensor(row["labels"])
        ref = torch.tensor([example["ref"] for example in examples], dtype=torch.float32)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "ref": ref}


def sequence_logps(model, batch: dict, seq2seq: bool, by_mask: bool = False) -> torch.Tensor:
    """Per row, the sum of log p(response token | everything before it).

    ``by_mask`` (causal models that take a boolean ``logits_to_keep``, grec.training.loss): only the
    rows of logits that predict a response token are computed, not the whole (rows, length, vocab).
    """
    labels = batch["labels"]
    if seq2seq:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).logits
        mask = labels != -100
        picked = logits.float().log_softmax(-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return (picked * mask).sum(-1)
    targets = labels[:, 1:]
    mask = targets != -100
    if by_mask:
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[:, :-1] = mask
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
        picked = logits.float().log_softmax(-1).gather(-1, targets[mask].unsqueeze(-1)).squeeze(-1)
        rows = mask.nonzero()[:, 0]
        return torch.zeros(labels.shape[0], device=picked.device).index_add(0, rows, picked)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    picked = logits.float().log_softmax(-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def preference_loss(
    method: str, policy: torch.Tensor, ref: torch.Tensor, beta: float, sft_weight: float = 0.0
) -> tuple[torch.Tensor, dict]:
    """The loss and its diagnostics from (B, 1 + K) policy and reference log-probabilities, chosen first.

    ``sft_weight`` adds that many times the chosen response's negative log-likelihood (RPO, Pang et al.
    2024; DPOP, Pal et al. 2024): the preference loss alone can raise the margin while the chosen item's
    own probability falls ("likelihood displacement"), which for a recommender means the target drops
    out of the top items. Diagnostics: ``margin`` (mean beta * (r_chosen - r_j)), ``accuracy`` (share of examples whose chosen
    response beats every negative), ``reward_chosen`` / ``reward_rejected`` (mean beta * r).
    """
    rewards = beta * (policy - ref.to(policy.device))
    logits = rewards[:, :1] - rewards[:, 1:]  # (B, K): chosen against each negative
    if method == "dpo":
        loss = -F.logsigmoid(logits).mean()
    elif method == "sdpo":
        loss = -F.logsigmoid(-torch.logsumexp(-logits, dim=1)).mean()
    else:
        raise ValueError(f"unknown preference method {method!r}; expected one of {METHODS}")
    nll = -policy[:, 0].mean()
    if sft_weight:
        loss = loss + sft_weight * nll
    with torch.no_grad():
        stats = {
            "margin": float(logits.mean()),
            "accuracy": float((logits > 0).all(1).float().mean()),
            "reward_chosen": float(rewards[:, 0].mean()),
            "reward_rejected": float(rewards[:, 1:].mean()),
            "chosen_nll": float(nll),
        }
    return loss, stats


class LoggedDiagnostics:
    """Mixed into a ``Trainer``: diagnostics recorded per step (``record``) are averaged into the next
    loss log, so they reach ``log_history``, ``trainer_state.json`` and grec's ``log.json``."""

    def record(self, stats: dict[str, float]) -> None:
        for key, value in stats.items():
            self.__dict__.setdefault("_diagnostics", {}).setdefault(key, []).append(value)

    def log(self, logs: dict, *args, **kwargs):
        pending = self.__dict__.pop("_diagnostics", None)
        if "loss" in logs and pending:
            logs.update({key: round(sum(v) / len(v), 6) for key, v in pending.items()})
        elif pending:
            self.__dict__["_diagnostics"] = pending
        super().log(logs, *args, **kwargs)


def preference_trainer_class():
    """A ``transformers.Trainer`` whose loss is ``preference_loss``; its diagnostics join the logged loss."""
    from transformers import Trainer

    class PreferenceTrainer(LoggedDiagnostics, Trainer):
        def __init__(
            self, *args, method: str, beta: float, seq2seq: bool, by_mask: bool, sft_weight: float = 0.0, **kwargs
        ):
            super().__init__(*args, **kwargs)
            self.method, self.beta, self.seq2seq, self.by_mask = method, beta, seq2seq, by_mask
            self.sft_weight = sft_weight
            self.loss_is_scaled_for_ga = False  # a mean per micro-batch: the Trainer divides by accumulation steps

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            ref = inputs.pop("ref")
            logps = sequence_logps(model, inputs, self.seq2seq, self.by_mask).view(ref.shape)
            loss, stats = preference_loss(self.method, logps, ref, self.beta, self.sft_weight)
            if model.training:
                self.record(stats)
            return (loss, {"logps": logps}) if return_outputs else loss

    return PreferenceTrainer


def disable_dropout(model) -> None:
    """Dropout off in the policy (as trl's DPO does by default): the reference is computed without it, so
    with it the margins would start as noise instead of zero."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    config = getattr(model, "config", None)
    for name in ("attention_dropout", "dropout_rate", "hidden_dropout", "attention_probs_dropout_prob"):
        if config is not None and isinstance(getattr(config, name, None), float):
            setattr(config, name, 0.0)
