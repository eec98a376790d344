"""The one rule that cuts a prompt to the length limit, used wherever a prompt meets a model.

Training, inference, alignment and serving all call :func:`fit_prompt`, so a model is ranked on
prompts cut exactly as the ones it learned from. The budget is ``cutoff_len`` minus the response
(what the model is to generate, end-of-sequence included) minus the BOS prefix. A prompt over
budget keeps its first ``KEEP_HEAD`` tokens (the template and instruction; at most half the
room) and as many of its last tokens as fit (the latest history and the response mark): the
oldest history goes.
"""

from __future__ import annotations

from grec.base.templates import bos_prefix, prompt

KEEP_HEAD = 64  # prompt tokens always kept from the front when cutting a long prompt


def fit_prompt(prompt_ids: list[int], bos: list[int], cutoff_len: int, response_length: int) -> list[int] | None:
    """``bos`` + the prompt cut to ``cutoff_len - response_length - len(bos)`` tokens; None when no room is left.

    Args:
        prompt_ids: the prompt's token ids, tokenized without special tokens.
        bos: the ids every prompt starts with (:func:`grec.base.templates.bos_prefix`).
        cutoff_len: most tokens of prompt and response together.
        response_length: tokens the response takes, end-of-sequence included.
    """
    room = cutoff_len - response_length - len(bos)
    if room < 1:
        return None
    if len(prompt_ids) > room:
        head = min(KEEP_HEAD, room // 2)
        prompt_ids = prompt_ids[:head] + prompt_ids[len(prompt_ids) - (room - head) :]
    return bos + list(prompt_ids)


def prompt_token_ids(records: list[dict], tokenizer) -> list[list[int]]:
    """Each record's prompt text (:func:`grec.base.templates.prompt`, chat records in ``tokenizer``'s chat
    template) as token ids, no special tokens added."""
    return tokenizer([prompt(r, tokenizer) for r in records], add_special_tokens=False)["input_ids"]


__all__ = ["KEEP_HEAD", "bos_prefix", "fit_prompt", "prompt_token_ids"]
