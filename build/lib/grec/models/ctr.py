"""CTR models over encoded features: LR, FM, DeepFM, DCNv2.

Every model reads the same batch: ``single`` (batch x fields ids), ``multi`` (batch x fields x
len ids, mean-pooled), ``dense`` (batch x values in [0, 1]) and ``labels`` (0/1). The embedding
tables are named by feature (``embed.<name>``, ``linear.<name>``) so that incremental training
can grow each one and report it by name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from grec.base.registry import MODELS


def table_key(name: str) -> str:
    """ModuleDict keys cannot contain dots; feature names may."""
    return name.replace(".", "_")


class FieldInputs(nn.Module):
    """Per-field embeddings (batch x fields x dim) and first-order weights (batch x fields)."""

    def __init__(self, fields: dict, dim: int):
        super().__init__()
        self.single = [table_key(n) for n, _ in fields["single"]]
        self.multi = [table_key(n) for n, _ in fields["multi"]]
        sizes = dict((table_key(n), s) for n, s in fields["single"] + fields["multi"])
        self.embed = nn.ModuleDict({n: nn.Embedding(s, dim, padding_idx=0) for n, s in sizes.items()})
        self.linear = nn.ModuleDict({n: nn.Embedding(s, 1, padding_idx=0) for n, s in sizes.items()})
        self.dense_embed = nn.Parameter(torch.randn(len(fields["dense"]), dim) * 0.01)
        self.dense_linear = nn.Parameter(torch.zeros(len(fields["dense"])))
        for table in self.embed.values():
            nn.init.normal_(table.weight, std=0.01)
        for table in self.linear.values():
            nn.init.zeros_(table.weight)
        self.num_fields = len(sizes) + len(fields["dense"])
        self.dim = dim

    def forward(self, single, multi, dense) -> tuple[torch.Tensor, torch.Tensor]:
        embeds, firsts = [], []
        for k, name in enumerate(self.single):
            embeds.append(self.embed[name](single[:, k]))
            firsts.append(self.linear[name](single[:, k]).squeeze(-1))
        for k, name in enumerate(self.multi):
            ids = multi[:, k]
            count = (ids > 0).sum(1, keepdim=True).clamp(min=1)
            embeds.append(self.embed[name](ids).sum(1) / count)
            firsts.append(self.linear[name](ids).squeeze(-1).sum(1) / count.squeeze(1))
        emb = torch.stack(embeds, 1) if embeds else dense.new_zeros(dense.shape[0], 0, self.dim)
        first = torch.stack(firsts, 1) if firsts else dense.new_zeros(dense.shape[0], 0)
        if dense.shape[1]:
            emb = torch.cat([emb, dense.unsqueeze(-1) * self.dense_embed], 1)
            first = torch.cat([first, dense * self.dense_linear], 1)
        return emb, first


def mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class _CtrModel(nn.Module):
    def __init__(self, fields: dict, embed_dim: int):
        super().__init__()
        self.inputs = FieldInputs(fields, embed_dim)
        self.bias = nn.Parameter(torch.zeros(1))

    def logit(self, emb: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, single, multi, dense, labels=None) -> dict:
        emb, first = self.inputs(single, multi, dense)
        logits = self.logit(emb, first) + self.bias
        if labels is None:
            return {"logits": logits}
        return {"loss": F.binary_cross_entropy_with_logits(logits, labels), "logits": logits}


def fm_term(emb: torch.Tensor) -> torch.Tensor:
    """Second-order factorisation-machine interactions: 0.5 * sum((sum v)^2 - sum v^2)."""
    return 0.5 * (emb.sum(1).pow(2) - emb.pow(2).sum(1)).sum(1)


@MODELS.register("lr")
class LR(_CtrModel):
    """Logistic regression on one-hot features. Args: fields (from the data), embed_dim (unused but kept for growth)."""

    def __init__(self, fields: dict, embed_dim: int = 1):
        super().__init__(fields, embed_dim)

    def logit(self, emb, first):
        return first.sum(1)


@MODELS.register("fm")
class FM(_CtrModel):
    """Factorisation machine (Rendle 2010). Args: fields (from the data), embed_dim."""

    def __init__(self, fields: dict, embed_dim: int = 16):
        super().__init__(fields, embed_dim)

    def logit(self, emb, first):
        return first.sum(1) + fm_term(emb)


@MODELS.register("deepfm")
class DeepFM(_CtrModel):
    """DeepFM (Guo et al. 2017): FM plus an MLP over the concatenated embeddings. Args: embed_dim, hidden, dropout."""

    def __init__(self, fields: dict, embed_dim: int = 16, hidden: list[int] | None = None, dropout: float = 0.2):
        super().__init__(fields, embed_dim)
        width = self.inputs.num_fields * embed_dim
        self.deep = mlp([width, *(hidden or [256, 128])], dropout)
        self.out = nn.Linear((hidden or [256, 128])[-1], 1)

    def logit(self, emb, first):
        return first.sum(1) + fm_term(emb) + self.out(self.deep(emb.flatten(1))).squeeze(-1)


@MODELS.register("dcnv2")
class DCNv2(_CtrModel):
    """DCN-V2 (Wang et al. 2021), stacked: full-rank cross layers x_{l+1} = x0 * (W x_l + b) + x_l, then an MLP.
    Args: embed_dim, cross_layers, hidden, dropout."""

    def __init__(
        self,
        fields: dict,
        embed_dim: int = 16,
        cross_layers: int = 3,
        hidden: list[int] | None = None,
        dropout: float = 0.2,
    ):
        super().__init__(fields, embed_dim)
        width = self.inputs.num_fields * embed_dim
        self.cross = nn.ModuleList(nn.Linear(width, width) for _ in range(cross_layers))
        self.deep = mlp([width, *(hidden or [256, 128])], dropout)
        self.out = nn.Linear((hidden or [256, 128])[-1], 1)

    def logit(self, emb, first):
        x0 = x = emb.flatten(1)
        for layer in self.cross:
            x = x0 * layer(x) + x
        return self.out(self.deep(x)).squeeze(-1)
