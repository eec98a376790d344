"""Constrained beam search against brute-force scoring of every catalog item, on tiny random models."""

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

from grec.base.sid import SidMap, SidTokens
from grec.decoding.beam import sid_beam_search
from grec.decoding.sid_index import SidIndex

BASE_VOCAB = 40


def random_catalog(n_items: int, sizes: tuple[int, ...], seed: int) -> tuple[SidMap, SidTokens]:
    rng = np.random.default_rng(seed)
    space = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, len(sizes))
    codes = space[rng.choice(len(space), size=n_items, replace=False)]
    sid_map = SidMap([f"i{k}" for k in range(n_items)], codes)
    level_ids, start = [], BASE_VOCAB
    for size in sizes:
        level_ids.append(np.arange(start, start + size))
        start += size
    item_ids = np.stack([level_ids[level][codes[:, level]] for level in range(len(sizes))], 1)
    return sid_map, SidTokens(item_ids=item_ids, level_ids=level_ids, added=[])


def tiny_llama(vocab: int):
    torch.manual_seed(0)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    ).eval()


def tiny_t5(vocab: int):
    torch.manual_seed(0)
    return T5ForConditionalGeneration(
        T5Config(vocab_size=vocab, d_model=32, d_ff=64, d_kv=8, num_layers=2, num_heads=4, decoder_start_token_id=0)
    ).eval()


def left_pad(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(map(len, prompts))
    ids = torch.tensor([[0] * (length - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (length - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


@torch.no_grad()
def brute_force(model, prompt: list[int], tokens: SidTokens, seq2seq: bool) -> np.ndarray:
    """Sum of log-probabilities of every item's SID tokens after ``prompt`` (full-vocabulary softmax)."""
    items = torch.as_tensor(tokens.item_ids)
    n, depth = items.shape
    if seq2seq:
        start = torch.zeros(n, 1, dtype=torch.long)
        decoder = torch.cat([start, items[:, :-1]], 1)
        logits = model(input_ids=torch.tensor([prompt] * n), decoder_input_ids=decoder).logits
        logp = torch.log_softmax(logits, -1)
    else:
        ids = torch.cat([torch.tensor([prompt] * n), items], 1)
        logp = torch.log_softmax(model(input_ids=ids).logits, -1)[:, len(prompt) - 1 : -1]
    return logp.gather(2, items[:, :, None]).squeeze(2).sum(1).numpy()


@pytest.mark.parametrize("seq2seq", [False, True])
@pytest.mark.parametrize("n_items,sizes", [(10, (3, 3, 2)), (60, (5, 4, 4)), (200, (8, 8, 4))])
def test_full_width_beam_search_equals_brute_force(seq2seq, n_items, sizes):
    sid_map, tokens = random_catalog(n_items, sizes, seed=n_items)
    vocab = BASE_VOCAB + sum(sizes)
    model = tiny_t5(vocab) if seq2seq else tiny_llama(vocab)
    index = SidIndex.build(sid_map, tokens)
    rng = np.random.default_rng(1)
    prompts = [rng.integers(1, BASE_VOCAB, size=length).tolist() for length in (7, 4, 9)]
    ids, mask = left_pad(prompts)
    width = n_items  # as wide as the catalog: beam search must be exhaustive
    result = sid_beam_search(model, ids, mask, index, num_beams=width, seq2seq=seq2seq)
    for b, prompt in enumerate(prompts):
        expected = brute_force(model, prompt, tokens, seq2seq)
        order = np.argsort(-expected, kind="stable")
        got_items = result.items[b].numpy()
        assert sorted(got_items.tolist()) == list(range(n_items))  # every item once, nothing else
        np.testing.assert_allclose(result.scores[b].numpy(), expected[order], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(expected[got_items], result.scores[b].numpy(), rtol=1e-4, atol=1e-4)


def test_narrow_beams_return_valid_distinct_items_and_respect_exclusions():
    sid_map, tokens = random_catalog(500, (16, 16, 4), seed=3)
    model = tiny_llama(BASE_VOCAB + 36)
    index = SidIndex.build(sid_map, tokens)
    ids, mask = left_pad([[5, 6, 7], [9, 3], [1, 2, 3, 4, 5]])
    seen = [[0, 1, 2], [], list(range(400))]
    result = sid_beam_search(model, ids, mask, index, num_beams=20, num_return_sequences=10, exclude=seen)
    for b in range(3):
        rows = result.items[b].tolist()
        assert len(rows) == 10 and len(set(rows)) == 10 and all(0 <= r < 500 for r in rows)
        assert not set(rows) & set(seen[b])
        assert (result.scores[b][:-1] >= result.scores[b][1:]).all()
    # at full width, excluding items removes exactly them from the exhaustive ranking
    free = sid_beam_search(model, ids[2:], mask[2:], index, num_beams=500)
    kept = [(r, s) for r, s in zip(free.items[0].tolist(), free.scores[0].tolist()) if r not in seen[2]]
    excluded = sid_beam_search(
        model, ids[2:], mask[2:], index, num_beams=500, num_return_sequences=100, exclude=seen[2:]
    )
    assert excluded.items[0].tolist() == [r for r, _ in kept]
    np.testing.assert_allclose(excluded.scores[0].numpy(), [s for _, s in kept], rtol=1e-5)


def test_fewer_items_than_beams_are_marked_missing():
    sid_map, tokens = random_catalog(5, (2, 2, 2), seed=0)
    model = tiny_llama(BASE_VOCAB + 6)
    result = sid_beam_search(model, *left_pad([[3, 4]]), SidIndex.build(sid_map, tokens), num_beams=8)
    assert sorted(r for r in result.items[0].tolist() if r >= 0) == [0, 1, 2, 3, 4]
    assert (result.items[0] == -1).sum() == 3 and torch.isinf(result.scores[0][-3:]).all()


@pytest.mark.parametrize("seq2seq", [False, True])
def test_hf_prefix_function_is_exact_at_full_width_and_ignores_generation_config(seq2seq):
    from grec.decoding.hf import hf_constrained_generate

    sid_map, tokens = random_catalog(24, (3, 3, 3), seed=5)
    eos = 1
    vocab = BASE_VOCAB + 9
    model = tiny_t5(vocab) if seq2seq else tiny_llama(vocab)
    index = SidIndex.build(sid_map, tokens)
    prompt = [4, 9, 2, 7]
    ids, mask = left_pad([prompt])
    rows, scores = hf_constrained_generate(
        model,
        ids,
        mask,
        index,
        num_beams=24,
        num_return_sequences=24,
        eos_token_id=eos,
        pad_token_id=0,
        seq2seq=seq2seq,
    )
    # generate's sequence score is the sum over the SID tokens (the forced end-of-sequence step adds nothing)
    expected = brute_force(model, prompt, tokens, seq2seq)
    assert sorted(rows[0].tolist()) == list(range(24))
    np.testing.assert_allclose(scores[0].numpy(), np.sort(expected)[::-1], rtol=1e-4, atol=1e-4)
    # an instruct checkpoint's sampling settings must not leak into the search
    model.generation_config.do_sample, model.generation_config.top_k, model.generation_config.temperature = True, 2, 5.0
    rows_again, _ = hf_constrained_generate(
        model,
        ids,
        mask,
        index,
        num_beams=24,
        num_return_sequences=24,
        eos_token_id=eos,
        pad_token_id=0,
        seq2seq=seq2seq,
    )
    assert rows_again.tolist() == rows.tolist()


def test_ten_thousand_item_catalog_every_result_valid():
    sid_map, tokens = random_catalog(10_000, (32, 32, 16), seed=11)
    model = tiny_llama(BASE_VOCAB + 80)
    index = SidIndex.build(sid_map, tokens)
    rng = np.random.default_rng(2)
    prompts = [rng.integers(1, BASE_VOCAB, size=n).tolist() for n in (3, 8, 5, 12)]
    seen = [rng.choice(10_000, size=50, replace=False).tolist() for _ in prompts]
    result = sid_beam_search(model, *left_pad(prompts), index, num_beams=50, num_return_sequences=50, exclude=seen)
    codes = {tuple(c) for c in sid_map.codes.tolist()}
    for b in range(len(prompts)):
        rows = result.items[b].tolist()
        assert len(set(rows)) == 50 and min(rows) >= 0 and not set(rows) & set(seen[b])
        assert all(tuple(sid_map.codes[r].tolist()) in codes for r in rows)
        assert torch.isfinite(result.scores[b]).all() and (result.scores[b][:-1] >= result.scores[b][1:]).all()


def four_users(catalog_seed: int, prompt_seed: int):
    """A 200-item catalog (8 x 8 x 4 codes, 20 SID tokens) and four left-padded prompts of different lengths."""
    sid_map, tokens = random_catalog(200, (8, 8, 4), seed=catalog_seed)
    rng = np.random.default_rng(prompt_seed)
    ids, mask = left_pad([rng.integers(1, BASE_VOCAB, size=n).tolist() for n in (7, 4, 9, 12)])
    return SidIndex.build(sid_map, tokens), ids, mask


def assert_same_search(a, b):
    assert torch.equal(a.items, b.items)
    torch.testing.assert_close(a.scores, b.scores, rtol=1e-5, atol=1e-5)


def test_beams_share_one_cross_attention_cache_per_user(monkeypatch):
    import grec.decoding.shared_cross as shared_cross

    index, ids, mask = four_users(3, 2)
    model = tiny_t5(BASE_VOCAB + 20)
    grouped, attend = [], shared_cross.shared_cross_attention

    def spy(module, query, key, *args, **kwargs):
        grouped.append((query.shape[0], key.shape[0]))
        return attend(module, query, key, *args, **kwargs)

    monkeypatch.setattr(shared_cross, "shared_cross_attention", spy)
    shared = sid_beam_search(model, ids, mask, index, num_beams=10, seq2seq=True)
    assert model.config._attn_implementation == "sdpa"  # restored after the search
    assert (40, 4) in grouped  # 4 users x 10 beams of queries over 4 users' keys and values
    from grec.decoding import beam, caches

    with torch.no_grad():  # the same search with the cross-attention cache repeated per beam
        repeated = beam._search(caches.Seq2SeqCache(model, 10, 2), ids, mask, index, 10, 10, None, None)
    assert_same_search(shared, repeated)


def test_causal_beams_move_only_their_generated_positions(monkeypatch):
    from grec.decoding import caches, shared_prompt

    monkeypatch.setattr(shared_prompt, "MODEL_TYPES", ())  # the repeated prompt cache, reordered in place
    index, ids, mask = four_users(4, 3)
    model = tiny_llama(BASE_VOCAB + 20)
    partial = sid_beam_search(model, ids, mask, index, num_beams=6)
    monkeypatch.setattr(caches, "_reorder_after", lambda cache, parent, start: cache.reorder_cache(parent))
    whole = sid_beam_search(model, ids, mask, index, num_beams=6)  # Hugging Face's reorder of the whole cache
    assert_same_search(partial, whole)


@pytest.mark.parametrize("exclude", [None, [[0, 5], [], [7], [1, 2, 3]]])
def test_causal_beams_share_one_prompt_cache_per_user(monkeypatch, exclude):
    import grec.decoding.shared_prompt as shared_prompt

    index, ids, mask = four_users(5, 4)
    model = tiny_llama(BASE_VOCAB + 20)  # 4 query heads over 2 key/value heads
    grouped, attend = [], shared_prompt.shared_prompt_attention

    def spy(module, query, key, *args, **kwargs):
        if isinstance(key, tuple):
            grouped.append((query.shape[0], key[0].shape[0], key[1].shape[0], key[1].shape[2]))
        return attend(module, query, key, *args, **kwargs)

    monkeypatch.setattr(shared_prompt, "shared_prompt_attention", spy)
    shared = sid_beam_search(model, ids, mask, index, num_beams=10, exclude=exclude)
    assert model.config._attn_implementation == "sdpa"  # restored after the search
    # 4 users x 10 beams of queries over 4 prompts and 40 beams' own tokens: 1 then 2 generated positions
    assert sorted(set(grouped)) == [(40, 4, 40, 1), (40, 4, 40, 2)]
    monkeypatch.setattr(shared_prompt, "MODEL_TYPES", ())
    repeated = sid_beam_search(model, ids, mask, index, num_beams=10, exclude=exclude)  # prompt cache per beam
    assert_same_search(shared, repeated)


def test_shared_prompt_attention_equals_sdpa_over_repeated_keys():
    """Random GQA tensors, padded prompts, beams with different generated keys: the same output as SDPA."""
    from grec.decoding.shared_prompt import prompt_mask, shared_prompt_attention

    torch.manual_seed(0)
    users, width, heads, kv_heads, length, steps, dim = 3, 5, 6, 2, 7, 3, 8
    query = torch.randn(users * width, heads, 1, dim)
    prompt_k, prompt_v = torch.randn(2, users, kv_heads, length, dim)
    own_k, own_v = torch.randn(2, users * width, kv_heads, steps, dim)
    padding = torch.ones(users, length, dtype=torch.long)
    padding[0, :3] = padding[2, :1] = 0
    out, _ = shared_prompt_attention(
        None, query, (prompt_k, own_k), (prompt_v, own_v), prompt_mask(padding, torch.float32), scaling=0.3
    )
    keys = torch.cat([prompt_k.repeat_interleave(width, 0), own_k], 2).repeat_interleave(heads // kv_heads, 1)
    values = torch.cat([prompt_v.repeat_interleave(width, 0), own_v], 2).repeat_interleave(heads // kv_heads, 1)
    keep = torch.cat([padding.repeat_interleave(width, 0), torch.ones(users * width, steps, dtype=torch.long)], 1)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query, keys, values, attn_mask=keep[:, None, None, :] == 1, scale=0.3
    )
    torch.testing.assert_close(out, expected.transpose(1, 2), rtol=1e-5, atol=1e-6)
