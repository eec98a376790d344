"""What the item-id sequence models (SASRec, HSTU) share: right-padded inputs, the query at each
sequence's last item, and the next-item loss in the references' two forms.

Sequences are right-padded with item 0, so causal attention never lets a real position see a pad.
Scores are dot products between a position's hidden state and the item embedding table; with
``l2_norm`` both sides are unit vectors and the scores are divided by ``temperature`` (the
settings of the HSTU paper's ML-1M configs: temperature 0.05, 128 negatives).

- ``loss="ce"``: full softmax over every item (SASRec as grec trained it so far).
- ``loss="sampled"``: sampled softmax, the target against ``negatives`` items drawn uniformly from
  the catalog for each sequence and shared by its positions (the reference draws them per position;
  per sequence turns a gather of ``positions x negatives x dim`` floats into one batched matrix
  product, which is what makes 200-item histories affordable on a CPU, while a batch still draws
  ``batch x negatives`` items: one set for the whole batch learned far worse, most items then getting
  no negative gradient in a step). A drawn negative equal to a position's target is masked out there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from grec.base.errors import GrecError
from grec.lm.cpu_dropout import dropout as cpu_dropout

LOSSES = ("ce", "sampled")


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout; on the CPU with the mask drawn by ``grec.lm.cpu_dropout`` (half the cost of torch's
    ``bernoulli_``, which was over a third of a SASRec step at 200 items)."""
    if x.is_cuda or not training or not p:
        return F.dropout(x, p, training)
    return cpu_dropout(x, p)


@dataclass(frozen=True)
class NextItemLoss:
    """How a sequence model's hidden states score items and how it learns."""

    loss: str = "ce"
    negatives: int = 128
    temperature: float = 1.0
    l2_norm: bool = False

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise GrecError(f"--model_args: loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.negatives < 1:
            raise GrecError(f"--model_args: negatives must be at least 1, got {self.negatives}")
        if not self.temperature > 0:
            raise GrecError(f"--model_args: temperature must be positive, got {self.temperature}")

    def _unit(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1, eps=1e-6) if self.l2_norm else x

    def logits(self, hidden: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Scores ``... x rows(table)`` of every item for each hidden state."""
        return self._unit(hidden) @ self._unit(table).T / self.temperature

    def __call__(self, hidden: torch.Tensor, labels: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Mean loss of ``hidden`` (``batch x len x dim``) predicting ``labels`` (``batch x len`` item ids,
        1-based; 0 where a position has no target); ``table`` holds row 0 (padding) and one row per item."""
        keep = labels > 0
        if self.loss == "ce":
            return F.cross_entropy(self.logits(hidden[keep], table), labels[keep])
        query = self._unit(hidden)
        drawn = torch.randint(1, table.shape[0], (len(labels), self.negatives), device=labels.device)
        positive = (query * self._unit(table[labels])).sum(-1, keepdim=True)
        negative = (query @ self._unit(table[drawn]).transpose(1, 2)).masked_fill(
            labels[..., None] == drawn[:, None, :], float("-inf")
        )
        logits = torch.cat([positive, negative], dim=-1)[keep] / self.temperature
        return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))


class ItemSequenceModel(nn.Module):
    """What SASRec and HSTU share: item and position embeddings, the objective, ``scores`` and ``forward``.
    A subclass builds its blocks and defines ``encode(input_ids)``, starting from ``embed(input_ids)``."""

    def __init__(self, num_items: int, max_len: int, dim: int, dropout: float, objective: NextItemLoss):
        super().__init__()
        self.num_items, self.max_len, self.dropout, self.objective = num_items, max_len, dropout, objective
        self.items = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, dim)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Item embedding x sqrt(dim) + the position's, dropped out, zero at padding: ``batch x len x dim``."""
        n = input_ids.shape[1]
        if n > self.max_len:
            raise GrecError(f"sequences of {n} items; the model reads at most max_len={self.max_len}")
        x = self.items(input_ids) * math.sqrt(self.items.embedding_dim) + self.positions.weight[:n]
        return dropout(x, self.dropout, self.training) * (input_ids > 0).unsqueeze(-1)

    def encode(self, input_ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Scores ``batch x (num_items + 1)`` for the item after each sequence (column 0 is padding)."""
        return self.objective.logits(last_positions(self.encode(input_ids), input_ids), self.items.weight)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        if labels is None:
            return {"logits": self.scores(input_ids)}
        return {"loss": self.objective(self.encode(input_ids), labels, self.items.weight)}


def lengths(input_ids: torch.Tensor) -> torch.Tensor:
    """Real items in each right-padded row (item 0 is padding)."""
    return (input_ids > 0).sum(dim=1)


def last_positions(hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """The hidden state at each row's last real item, ``batch x dim`` (position 0 for an empty row)."""
    last = (lengths(input_ids) - 1).clamp(min=0)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def right_pad(sequences: list[list[int]], length: int) -> torch.Tensor:
    """Each sequence's last ``length`` items from column 0, zeros after."""
    out = torch.zeros(len(sequences), length, dtype=torch.long)
    for row, seq in enumerate(sequences):
        seq = seq[-length:]
        if seq:
            out[row, : len(seq)] = torch.tensor(seq)
    return out
