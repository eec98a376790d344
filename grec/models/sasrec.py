"""SASRec (Kang & McAuley, 2018): a causal self-attention encoder over item ids.

Item 0 is padding; sequences are right-padded (``grec.models.next_item``), so attention runs as
``scaled_dot_product_attention(is_causal=True)`` with no mask tensor: a real position only ever sees
earlier real positions. Positions count from the sequence's first item. The output at each position
scores every item by a dot product with the (shared) item embeddings; the loss is full-softmax
cross-entropy or sampled softmax (``loss``, ``negatives``, ``temperature``, ``l2_norm``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from grec.base.errors import GrecError
from grec.base.registry import MODELS
from grec.models.next_item import ItemSequenceModel, NextItemLoss, dropout


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, attn_dropout: float):
        super().__init__()
        self.heads, self.dropout, self.attn_dropout = heads, dropout, attn_dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ffn1, self.ffn2 = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0
        attn = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        x = x + dropout(self.proj(attn.transpose(1, 2).reshape(b, n, d)), self.dropout, self.training)
        hidden = dropout(F.gelu(self.ffn1(self.norm2(x))), self.dropout, self.training)
        return x + dropout(self.ffn2(hidden), self.dropout, self.training)


@MODELS.register("sasrec")
class SASRec(ItemSequenceModel):
    """Args: num_items and max_len (from the data), dim, layers, heads, dropout, attn_dropout (on the attention
    weights: 6x the cost of the attention itself on a CPU, where no fused kernel takes it), loss (ce or
    sampled), negatives, temperature, l2_norm."""

    def __init__(
        self,
        num_items: int,
        max_len: int = 50,
        dim: int = 64,
        layers: int = 2,
        heads: int = 1,
        dropout: float = 0.2,
        attn_dropout: float = 0.0,
        loss: str = "ce",
        negatives: int = 128,
        temperature: float = 1.0,
        l2_norm: bool = False,
    ):
        if dim % heads:
            raise GrecError(f"--model_args: dim {dim} is not divisible by heads {heads}")
        super().__init__(num_items, max_len, dim, dropout, NextItemLoss(loss, negatives, temperature, l2_norm))
        self.blocks = nn.ModuleList(_Block(dim, heads, dropout, attn_dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.items.weight, std=dim**-0.5)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def encode(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Hidden states ``batch x len x dim`` of right-padded item sequences."""
        x = self.embed(input_ids)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
