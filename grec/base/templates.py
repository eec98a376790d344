"""Every prompt grec writes or reads, in one place.

Records are alpaca-style ``{"instruction", "input", "output"}`` (BIGRec, LC-Rec); ``prompt()``
turns one into the text a model is trained on and generates from. Each template has a name that
is stored in the record, so a records folder says how it was written.
"""

from __future__ import annotations

import re

from grec.base.errors import GrecError

ALPACA_HEADER = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
)
RESPONSE_MARK = "### Response:\n"

TEMPLATES: dict[str, dict[str, str]] = {
    "seqrec-sid": {
        "instruction": "Here are the items a user interacted with, oldest first. Predict the next item the user "
        "will interact with, as its semantic ID.",
        "input": "The user has interacted with: {history}",
        "output": "{target}",
    },
    "seqrec-title": {
        "instruction": "Given a list of items the user has interacted with before, please recommend a new item "
        "that the user likes to the user.",
        "input": "The user has interacted with the following items before: {history}",
        "output": "{target}",
    },
    "item2index": {
        "instruction": "Which item has the title below? Answer with its semantic ID.",
        "input": "{title}",
        "output": "{sid}",
    },
    "index2item": {
        "instruction": "What is the title of the item with the semantic ID below?",
        "input": "{sid}",
        "output": "{title}",
    },
    "desc2index": {
        "instruction": "An item is described below. Which item is it? Answer with its semantic ID.",
        "input": "{description}",
        "output": "{sid}",
    },
    "titles2index": {
        "instruction": "Here are the titles of the items a user interacted with, oldest first. Predict the next "
        "item the user will interact with, as its semantic ID.",
        "input": "The user has interacted with: {history}",
        "output": "{target}",
    },
    "index2title": {
        "instruction": "Here are the semantic IDs of the items a user interacted with, oldest first. What is the "
        "title of the next item the user will interact with?",
        "input": "The user has interacted with: {history}",
        "output": "{target}",
    },
}


PROMPTS = ("alpaca", "plain", "chat")
STYLES = ("sid", "title")  # items as semantic IDs (LC-Rec, TIGER) or as quoted titles (BIGRec)


def check_prompt_settings(settings: dict, source: str) -> None:
    """Refuse prompt settings (``style``, ``prompt``, ``max_history``) that no records stage writes, naming
    ``source`` (a checkpoint's records.json, or the arguments they came from)."""
    checks = (
        ("style", lambda v: v in STYLES, f"one of {', '.join(STYLES)}"),
        ("prompt", lambda v: v in PROMPTS, f"one of {', '.join(PROMPTS)}"),
        ("max_history", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1"),
    )
    for key, valid, expected in checks:
        if key in settings and not valid(settings[key]):
            raise GrecError(f"{source}: {key} must be {expected}, got {settings[key]!r}")


def fill(name: str, **values: str) -> dict[str, str]:
    """The instruction, input and output of template ``name`` with ``values`` filled in."""
    template = TEMPLATES[name]
    return {"template": name, **{part: template[part].format(**values) for part in ("instruction", "input", "output")}}


def history_record(
    history: list[str],
    render,
    style: str,
    prompt_style: str,
    max_history: int,
    target: str | None = None,
    user_id: str | None = None,
) -> dict:
    """The next-item (seqrec) record of a history, oldest item first: what ``grec records`` writes
    for every interaction and what a trained recommender reads at serving time.

    ``render(item)`` spells an item as the model reads it (its SID string, or its quoted title);
    the prompt shows only the last ``max_history`` items, while the record's ``history`` keeps all
    of them, so excluding the history at ranking time leaves out what the baselines leave out;
    ``prompt_style`` is alpaca or plain (items back to back, no template). Without a ``target`` the
    output is empty: the model is to generate it.
    """
    history = list(history)
    plain = prompt_style == "plain"
    text = ("" if plain else ", ").join(render(item) for item in history[-max_history:])
    parts = fill(f"seqrec-{style}", history=text, target="" if target is None else render(target))
    if plain:
        parts["input"] = text
    marks = {"prompt": prompt_style} if prompt_style in ("plain", "chat") else {}
    return {**parts, **marks, "user_id": user_id, "target": target, "history": history}


def prompt(record: dict, tokenizer=None) -> str:
    """The model's input text for a record: alpaca header, instruction, input, then the response mark.

    Records written with ``--prompt plain`` (``"prompt": "plain"``) are their input alone: the
    history's SID tokens back to back, as TIGER's encoder reads them. Records written with
    ``--prompt chat`` are one user turn (instruction, then input) in ``tokenizer``'s chat template,
    ending where the assistant's answer starts; a tokenizer without a chat template reads them as
    alpaca prompts.
    """
    if record.get("prompt") == "plain":
        return record["input"]
    if record.get("prompt") == "chat" and getattr(tokenizer, "chat_template", None):
        turn = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": turn}], tokenize=False, add_generation_prompt=True
        )
        bos = tokenizer.bos_token if getattr(tokenizer, "add_bos_token", False) else None
        return text[len(bos) :] if bos and text.startswith(bos) else text  # bos_prefix adds that one to every prompt
    text = f"{ALPACA_HEADER}### Instruction:\n{record['instruction']}\n\n"
    if record.get("input"):
        text += f"### Input:\n{record['input']}\n\n"
    return text + RESPONSE_MARK


# "<" opening something shaped like a tag: a SID token (<a_12>), a special token (</s>, <|im_start|>, <pad>)
TAG_START = re.compile(r"<(?=/?[|\w][^<>\s]*>)")
TAG_ESCAPE = "\u2039"  # ‹, which no tokenizer maps to a special or SID token


def item_text(text: str) -> str:
    """Item text as a model sees it: every "<" that opens a tag-shaped run is written as "‹", so a
    title such as 'Heat <a_1>' or 'Notes </s>' can never be tokenized as a SID or special token."""
    return TAG_START.sub(TAG_ESCAPE, text)


def quote(title: str) -> str:
    """Titles are written in double quotes (BIGRec), so a model's output has clear ends (tags escaped)."""
    return f'"{item_text(title)}"'


def bos_prefix(tokenizer, seq2seq: bool) -> list[int]:
    """Token ids every causal prompt starts with: the tokenizer's BOS when it adds one, else none.

    Training and inference tokenize prompts without special tokens and both prepend these, so a
    model sees the same start at inference as in training.
    """
    if seq2seq or tokenizer.bos_token_id is None or not getattr(tokenizer, "add_bos_token", False):
        return []
    return [tokenizer.bos_token_id]
