"""Title mode: generate item titles (constrained to the catalog's, or free) and ground them to items.

Grounding (BIGRec): embed a generated title, rank every item by the L2 distance between that
embedding and the item title's, optionally multiplied by ``(1 + ci)^-gamma`` with ``ci`` a
collaborative or popularity score per item, so popular items move up as gamma grows; gamma = inf
ranks by ``ci`` alone, so a grid from 0 to inf spans both ingredients.
"""

from __future__ import annotations

import numpy as np
import torch

from grec.decoding.caches import encode_prompts
from grec.decoding.fusion import ground, tune_fusion
from grec.decoding.neighbours import NearestItems
from grec.decoding.ranker import excluded_items, prompt_batch
from grec.decoding.title_trie import (
    AssistantScores,
    TitlePrefixConstraint,
    TitleTrie,
    longest_output,
    title_outputs,
)


def title_config(num_beams: int, num_return: int, max_new_tokens: int, eos: int, pad: int):
    from transformers import GenerationConfig

    return GenerationConfig(
        do_sample=False,
        num_beams=num_beams,
        num_return_sequences=num_return,
        length_penalty=0.0,
        max_new_tokens=max_new_tokens,
        early_stopping=True,
        eos_token_id=eos,
        pad_token_id=pad,
        temperature=None,
        top_k=None,
        top_p=None,
    )


def prefill(model, ids: torch.Tensor, mask: torch.Tensor, num_beams: int):
    """A causal model's cache of each prompt but its last token, computed once and repeated for every beam.

    ``generate`` repeats the prompts for their beams before its first forward, so without this a
    prompt is encoded ``num_beams`` times; handed this cache it runs only the last prompt token.
    Positions follow ``generate``'s own (``encode_prompts``).
    """
    out, _ = encode_prompts(model, ids[:, :-1], mask[:, :-1])
    out.past_key_values.batch_repeat_interleave(num_beams)
    return out.past_key_values


@torch.no_grad()
def generate_titles(
    model,
    tokenizer,
    records: list[dict],
    num_beams: int,
    num_return: int,
    seq2seq: bool,
    trie: TitleTrie | None,
    cutoff_len: int = 512,
    max_new_tokens: int = 64,
    device="cpu",
    response_length: int | None = None,
    excluded: list[set[str]] | None = None,
    processor=None,
):
    """Per record: generated token sequences (best first), constrained to catalog titles when ``trie`` is given.

    Prompts are cut as in training with ``response_length`` tokens reserved (default: the longest
    catalog title of ``trie``, else ``max_new_tokens``). ``excluded``: per record, items the
    constrained search may not end on. ``processor``: a function of the prompt length that returns
    a logits processor to add to the search (``AssistantScores``).
    """
    if response_length is None:
        response_length = trie.longest if trie is not None else max_new_tokens
    ids, mask = prompt_batch(records, tokenizer, cutoff_len, seq2seq, device, response_length)
    prompt_length = 1 if seq2seq else ids.shape[1]
    constraint = TitlePrefixConstraint(trie, prompt_length, excluded) if trie is not None else None
    config = title_config(num_beams, num_return, max_new_tokens, tokenizer.eos_token_id, tokenizer.pad_token_id)
    cache = None if seq2seq or ids.shape[1] < 2 else prefill(model, ids, mask, num_beams)
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        generation_config=config,
        past_key_values=cache,
        prefix_allowed_tokens_fn=constraint,
        logits_processor=None if processor is None else [processor(prompt_length)],
    )
    sequences = out[:, prompt_length:].tolist()
    return [sequences[k * num_return : (k + 1) * num_return] for k in range(len(records))]


def constrained_items(trie: TitleTrie, sequences: list[list[int]]) -> list[str]:
    """Items of the generated titles, best first; shared titles give all their items; no repeats."""
    ranked: dict[str, None] = {}
    for tokens in sequences:
        for item in trie.items(tokens):
            ranked.setdefault(item, None)
    return list(ranked)


class TitleRanker:
    """Ranks items for records in title mode; the same ``rank(records)`` interface as the SID ``Ranker``.

    Args:
        model, tokenizer: a model trained on title records (grec records --style title).
        titles: item id -> title (items.jsonl).
        seq2seq: the model is an encoder-decoder.
        num_beams, num_return_sequences: beam search width and items per user.
        constrained: generate only catalog titles (trie); otherwise generate freely and ground by L2.
        encoder: the grounding encoder folder (default: the packaged MiniLM).
        ci, gamma: per-item popularity (or any per-item score, aligned with ``titles``) and its weight.
        cf, delta: a collaborative model with ``scores(histories)`` and ``item_ids`` (``ItemKNN``) and its weight:
            fused into grounding, or (constrained) D3's text-free assistant steering the title search.
    """

    def __init__(
        self,
        model,
        tokenizer,
        titles: dict[str, str],
        seq2seq: bool,
        num_beams: int,
        num_return_sequences: int,
        constrained: bool = True,
        encoder: str | None = None,
        ci: np.ndarray | None = None,
        gamma: float = 0.0,
        cutoff_len: int = 512,
        device="cpu",
        cf=None,
        delta: float = 0.0,
    ):
        self.model, self.tokenizer, self.seq2seq = model, tokenizer, seq2seq
        self.item_ids = list(titles)
        self.beams = num_beams
        self.returned = min(num_return_sequences, num_beams) if constrained else num_return_sequences
        self.cutoff_len, self.device, self.encoder, self.ci, self.gamma = cutoff_len, device, encoder, ci, gamma
        self.cf, self.delta = cf, delta
        self.trie = TitleTrie(tokenizer, titles) if constrained else None
        # prompts are cut as in training, reserving room for the longest catalog title the model was taught
        self.response_length = self.trie.longest if constrained else longest_output(title_outputs(tokenizer, titles))
        self.item_vectors, self.nearest = None, None
        self.last_generated: list[str] = []  # grounded: the titles generated for the last records embedded
        if not constrained:
            from grec.lm.encoder import embed_texts

            self.item_vectors = embed_texts(list(titles.values()), encoder, device=device)
            self.nearest = NearestItems(self.item_vectors)

    def generated_embeddings(self, records: list[dict]) -> np.ndarray:
        """Embeddings of the best freely generated title per record (quotes stripped).

        Generation stops at the longest catalog title's length: tokens past it cannot bring the
        text nearer any title, and each one costs a full decoding step.
        """
        from grec.lm.encoder import embed_texts

        sequences = generate_titles(
            self.model,
            self.tokenizer,
            records,
            self.beams,
            1,
            self.seq2seq,
            None,
            self.cutoff_len,
            max_new_tokens=self.response_length,
            device=self.device,
            response_length=self.response_length,
        )
        texts = [self.tokenizer.decode(seqs[0], skip_special_tokens=True).strip().strip('"') for seqs in sequences]
        self.last_generated = texts
        return embed_texts(texts, self.encoder, device=self.device)

    def assistant(self, records: list[dict]):
        """With a collaborative model and a weight: D3's text-free assistant for these records' title search."""
        if self.cf is None or not self.delta:
            return None
        cf = self.cf_scores(records)
        return lambda prompt_length: AssistantScores(
            self.trie, self.item_ids, cf, self.delta, prompt_length, self.beams
        )

    def cf_scores(self, records: list[dict]) -> np.ndarray | None:
        """The collaborative model's users x items scores for the records' histories, columns as ``item_ids``."""
        if self.cf is None:
            return None
        scores = self.cf.scores([r.get("history", []) for r in records])
        columns = [self.cf.column.get(item) for item in self.item_ids]
        out = np.zeros((len(records), len(self.item_ids)), dtype=np.float32)
        known = [k for k, c in enumerate(columns) if c is not None]
        out[:, known] = scores[:, [columns[k] for k in known]]
        return out

    def tune(
        self,
        records: list[dict],
        grid: list[tuple[float, float]],
        batch_size: int = 16,
        exclude_history: bool = True,
    ) -> dict[tuple[float, float], float]:
        """NDCG@10 on ``records`` for each (gamma, delta) in ``grid`` (history left out as in ``rank``);
        sets ``self.gamma`` and ``self.delta`` to the best pair (ties: the smaller weights)."""
        vectors = np.concatenate(
            [self.generated_embeddings(records[k : k + batch_size]) for k in range(0, len(records), batch_size)]
        )
        targets = [str(r["target"]) for r in records]
        skipped = excluded_items(records, exclude_history, None)
        cf = self.cf_scores(records)
        results = tune_fusion(vectors, self.item_vectors, self.ci, self.item_ids, targets, grid, skipped, cf)
        self.gamma, self.delta = max(grid, key=lambda pair: (results[pair], -pair[0], -pair[1]))
        return results

    def rank(
        self, records: list[dict], exclude_history: bool = False, exclude: list[list[str]] | None = None
    ) -> list[tuple[list[str], list[float]]]:
        """Item ids per record, best first (no scores); history and ``exclude[k]`` skipped as in ``Ranker.rank``."""
        skipped = excluded_items(records, exclude_history, exclude)
        if self.trie is not None:
            sequences = generate_titles(
                self.model,
                self.tokenizer,
                records,
                self.beams,
                self.returned,
                self.seq2seq,
                self.trie,
                self.cutoff_len,
                max_new_tokens=self.response_length,  # the longest title and its EOS: every beam can finish
                device=self.device,
                response_length=self.response_length,
                excluded=skipped,
                processor=self.assistant(records),
            )
            ranked = [constrained_items(self.trie, seqs) for seqs in sequences]
        else:
            # enough nearest items that ``returned`` remain once the skipped ones are dropped
            top = self.returned + max((len(items) for items in skipped or []), default=0)
            vectors = self.generated_embeddings(records)
            cf = self.cf_scores(records) if self.delta else None
            rows = ground(vectors, self.item_vectors, self.ci, self.gamma, top, self.nearest, cf, self.delta)
            ranked = [[self.item_ids[r] for r in row] for row in rows]
        out = []
        for k, items in enumerate(ranked):
            if skipped is not None:
                items = [i for i in items if i not in skipped[k]]
            out.append((items[: self.returned], []))
        return out
