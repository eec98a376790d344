"""The Hugging Face way in: ``prefix_allowed_tokens_fn`` for ``model.generate``, backed by the same SidIndex.

The generated part of a sequence is found by the prompt length (the padded prompt width for
causal models, the decoder start token for encoder-decoders), never by searching for a separator
in the text, so BOS handling and "Response:" markers cannot break the constraint. The search runs
with a generation config built here, so an instruct checkpoint's sampling settings (do_sample,
top_k, top_p, temperature) never leak in; ``length_penalty`` is 0: plain sums of log-probabilities.
"""

from __future__ import annotations

import numpy as np
import torch

from grec.decoding.sid_index import SidIndex


class SidPrefixConstraint:
    """``fn(batch_id, input_ids) -> allowed token ids`` for ``generate(prefix_allowed_tokens_fn=fn)``.

    Args:
        index: the catalog.
        prompt_length: tokens before the generated part (padded prompt width; 1 for seq2seq decoders).
        eos_token_id: the token allowed once a full SID is generated.
    """

    def __init__(self, index: SidIndex, prompt_length: int, eos_token_id: int):
        self.tables = [t.cpu().numpy() for t in index.next_node]
        self.tokens = [t.cpu().numpy() for t in index.level_tokens]
        self.code_of = [{int(tok): code for code, tok in enumerate(level) if tok >= 0} for level in self.tokens]
        self.prompt_length = prompt_length
        self.eos = [int(eos_token_id)]

    def __call__(self, batch_id: int, input_ids: torch.Tensor) -> list[int]:
        generated = input_ids[self.prompt_length :].tolist()
        node = 0
        for level, token in enumerate(generated):
            if level == len(self.tables):
                return self.eos
            code = self.code_of[level].get(token)
            if code is None or self.tables[level][node, code] < 0:
                return self.eos  # off the catalog (cannot happen under this constraint): end the beam
            node = int(self.tables[level][node, code])
        if len(generated) >= len(self.tables):
            return self.eos
        codes = np.flatnonzero(self.tables[len(generated)][node] >= 0)
        return self.tokens[len(generated)][codes].tolist()


def search_config(num_beams: int, num_return_sequences: int, levels: int, eos_token_id: int, pad_token_id: int):
    """A clean beam-search GenerationConfig: no sampling, length_penalty 0, one step past the last level."""
    from transformers import GenerationConfig

    return GenerationConfig(
        do_sample=False,
        num_beams=num_beams,
        num_return_sequences=num_return_sequences,
        length_penalty=0.0,
        max_new_tokens=levels + 1,
        min_new_tokens=levels + 1,
        early_stopping=True,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        output_scores=True,
        return_dict_in_generate=True,
        temperature=None,
        top_k=None,
        top_p=None,
    )


@torch.no_grad()
def hf_constrained_generate(
    model,
    input_ids,
    attention_mask,
    index: SidIndex,
    num_beams: int,
    num_return_sequences: int,
    eos_token_id: int,
    pad_token_id: int,
    seq2seq: bool = False,
):
    """``model.generate`` under the prefix constraint; returns (item rows, sequence scores), -1 for invalid."""
    prompt_length = 1 if seq2seq else input_ids.shape[1]
    constraint = SidPrefixConstraint(index, prompt_length, eos_token_id)
    config = search_config(num_beams, num_return_sequences, index.levels, eos_token_id, pad_token_id)
    out = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        generation_config=config,
        prefix_allowed_tokens_fn=constraint,
    )
    sequences = out.sequences[:, prompt_length : prompt_length + index.levels].cpu().numpy()
    rows = np.full(len(sequences), -1, dtype=np.int64)
    for k, seq in enumerate(sequences):
        node = 0
        for level, token in enumerate(seq.tolist()):
            code = constraint.code_of[level].get(token)
            node = -1 if code is None else int(constraint.tables[level][node, code])
            if node < 0:
                break
        rows[k] = node
    batch = input_ids.shape[0]
    return rows.reshape(batch, num_return_sequences), out.sequences_scores.reshape(batch, num_return_sequences)
