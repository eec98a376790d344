"""One training step of the item-id sequence models at the published ML-1M size, side by side with
the SASRec step grec had before right padding (explicit attention mask, attention dropout through
torch's ``bernoulli_``, full softmax): 8 blocks, 50 wide, 2 heads, 128 histories of 200 items,
3,706 items (HSTU-large's ML-1M configuration in meta-recsys/generative-recommenders).

Every model runs in this one process on the same batch, warm-up step first, then the median of
``--steps`` timed steps (forward, backward, AdamW). The last lines give each one's speed-up over the
old step. Writes docs/bench/seqrec_step.json with the provenance of the figures.

    .venv/bin/python bench/seqrec_step.py              # ~2 minutes on a 2-core CPU
    .venv/bin/python bench/train.py --seqrec           # the same
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from provenance import provenance
from torch import nn

from grec.base.io import write_json
from grec.models.hstu import HSTU
from grec.models.sasrec import SASRec

ROOT = Path(__file__).resolve().parent.parent


class _OldBlock(nn.Module):
    """grec's SASRec block before right padding (commit f929eb3), for the baseline."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(attn.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ffn(self.norm2(x)))


class OldSASRec(nn.Module):
    """grec's SASRec before right padding: left-padded, a boolean mask per batch, full softmax."""

    def __init__(self, num_items: int, max_len: int, dim: int, layers: int, heads: int, dropout: float = 0.2):
        super().__init__()
        self.items = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(_OldBlock(dim, heads, dropout) for _ in range(layers))
        self.norm, self.drop = nn.LayerNorm(dim), nn.Dropout(dropout)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> dict:
        n = input_ids.shape[1]
        x = self.items(input_ids) * math.sqrt(self.items.embedding_dim) + self.positions.weight[-n:]
        x = self.drop(x) * (input_ids > 0).unsqueeze(-1)
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        mask = (causal & (input_ids > 0)[:, None, :]) | torch.eye(n, dtype=torch.bool)
        for block in self.blocks:
            x = block(x, mask[:, None])
        hidden = self.norm(x)
        keep = labels > 0
        return {"loss": F.cross_entropy(hidden[keep] @ self.items.weight.T, labels[keep])}


def models(items: int, length: int, layers: int) -> dict[str, nn.Module]:
    size = dict(num_items=items, max_len=length, dim=50, layers=layers, heads=2)
    sampled = dict(loss="sampled", negatives=128, temperature=0.05, l2_norm=True)
    return {
        "sasrec_before (mask, attention dropout, full softmax)": OldSASRec(**size),
        "sasrec (right-padded, causal kernel, full softmax)": SASRec(**size),
        "sasrec (right-padded, sampled softmax 128)": SASRec(**size, **sampled),
        "hstu (sampled softmax 128)": HSTU(**size, **sampled),
    }


def time_steps(model: nn.Module, batch: torch.Tensor, steps: int) -> list[float]:
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    seconds = []
    for step in range(steps + 1):
        start = time.perf_counter()
        model(batch[:, :-1], batch[:, 1:])["loss"].backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        if step:  # the first step warms the allocator and kernels up
            seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model (after one warm-up step)")
    parser.add_argument("--layers", type=int, default=8, help="blocks (8: HSTU-large)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--length", type=int, default=200, help="items per history")
    parser.add_argument("--items", type=int, default=3706, help="catalog size (ML-1M: 3,706)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench" / "seqrec_step.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    batch = torch.randint(1, args.items + 1, (args.batch, args.length + 1))
    rows = {}
    for name, model in models(args.items, args.length, args.layers).items():
        seconds = time_steps(model, batch, args.steps)
        rows[name] = {"median_s": round(statistics.median(seconds), 3), "steps_s": [round(s, 3) for s in seconds]}
        print(f"{name:60s} {rows[name]['median_s']:.2f} s/step")
    before = next(iter(rows.values()))["median_s"]
    for name, row in rows.items():
        row["speedup"] = round(before / row["median_s"], 2)
        print(f"speed-up over the old SASRec step: {row['speedup']:.2f}x  {name}")
    size = {k: getattr(args, k) for k in ("layers", "batch", "length", "items")} | {"dim": 50, "heads": 2}
    write_json(args.out, {**provenance(), "threads": torch.get_num_threads(), "size": size, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
