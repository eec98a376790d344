"""Loading what ``grec train`` saved: a best/ or last/ folder, LoRA adapters applied."""

from __future__ import annotations

from pathlib import Path

from grec.base.io import read_json
from grec.lm.loading import load_model, resolve_base_model


def load_trained(checkpoint: str | Path):
    """(model, tokenizer, seq2seq) of a best/ or last/ folder, LoRA adapters applied (not merged)."""
    from transformers import AutoTokenizer

    checkpoint = Path(checkpoint)
    arguments = read_json(checkpoint / "training_state.json")["arguments"]
    if not (checkpoint / "adapter_config.json").is_file():
        return load_model(str(checkpoint), arguments["model_type"])
    from peft import PeftModel

    model, _, seq2seq = load_model(resolve_base_model(arguments["base_model"]), arguments["model_type"])
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return PeftModel.from_pretrained(model, checkpoint), tokenizer, seq2seq
