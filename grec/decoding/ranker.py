"""``Ranker``: a model, its tokenizer and SID map -> ranked catalog items for batches of records.

Shared by inference.py and by training's per-epoch NDCG evaluation (``--eval_metric ndcg``).
"""

from __future__ import annotations

import torch

from grec.base.errors import GrecError
from grec.base.prompts import bos_prefix, fit_prompt, prompt_token_ids
from grec.base.sid import SidMap
from grec.base.sid.tokens import sid_token_ids
from grec.decoding import SidIndex, sid_beam_search, sid_sample
from grec.decoding.hf import hf_constrained_generate


def prompt_batch(records: list[dict], tokenizer, cutoff_len: int, seq2seq: bool, device, response_length: int):
    """Token ids and mask of the records' prompts; causal prompts pad on the left, encoder inputs on the right.

    Each prompt is cut by ``fit_prompt`` as in training, with ``response_length`` tokens (what the
    model generates, end-of-sequence included) reserved.
    """
    bos = bos_prefix(tokenizer, seq2seq)
    ids = [fit_prompt(t, bos, cutoff_len, response_length) for t in prompt_token_ids(records, tokenizer)]
    if ids and ids[0] is None:
        raise GrecError(
            f"--cutoff_len {cutoff_len} leaves no room for a prompt beside the {response_length}-token "
            f"response; raise it"
        )
    width = max(map(len, ids))
    pad = tokenizer.pad_token_id
    if seq2seq:
        rows = [t + [pad] * (width - len(t)) for t in ids]
        masks = [[1] * len(t) + [0] * (width - len(t)) for t in ids]
    else:  # every prompt ends where generation starts
        rows = [[pad] * (width - len(t)) + t for t in ids]
        masks = [[0] * (width - len(t)) + [1] * len(t) for t in ids]
    return torch.tensor(rows, device=device), torch.tensor(masks, device=device)


def excluded_items(
    records: list[dict], exclude_history: bool, exclude: list[list[str]] | None
) -> list[set[str]] | None:
    """Per record, the items never to recommend: its history (when ``exclude_history``) and ``exclude[k]``."""
    if not exclude_history and exclude is None:
        return None
    skipped = [set(map(str, r.get("history", []))) if exclude_history else set() for r in records]
    for items, extra in zip(skipped, exclude or []):
        items.update(map(str, extra))
    return skipped


class Ranker:
    """Ranks catalog items for records with SID-constrained beam search.

    Args:
        model, tokenizer: a trained model whose tokenizer holds the SID tokens.
        sid_map: the catalog.
        seq2seq: the model is an encoder-decoder.
        num_beams: beams per user (clamped to the catalog size).
        num_return_sequences: items per user.
        cutoff_len: most prompt tokens.
        method: vectorised or hf.
        device: where the model runs.
    """

    def __init__(
        self,
        model,
        tokenizer,
        sid_map: SidMap,
        seq2seq: bool,
        num_beams: int,
        num_return_sequences: int,
        cutoff_len: int = 512,
        method: str = "vectorised",
        device="cpu",
    ):
        self.model, self.tokenizer, self.sid_map, self.seq2seq = model, tokenizer, sid_map, seq2seq
        self.index = SidIndex.build(sid_map, sid_token_ids(tokenizer, sid_map), device)
        self.beams = min(num_beams, len(sid_map))
        self.returned = min(num_return_sequences, self.beams)
        self.cutoff_len, self.method, self.device = cutoff_len, method, device
        self.row_of = {item: k for k, item in enumerate(self.index.item_ids)}
        self.response_length = self.index.levels + 1  # the SID's tokens and end-of-sequence, as in training

    @torch.no_grad()
    def rank(
        self, records: list[dict], exclude_history: bool = False, exclude: list[list[str]] | None = None
    ) -> list[tuple[list[str], list[float]]]:
        """(item ids, scores) per record, best first; the record's history items skipped when
        ``exclude_history``, and ``exclude[k]``'s items for record k (the vectorised method only)."""
        ids, mask = prompt_batch(
            records, self.tokenizer, self.cutoff_len, self.seq2seq, self.device, self.response_length
        )
        if self.method == "hf":
            rows, scores = hf_constrained_generate(
                self.model,
                ids,
                mask,
                self.index,
                self.beams,
                self.returned,
                self.tokenizer.eos_token_id,
                self.tokenizer.pad_token_id,
                self.seq2seq,
            )
            rows, scores = torch.as_tensor(rows), scores.cpu()
        else:
            skipped = excluded_items(records, exclude_history, exclude)
            rows = [[self.row_of[i] for i in items if i in self.row_of] for items in skipped] if skipped else None
            result = sid_beam_search(self.model, ids, mask, self.index, self.beams, self.returned, self.seq2seq, rows)
            rows, scores = result.items.cpu(), result.scores.cpu()
        out = []
        for row, score in zip(rows.tolist(), scores.tolist()):
            kept = [(r, s) for r, s in zip(row, score) if r >= 0]
            out.append(([self.index.item_ids[r] for r, _ in kept], [float(s) for _, s in kept]))
        return out

    @torch.no_grad()
    def sample(
        self, records: list[dict], num_samples: int, temperature: float = 1.0, exclude_history: bool = True
    ) -> list[list[str]]:
        """``num_samples`` catalog items per record drawn from the model (``sid_sample``; items may repeat),
        most likely first; the record's history skipped when ``exclude_history``."""
        ids, mask = prompt_batch(
            records, self.tokenizer, self.cutoff_len, self.seq2seq, self.device, self.response_length
        )
        skipped = excluded_items(records, exclude_history, None)
        rows = [[self.row_of[i] for i in items if i in self.row_of] for items in skipped] if skipped else None
        result = sid_sample(self.model, ids, mask, self.index, num_samples, temperature, self.seq2seq, rows)
        order = result.scores.argsort(dim=1, descending=True)
        picked = result.items.gather(1, order).cpu().tolist()
        return [[self.index.item_ids[r] for r in row if r >= 0] for row in picked]
