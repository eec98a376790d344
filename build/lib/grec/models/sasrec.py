"""SASRec (Kang & McAuley, 2018): a causal self-attention encoder over item ids.

Item 0 is padding; sequences are left-padded. The output at each position scores every item
by a dot product with the (shared) item embeddings, trained with full-softmax cross-entropy.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from grec.base.registry import MODELS


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(attn.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ffn(self.norm2(x)))


@MODELS.register("sasrec")
class SASRec(nn.Module):
    """Args: num_items (from the data), max_len, dim, layers, heads, dropout."""

    def __init__(
        self, num_items: int, max_len: int = 50, dim: int = 64, layers: int = 2, heads: int = 1, dropout: float = 0.2
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.num_items, self.max_len = num_items, max_len
        self.items = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(_Block(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        nn.init.normal_(self.items.weight, std=dim**-0.5)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def encode(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Hidden states ``batch x len x dim`` of left-padded item sequences."""
        n = input_ids.shape[1]
        x = self.items(input_ids) * math.sqrt(self.items.embedding_dim) + self.positions.weight[-n:]
        x = self.drop(x) * (input_ids > 0).unsqueeze(-1)
        causal = torch.ones(n, n, dtype=torch.bool, device=input_ids.device).tril()
        # a position sees earlier real items and always itself (a padded row would otherwise see nothing)
        mask = (causal & (input_ids > 0)[:, None, :]) | torch.eye(n, dtype=torch.bool, device=input_ids.device)
        for block in self.blocks:
            x = block(x, mask[:, None])
        return self.norm(x)

    def scores(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Scores ``batch x (num_items + 1)`` for the item after each sequence (column 0 is padding)."""
        return self.encode(input_ids)[:, -1] @ self.items.weight.T

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        hidden = self.encode(input_ids)
        if labels is None:
            return {"logits": hidden[:, -1] @ self.items.weight.T}
        keep = labels > 0
        logits = hidden[keep] @ self.items.weight.T
        return {"loss": F.cross_entropy(logits, labels[keep])}
