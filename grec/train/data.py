"""Records -> token ids and loss labels, for causal and encoder-decoder models.

Causal: ``input_ids = prompt + response + eos``; labels copy them, with the prompt masked out
(-100) unless ``train_on_inputs``. Seq2seq: the prompt is the encoder input and ``response + eos``
the labels. When an example exceeds ``cutoff_len`` the prompt loses its oldest tokens, kept from
the front (the instruction) and the back (the latest history and the response mark); a record whose
response alone does not fit is dropped and counted. The cut is ``grec.base.prompts.fit_prompt``,
the same rule inference applies.
"""

from __future__ import annotations

import logging

from grec.base.errors import GrecError
from grec.base.prompts import bos_prefix, fit_prompt, prompt_token_ids

logger = logging.getLogger("grec")
FIELDS = ("instruction", "input", "output")


def tokenize_records(
    records: list[dict], tokenizer, seq2seq: bool, cutoff_len: int, train_on_inputs: bool = False
) -> tuple[list[dict], int]:
    """Token ids, attention masks and labels per record; returns (examples, records dropped)."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise GrecError("the tokenizer has no end-of-sequence token; set tokenizer.eos_token")
    bos = bos_prefix(tokenizer, seq2seq)
    prompts = prompt_token_ids(records, tokenizer)
    responses = tokenizer([r["output"] for r in records], add_special_tokens=False)["input_ids"]
    examples, dropped = [], 0
    for p_ids, r_ids in zip(prompts, responses):
        r_ids = r_ids + [eos]
        p_ids = fit_prompt(p_ids, bos, cutoff_len, len(r_ids))
        if p_ids is None:
            dropped += 1
            continue
        if seq2seq:
            examples.append(
                {
                    "input_ids": p_ids,
                    "attention_mask": [1] * len(p_ids),
                    "labels": r_ids,
                    "length": len(p_ids) + len(r_ids),
                }
            )
        else:
            ids = p_ids + r_ids
            labels = ids if train_on_inputs else [-100] * len(p_ids) + r_ids
            examples.append(
                {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": list(labels), "length": len(ids)}
            )
    if dropped:
        logger.warning(
            "train: %d of %d records dropped: their response alone exceeds --cutoff_len %d",
            dropped,
            len(records),
            cutoff_len,
        )
    if not examples:
        raise GrecError(f"no record fits --cutoff_len {cutoff_len}; raise it")
    return examples, dropped


def validation_sets(files: dict[str, list[dict]], tokenizer, seq2seq: bool, cutoff_len: int):
    """The Trainer's eval_dataset: one dataset, or with several files {"all": every record, name: a file's}, so
    that the Trainer logs eval_all_loss and eval_<name>_loss (``log.json``: valid_loss, valid_loss_<name>)."""
    from datasets import Dataset

    def dataset(records: list[dict]):
        return Dataset.from_list(tokenize_records(records, tokenizer, seq2seq, cutoff_len)[0])

    combined = dataset([record for records in files.values() for record in records])
    if len(files) == 1:
        return combined
    return {"all": combined, **{name: dataset(records) for name, records in files.items()}}


def file_names(paths: list[str]) -> list[str]:
    """A short, unique name per records file: its folder's name (BIGRec's data/movie/valid.json -> movie), or the
    path without its suffix where folder names repeat."""
    from pathlib import Path

    names = [Path(path).parent.name or Path(path).stem for path in paths]
    if len(set(names)) < len(names) or "all" in names:
        names = [str(Path(path).with_suffix("")).strip("./").replace("/", "_") for path in paths]
    return names
