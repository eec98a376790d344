"""grec.lm.cpu_dropout: the same dropout distribution and the same attention, drawn more cheaply."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

from grec.lm.cpu_dropout import ATTENTION, Dropout, attention, cpu_dropout, dropout


def test_dropout_keeps_one_minus_p_and_scales_the_rest():
    torch.manual_seed(0)
    x = torch.full((1_000_000,), 2.0, requires_grad=True)
    out = dropout(x, 0.1)
    kept = out != 0
    assert kept.float().mean().item() == pytest.approx(0.9, abs=0.002)
    assert torch.allclose(out[kept], torch.tensor(2.0 / 0.9))
    out.sum().backward()
    assert torch.equal(x.grad != 0, kept)  # the backward pass uses the forward's mask
    assert torch.allclose(x.grad[kept], torch.tensor(1 / 0.9))
    assert dropout(x, 0.1, training=False) is x and dropout(x, 0.0) is x
    assert not dropout(x, 1.0).any()


def test_dropout_masks_are_uncorrelated_between_calls():
    torch.manual_seed(0)
    a, b = (dropout(torch.ones(200_000), 0.5) != 0 for _ in range(2))
    both = (a & b).float().mean().item()
    assert both == pytest.approx(0.25, abs=0.005)


class _Module(torch.nn.Module):
    def __init__(self, causal):
        super().__init__()
        self.is_causal = causal


@pytest.mark.parametrize("mask_kind", ["causal-none", "bool", "float-bias"])
def test_attention_with_dropout_is_softmax_then_the_drawn_mask(mask_kind):
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 3, 5, 4) for _ in range(3))
    module = _Module(causal=mask_kind == "causal-none").train()
    scores = q @ k.transpose(2, 3) * 0.5
    mask, bias = None, None
    if mask_kind == "causal-none":
        scores = scores.masked_fill(~torch.ones(5, 5, dtype=torch.bool).tril(), torch.finfo(q.dtype).min)
    elif mask_kind == "bool":
        mask = torch.rand(2, 1, 5, 5) > 0.3
        mask[..., 0] = True
        scores = scores.masked_fill(~mask, torch.finfo(q.dtype).min)
    else:
        bias = torch.randn(1, 3, 5, 5)
        mask = torch.where(torch.rand(2, 1, 5, 5) > 0.3, 0.0, torch.finfo(q.dtype).min)
        scores = scores + bias + mask
    torch.manual_seed(7)
    out, _ = attention(module, q, k, v, mask, dropout=0.2, scaling=0.5, position_bias=bias, is_causal=None)
    torch.manual_seed(7)
    keep = torch.empty(2, 3, 5, 5).uniform_() >= 0.2
    expected = (torch.softmax(scores, -1) * keep / 0.8) @ v
    assert torch.allclose(out, expected.transpose(1, 2), atol=1e-6)


def _t5(dropout_rate):
    config = T5Config(
        vocab_size=50,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        dropout_rate=dropout_rate,
        decoder_start_token_id=0,
        attn_implementation="sdpa",
    )
    return T5ForConditionalGeneration(config)


def _llama(dropout_rate):
    config = LlamaConfig(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        attention_dropout=dropout_rate,
        attn_implementation="sdpa",
    )
    return LlamaForCausalLM(config)


@pytest.mark.parametrize("build", [_t5, _llama])
@pytest.mark.parametrize("padded", [False, True])
def test_swapped_model_trains_to_the_same_loss_when_nothing_is_dropped(build, padded):
    """p = 1e-30 keeps every element, so both paths must give the same loss and gradients."""
    torch.manual_seed(0)
    reference = build(1e-30).train()
    swapped = build(1e-30).train()
    swapped.load_state_dict(reference.state_dict())
    with cpu_dropout(swapped) as changed:
        assert changed
        _same_loss_and_gradients(build, padded, reference, swapped)


def _same_loss_and_gradients(build, padded, reference, swapped):
    assert any(isinstance(m, Dropout) for m in swapped.modules()) == (build is _t5)  # LLaMA has no dropout modules
    assert all(m.config._attn_implementation == ATTENTION for m in swapped.modules() if hasattr(m, "config"))
    ids = torch.randint(1, 50, (3, 9))
    mask = torch.ones_like(ids)
    if padded:
        mask[0, 6:] = 0
    labels = torch.randint(1, 50, (3, 4)) if build is _t5 else ids.masked_fill(mask == 0, -100)
    losses = []
    for model in (reference, swapped):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        losses.append(loss.item())
    assert losses[1] == pytest.approx(losses[0], abs=1e-5)
    for (name, a), b in zip(reference.named_parameters(), swapped.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_dropout_changes_training_only_and_models_stay_savable(tmp_path):
    torch.manual_seed(0)
    model = _t5(0.1)
    with cpu_dropout(model):
        _dropout_in_training_only(model, tmp_path)


def _dropout_in_training_only(model, tmp_path):
    ids, labels = torch.randint(1, 50, (4, 7)), torch.randint(1, 50, (4, 3))
    model.train()
    assert model(input_ids=ids, labels=labels).loss.item() != model(input_ids=ids, labels=labels).loss.item()
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids, labels=labels).logits
    model.save_pretrained(tmp_path)
    loaded = T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config._attn_implementation != ATTENTION  # a checkpoint does not depend on this module
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids, labels=labels).logits, logits, atol=1e-6)


def test_bf16_inputs_keep_their_dtype_and_rate():
    torch.manual_seed(0)
    out = dropout(torch.ones(500_000, dtype=torch.bfloat16), 0.1)
    assert out.dtype == torch.bfloat16
    assert (out != 0).float().mean().item() == pytest.approx(0.9, abs=0.002)


@pytest.mark.parametrize("build", [_t5, _llama])
def test_cpu_dropout_is_restored_and_lets_ranking_share_its_cache(build):
    """Inside the block ranking still gets the shared beam caches grec infer uses; after it the model is as it was."""
    from grec.decoding.shared_cross import one_cross_cache_per_user
    from grec.decoding.shared_prompt import one_prompt_cache_per_user

    model = build(0.1)
    before = [type(m) for m in model.modules()]
    sharing = one_cross_cache_per_user if build is _t5 else one_prompt_cache_per_user
    with cpu_dropout(model):
        assert model.config._attn_implementation == ATTENTION
        with sharing(model) as shared:
            assert shared and model.config._attn_implementation.startswith("grec_shared")
        assert model.config._attn_implementation == ATTENTION
    assert model.config._attn_implementation == "sdpa" and [type(m) for m in model.modules()] == before
