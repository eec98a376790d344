"""GGUF -> Hugging Face: a tiny LLaMA written in llama.cpp's layout comes back weight for weight."""

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from grec.base.errors import GrecError
from grec.lm.gguf import llama_config, llama_state_dict

NAMES = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def llama_cpp_permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """What llama.cpp's converter does to q/k rows: per head, interleave the two rotary halves."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def write_gguf(model: LlamaForCausalLM, path, extra_tensor: str | None = None) -> None:
    import gguf

    c = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(c.num_hidden_layers)
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)
    writer.add_rope_freq_base(c.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    writer.add_vocab_size(c.vocab_size)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    for name, tensor in model.state_dict().items():
        weight = tensor.numpy().copy()
        if name == "lm_head.weight" and c.tie_word_embeddings:
            continue
        if name.startswith("model.layers."):
            _, _, layer, rest = name.split(".", 3)
            module, kind = rest.rsplit(".", 1)
            if module == "self_attn.q_proj":
                weight = llama_cpp_permute(weight, c.num_attention_heads)
            elif module == "self_attn.k_proj":
                weight = llama_cpp_permute(weight, c.num_key_value_heads)
            name = f"blk.{layer}.{NAMES[module]}.{kind}"
        else:
            name = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}.get(
                name, "output.weight"
            )
        writer.add_tensor(name, weight)
    if extra_tensor:
        writer.add_tensor(extra_tensor, np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.mark.parametrize("tied", [True, False])
def test_a_llama_written_as_gguf_comes_back_weight_for_weight(tmp_path, tied):
    from gguf import GGUFReader

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=24,
        intermediate_size=40,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rope_theta=50000.0,
        tie_word_embeddings=tied,
        bos_token_id=1,
        eos_token_id=2,
    )
    original = LlamaForCausalLM(config).eval()
    write_gguf(original, tmp_path / "tiny.gguf")
    reader = GGUFReader(str(tmp_path / "tiny.gguf"))
    back = llama_config(reader)
    for field in ("vocab_size", "hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim"):
        assert getattr(back, field) == getattr(config, field), field
    assert back.tie_word_embeddings == tied and back.rope_parameters["rope_theta"] == 50000.0
    state = llama_state_dict(reader, back)
    expected = {k: v for k, v in original.state_dict().items() if not (tied and k == "lm_head.weight")}
    assert sorted(state) == sorted(expected)
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name  # q/k rows back in Hugging Face order
    model = LlamaForCausalLM(back).eval()
    model.load_state_dict(state, strict=not tied)
    ids = torch.randint(0, 64, (2, 9))
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, original(ids).logits, atol=1e-6)


def test_a_tensor_outside_the_llama_layout_is_named(tmp_path):
    from gguf import GGUFReader

    config = LlamaConfig(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2)
    write_gguf(LlamaForCausalLM(config), tmp_path / "odd.gguf", extra_tensor="blk.0.attn_sinks.weight")
    reader = GGUFReader(str(tmp_path / "odd.gguf"))
    with pytest.raises(GrecError, match="GGUF tensor blk.0.attn_sinks.weight: not part of a LLaMA block"):
        llama_state_dict(reader, llama_config(reader))
