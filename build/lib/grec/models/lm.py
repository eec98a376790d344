"""Causal language models for ``lm_pretrain``: LLaMA- or GPT-2-style from a config, or a pretrained one.

Each factory returns the Hugging Face model itself, so checkpoints are ordinary model folders
(``config.json`` + ``model.safetensors``) that ``grec generate`` and ``grec train --base_model``
load. ``vocab_size`` and the special-token ids come from the tokenizer (the data side).
"""

from __future__ import annotations

from grec.base.errors import GrecError
from grec.base.registry import MODELS


def _special(bos_token_id, eos_token_id, pad_token_id) -> dict:
    return {"bos_token_id": bos_token_id, "eos_token_id": eos_token_id, "pad_token_id": pad_token_id}


@MODELS.register("llama")
def llama(
    vocab_size: int,
    bos_token_id: int | None,
    eos_token_id: int,
    pad_token_id: int | None,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int | None = None,
    intermediate_size: int = 384,
    max_position_embeddings: int = 512,
    rope_theta: float = 10000.0,
    dropout: float = 0.0,
    tie_embeddings: bool = True,
):
    """A LLaMA-architecture decoder (RMSNorm, rotary positions, SwiGLU) with random weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads or num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        rope_theta=rope_theta,
        attention_dropout=dropout,
        tie_word_embeddings=tie_embeddings,
        **_special(bos_token_id, eos_token_id, pad_token_id),
    )
    return LlamaForCausalLM(config)


@MODELS.register("gpt2")
def gpt2(
    vocab_size: int,
    bos_token_id: int | None,
    eos_token_id: int,
    pad_token_id: int | None,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    max_position_embeddings: int = 512,
    dropout: float = 0.0,
):
    """A GPT-2-architecture decoder (LayerNorm, learned positions, GELU MLP) with random weights."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size,
        n_embd=hidden_size,
        n_layer=num_layers,
        n_head=num_heads,
        n_positions=max_position_embeddings,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        **_special(bos_token_id, eos_token_id, pad_token_id),
    )
    return GPT2LMHeadModel(config)


@MODELS.register("causal_lm")
def causal_lm(
    vocab_size: int, bos_token_id: int | None, eos_token_id: int, pad_token_id: int | None, base_model: str = ""
):
    """A pretrained causal LM to continue pretraining: a model folder, a hub name, a .gguf file or
    ``smollm2`` (the packaged SmolLM2-135M-Instruct). Embeddings grow when the tokenizer has more
    tokens than the model (e.g. added item tokens)."""
    from grec.lm.loading import load_model, resolve_base_model

    if not base_model:
        raise GrecError("model causal_lm needs --base_model (a model folder, hub name, .gguf file or 'smollm2')")
    model, _, seq2seq = load_model(resolve_base_model(base_model))
    if seq2seq:
        raise GrecError(f"{base_model}: an encoder-decoder model; lm_pretrain continues causal (decoder-only) models")
    if vocab_size > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(vocab_size, mean_resizing=False)
    return model


def positions(model) -> int | None:
    """How many positions the model can attend over (None when it has no limit in its config)."""
    config = model.config
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
