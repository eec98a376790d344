"""GGUF files (llama.cpp's format) -> a float32 safetensors folder that loads anywhere, cached.

LLaMA-architecture files (without RoPE scaling) are read once with gguf's reader: the config from the metadata, each
tensor de-quantised and renamed to the Hugging Face layout (llama.cpp stores the query and key
projections with their rotary halves interleaved; they are put back). Other architectures go
through transformers' own GGUF loader, which reads the file several times (about 3x slower).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from grec.base.errors import GrecError
from grec.base.io import cache_dir

logger = logging.getLogger("grec")

# llama.cpp tensor name -> Hugging Face LlamaForCausalLM name ({} is the layer number)
LLAMA_LAYER = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
LLAMA_TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
BLOCK = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|bias)$")


def gguf_cache_dir(gguf: Path) -> Path:
    return cache_dir() / "gguf" / f"{gguf.stem}-{gguf.stat().st_size}"


def _value(reader, key: str, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def llama_config(reader):
    """The ``LlamaConfig`` that the GGUF metadata describes."""
    from transformers import LlamaConfig

    arch = "llama"
    heads = int(_value(reader, f"{arch}.attention.head_count"))
    names = {t.name for t in reader.tensors}
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    vocab = _value(reader, f"{arch}.vocab_size") or (len(tokens.data) if tokens is not None else None)
    hidden = int(_value(reader, f"{arch}.embedding_length"))
    settings = dict(
        vocab_size=int(vocab),
        hidden_size=hidden,
        intermediate_size=int(_value(reader, f"{arch}.feed_forward_length")),
        num_hidden_layers=int(_value(reader, f"{arch}.block_count")),
        num_attention_heads=heads,
        num_key_value_heads=int(_value(reader, f"{arch}.attention.head_count_kv", heads)),
        max_position_embeddings=int(_value(reader, f"{arch}.context_length")),
        rms_norm_eps=float(_value(reader, f"{arch}.attention.layer_norm_rms_epsilon")),
        rope_theta=float(_value(reader, f"{arch}.rope.freq_base", 10000.0)),
        head_dim=int(_value(reader, f"{arch}.rope.dimension_count", hidden // heads)),
        tie_word_embeddings="output.weight" not in names,
    )
    for name, key in (("bos", "bos"), ("eos", "eos"), ("pad", "padding"), ("unk", "unknown")):
        value = _value(reader, f"tokenizer.ggml.{key}_token_id")
        if value is not None:
            settings[f"{name}_token_id"] = int(value)
    return LlamaConfig(**settings)


def _unpermute(weight: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's rotary layout: per head, the two halves of the rotation back side by side."""
    rows = weight.shape[0]
    return weight.reshape(heads, rows // heads // 2, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def llama_state_dict(reader, config) -> dict[str, torch.Tensor]:
    """Every tensor of the file de-quantised to float32 under its Hugging Face name."""
    from gguf import dequantize

    state = {}
    for tensor in reader.tensors:
        weight = np.asarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
        top, _, kind = tensor.name.rpartition(".")
        match = BLOCK.match(tensor.name)
        if match:
            layer, part, kind = match.groups()
            if part not in LLAMA_LAYER:
                raise GrecError(f"GGUF tensor {tensor.name}: not part of a LLaMA block")
            if part == "attn_q":
                weight = _unpermute(weight, config.num_attention_heads)
            elif part == "attn_k":
                weight = _unpermute(weight, config.num_key_value_heads)
            name = f"model.layers.{layer}.{LLAMA_LAYER[part]}.{kind}"
        elif top in LLAMA_TOP:
            name = f"{LLAMA_TOP[top]}.{kind}"
        else:
            raise GrecError(f"GGUF tensor {tensor.name}: not part of a LLaMA model")
        state[name] = torch.from_numpy(weight.copy())
    return state


def _load_llama(reader, gguf: Path):
    from transformers import LlamaForCausalLM

    config = llama_config(reader)
    state = llama_state_dict(reader, config)
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise GrecError(f"{gguf}: tensors missing {missing[:3]} or unexpected {unexpected[:3]} for a LLaMA model")
    return model


def _load_other(gguf: Path):
    """Any architecture transformers reads from GGUF, rebuilt without its quantisation entry (savable)."""
    import copy

    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    return model


def convert_gguf(gguf: Path) -> Path:
    """A float32 safetensors folder for a GGUF model, converted once and cached."""
    from transformers import AutoTokenizer

    folder = gguf_cache_dir(gguf)
    if (folder / "config.json").is_file():
        return folder
    logger.info("converting %s to a safetensors folder in %s (once; about 20 s)", gguf, folder)
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf))
    plain_llama = _value(reader, "general.architecture") == "llama" and not any(
        key.startswith("llama.rope.scaling") for key in reader.fields
    )
    model = _load_llama(reader, gguf) if plain_llama else _load_other(gguf)
    del reader
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process (a second rank, a parallel job) converted it first: keep theirs
        if not (folder / "config.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
