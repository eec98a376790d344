"""Text embeddings from BERT-style, T5 and causal-LM encoder folders; pooling on either padding side."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

from grec.base import assets
from grec.base.errors import GrecError
from grec.lm.encoder import embed_texts, pool

TEXTS = ["Toy Story (1995). Genres: Animation.", "Heat", "A much longer description of a film about a heist in L.A."]


def test_pool_last_finds_last_real_token_on_both_padding_sides():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert pool(hidden, right, "last").flatten().tolist() == [1.0, 7.0]
    assert pool(hidden, left, "last").flatten().tolist() == [3.0, 7.0]
    assert pool(hidden, right, "mean").flatten().tolist() == [0.5, 5.5]


def test_minilm_embeddings_are_unit_norm_and_batch_independent():
    one = embed_texts(TEXTS, batch_size=1)
    all_at_once = embed_texts(TEXTS, batch_size=8)
    assert one.shape == (3, 384)
    assert np.allclose(np.linalg.norm(one, axis=1), 1, atol=1e-5)
    assert np.allclose(one, all_at_once, atol=1e-5)  # padding does not leak into the mean
    assert one[0] @ one[1] < 0.9


def test_causal_and_t5_encoder_folders(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(assets.minilm_dir())
    torch.manual_seed(0)
    llama = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
        )
    )
    llama.save_pretrained(tmp_path / "llama")
    tokenizer.save_pretrained(tmp_path / "llama")
    t5 = T5ForConditionalGeneration(
        T5Config(vocab_size=len(tokenizer), d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2)
    )
    t5.save_pretrained(tmp_path / "t5")
    tokenizer.save_pretrained(tmp_path / "t5")
    for folder, pooling in ((tmp_path / "llama", "last"), (tmp_path / "llama", "mean"), (tmp_path / "t5", "mean")):
        x = embed_texts(TEXTS, encoder=folder, pooling=pooling, batch_size=2)
        assert x.shape == (3, 16) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
        assert np.allclose(x, embed_texts(TEXTS, encoder=folder, pooling=pooling, batch_size=1), atol=1e-5)


def test_the_cache_returns_the_same_embeddings_and_notices_a_changed_encoder(tmp_path, monkeypatch):
    import os
    import shutil

    folder = tmp_path / "minilm"
    shutil.copytree(assets.minilm_dir(), folder)
    monkeypatch.setenv("GREC_CACHE", str(tmp_path / "cache"))  # its own: the run's cache is shared by the workers
    cached = lambda: sorted((tmp_path / "cache" / "embeddings").glob("*.npy"))  # noqa: E731
    before = cached()
    first = embed_texts(TEXTS, encoder=folder)
    assert len(cached()) == len(before) + 1
    stored = np.load(next(p for p in cached() if p not in before))
    assert np.array_equal(stored, first)
    np.save(next(p for p in cached() if p not in before), stored * 0)  # a cache hit reads the file
    assert np.array_equal(embed_texts(TEXTS, encoder=folder), stored * 0)
    assert np.array_equal(embed_texts(TEXTS, encoder=folder, cache=False), first)  # computed, nothing stored
    assert len(cached()) == len(before) + 1
    assert np.allclose(embed_texts(TEXTS[:2], encoder=folder), first[:2], atol=1e-5)  # other texts: another entry
    weights = folder / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert np.array_equal(embed_texts(TEXTS, encoder=folder), first)  # a changed encoder file: computed again
    assert len(cached()) == len(before) + 3


def test_bad_encoder_settings(tmp_path):
    with pytest.raises(GrecError, match="encoder folder not found"):
        embed_texts(TEXTS, encoder=tmp_path / "missing")
    with pytest.raises(GrecError, match="--pooling"):
        embed_texts(TEXTS, pooling="max")
