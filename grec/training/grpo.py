"""GRPO for generative recommenders: a group of catalog items per prompt, rewarded and compared within it.

Per prompt the policy proposes ``G`` items: its SID-constrained beam (``rollout="beam"``, history
excluded: every rollout is a real, new item and no two are the same), or ``G`` draws from it
restricted to the catalog (``rollout="sample"``, code by code at a temperature; items may repeat),
ordered most likely first. Each gets a reward; advantages are the
rewards normalised within the group; the loss is the clipped policy-gradient objective on each
item's sequence log-probability plus ``kl_coef`` times a KL estimate to the frozen reference
(``exp(ref - pi) - (ref - pi) - 1``, non-negative, as in DeepSeek-Math's GRPO).

Beam rollouts are not samples from the policy: they are its G most likely new items. The
estimator is then not the unbiased policy gradient of the expected reward (sampled rollouts at
temperature 1 give that one, noisier); it sharpens the
ranking among the items the model already ranks highest (what top-K metrics score), and items
outside the beam get no gradient. Each group is used for one optimisation step, so the ratio to
the policy that made it is 1 when the step is taken and the clip only bounds what a second pass
would do; it is kept so the objective reads as in the papers.

Rewards (``REWARDS``): ``hit`` 1 for the target, 0 otherwise; ``ndcg`` 1 / log2(rank + 2) for the
target at its beam rank; ``rank_aware`` (MiniOneRec's idea): 1 for the target, and each wrong item
a penalty 1 / log2(rank + 2) shared out so a group's penalties sum to -1, so confident mistakes cost
most; ``collab``: 1 for the target, wrong items the co-occurrence similarity (0..1) to the user's
last history item, so near misses earn partial credit.
"""

from __future__ import annotations

import logging
import math

import torch

from grec.training.preference import (
    LoggedDiagnostics,
    PreferenceCollator,
    fitted_prompts,
    preference_example,
    sequence_logps,
    sid_responses,
)

logger = logging.getLogger("grec")
REWARDS = ("hit", "ndcg", "rank_aware", "collab")


def rewards(kind: str, items: list[list[str]], targets: list[str], histories=None, collab=None) -> torch.Tensor:
    """(prompts, G) rewards of each group's items (in beam order) against each prompt's target."""
    out = torch.zeros(len(items), max(map(len, items)))
    for row, (group, target) in enumerate(zip(items, targets)):
        discounts = [1.0 / math.log2(rank + 2) for rank in range(len(group))]
        wrong = sum(d for d, item in zip(discounts, group) if item != target)
        for rank, item in enumerate(group):
            if item == target:
                out[row, rank] = discounts[rank] if kind == "ndcg" else 1.0
            elif kind == "rank_aware":
                out[row, rank] = -discounts[rank] / wrong
            elif kind == "collab" and collab is not None and histories and histories[row]:
                out[row, rank] = collab(str(histories[row][-1]), item)
    return out


def group_advantages(reward: torch.Tensor) -> torch.Tensor:
    """Rewards normalised within each group (row); a group whose items all earn the same gets zeros."""
    std = reward.std(dim=1, keepdim=True, unbiased=False)
    return (reward - reward.mean(dim=1, keepdim=True)) / (std + 1e-4)


def grpo_loss(
    policy: torch.Tensor, old: torch.Tensor, ref: torch.Tensor, advantages: torch.Tensor, clip: float, kl_coef: float
) -> tuple[torch.Tensor, dict]:
    """Clipped objective plus KL to the reference, all (prompts, G) sequence log-probabilities."""
    ratio = torch.exp(policy - old)
    objective = torch.minimum(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    log_ref_ratio = ref - policy
    kl = torch.exp(log_ref_ratio) - log_ref_ratio - 1
    loss = -(objective - kl_coef * kl).mean()
    return loss, {"kl": float(kl.mean())}


def grpo_trainer_class():
    """A ``transformers.Trainer`` whose batches are prompts; it rolls out, rewards and steps per batch.

    Built with ``ranker`` (a ``grec.decoding.Ranker`` over the policy, G beams and returns),
    ``layout(records, items)`` (token rows of the prompts with each item's SID response),
    ``reference()`` (a context in which the policy computes reference log-probabilities, or a
    frozen model), ``reward`` and ``collab`` (see ``rewards``), ``clip``, ``kl_coef``, ``seq2seq``
    and ``by_mask``.
    """
    from transformers import Trainer

    class GRPOTrainer(LoggedDiagnostics, Trainer):
        def __init__(
            self, *args, ranker, rollout, temperature, layout, reference, reward, collab, clip, kl_coef, seq2seq,
            by_mask, **kwargs,
        ):  # fmt: skip
            super().__init__(*args, **kwargs)
            self.ranker, self.layout, self.reference = ranker, layout, reference
            self.rollout, self.temperature = rollout, temperature
            self.loss_is_scaled_for_ga = False  # a mean per micro-batch: the Trainer divides by accumulation steps
            self.reward_kind, self.collab, self.clip, self.kl_coef = reward, collab, clip, kl_coef
            self.seq2seq, self.by_mask = seq2seq, by_mask
            self._first_distinct: float | None = None

        def rollouts(self, model, records: list[dict]) -> list[list[str]]:
            was_training = model.training
            model.eval()
            try:
                if self.rollout == "sample":
                    return self.ranker.sample(records, self.ranker.beams, self.temperature, exclude_history=True)
                return [items for items, _ in self.ranker.rank(records, exclude_history=True)]
            finally:
                model.train(was_training)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            records = inputs["records"]
            items = self.rollouts(self.accelerator.unwrap_model(model), records)
            reward = rewards(
                self.reward_kind,
                items,
                [str(r["target"]) for r in records],
                [r.get("history") for r in records],
                self.collab,
            )
            advantages = group_advantages(reward)
            batch = {k: v.to(self.args.device) for k, v in self.layout(records, items).items() if k != "ref"}
            policy = sequence_logps(model, batch, self.seq2seq, self.by_mask).view(reward.shape)
            with torch.no_grad():
                ref = self.reference(batch).view(reward.shape)
            loss, stats = grpo_loss(policy, policy.detach(), ref, advantages.to(policy.device), self.clip, self.kl_coef)
            distinct = len({i for group in items for i in group}) / max(1, sum(map(len, items)))
            self._first_distinct = self._first_distinct if self._first_distinct is not None else distinct
            if distinct < 0.5 * self._first_distinct:
                logger.warning(
                    "align: rollouts are collapsing: %.0f%% distinct items per batch, %.0f%% at the start; lower "
                    "--learning_rate or raise --kl_coef",
                    100 * distinct,
                    100 * self._first_distinct,
                )
            stats |= {
                "reward_mean": float(reward.mean()),
                "reward_std": float(reward.std()),
                "hit_rate": float(sum(str(r["target"]) in g for r, g in zip(records, items)) / len(records)),
                "valid_rollouts": 1.0,  # constrained decoding proposes only catalog items
                "distinct_items": distinct,
            }
            self.record(stats)
            return (loss, {"logps": policy}) if return_outputs else loss

    return GRPOTrainer


def response_layout(tokenizer, sid_map, seq2seq: bool, cutoff_len: int):
    """``layout(records, items)``: the padded batch of every (prompt, item SID) row, cut as in training."""
    collator = PreferenceCollator(tokenizer.pad_token_id)

    def layout(records: list[dict], items: list[list[str]]) -> dict:
        responses = sid_responses(tokenizer, sid_map, items)
        prompts = fitted_prompts(records, tokenizer, seq2seq, cutoff_len, responses)
        return collator([preference_example(p, group, seq2seq) for p, group in zip(prompts, responses)])

    return layout
