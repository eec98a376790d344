"""``grec generate``: print a checkpoint's continuations of a prompt, to eyeball what a model learned."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.files import TASK, TRAINING_STATE


@dataclass
class GenerateConfig:
    """grec generate: continue a prompt with a trained checkpoint (best/, last/, a merged folder) or any model folder.

    Example: grec generate --checkpoint outputs/lcrec/best --prompt "The user has interacted with:"

    Args:
        checkpoint: a grec checkpoint or a Hugging Face model folder.
        prompt: the text to continue.
        max_new_tokens: tokens to generate.
        num_return_sequences: continuations to print.
        do_sample: sample (with temperature / top_p) instead of beam search.
        temperature: sampling temperature.
        top_p: nucleus sampling mass.
        seed: random seed for sampling.
    """

    checkpoint: str = ""
    prompt: str = ""
    max_new_tokens: int = 32
    num_return_sequences: int = 3
    do_sample: bool = False
    temperature: float = 0.8
    top_p: float = 0.95
    seed: int = 42

    def __post_init__(self) -> None:
        if not Path(self.checkpoint).is_dir():
            raise GrecError(f"{self.checkpoint}: checkpoint folder not found (given as --checkpoint)")
        if not self.prompt:
            raise GrecError("--prompt: give the text to continue")


def generate(cfg: GenerateConfig) -> list[str]:
    """The continuations (prompt excluded)."""
    import torch
    from transformers import GenerationConfig

    from grec.lm.checkpoint import load_trained
    from grec.lm.loading import load_model

    task_checkpoint = (Path(cfg.checkpoint) / TASK).is_file()  # lm_pretrain: a plain model folder
    if (Path(cfg.checkpoint) / TRAINING_STATE).is_file() and not task_checkpoint:
        model, tokenizer, seq2seq = load_trained(cfg.checkpoint)
    else:
        model, tokenizer, seq2seq = load_model(cfg.checkpoint)
    torch.manual_seed(cfg.seed)
    inputs = tokenizer(cfg.prompt, return_tensors="pt")
    config = GenerationConfig(
        max_new_tokens=cfg.max_new_tokens,
        num_return_sequences=cfg.num_return_sequences,
        do_sample=cfg.do_sample,
        num_beams=1 if cfg.do_sample else cfg.num_return_sequences,
        temperature=cfg.temperature if cfg.do_sample else None,
        top_p=cfg.top_p if cfg.do_sample else None,
        top_k=None,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.no_grad():
        out = model.eval().generate(**inputs, generation_config=config)
    if seq2seq:
        return [tokenizer.decode(seq, skip_special_tokens=True) for seq in out]
    # decode prompt + continuation together, so a word split across the border keeps its spacing
    prompt = tokenizer.decode(inputs["input_ids"][0], skip_special_tokens=True)
    texts = [tokenizer.decode(seq, skip_special_tokens=True) for seq in out]
    start = inputs["input_ids"].shape[1]
    return [
        t[len(prompt) :] if t.startswith(prompt) else tokenizer.decode(seq[start:], skip_special_tokens=True)
        for t, seq in zip(texts, out)
    ]
