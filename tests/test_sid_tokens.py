"""SID tokens in a real LLaMA-family tokenizer (SmolLM2's) and a T5 sentencepiece tokenizer."""

import logging

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

from grec.base.errors import GrecError
from grec.base.sid import SidMap, add_sid_tokens


def tiny_llama(vocab: int, tied: bool):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=tied,
    )
    return LlamaForCausalLM(config)


def tiny_t5(vocab: int):
    torch.manual_seed(0)
    return T5ForConditionalGeneration(
        T5Config(vocab_size=vocab, d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2, decoder_start_token_id=0)
    )


def check_added(tokenizer, model, sid_map):
    before = len(tokenizer)
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    ids = add_sid_tokens(tokenizer, sid_map, model)
    assert len(ids.added) == len(sid_map.vocabulary()) == len(tokenizer) - before
    new_in, new_out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert new_in.shape[0] == new_out.shape[0] == len(tokenizer)
    assert torch.equal(new_in[:before], old_in) and torch.equal(new_out[:before], old_out)
    assert torch.allclose(new_in[before:], old_in.mean(0).expand(len(tokenizer) - before, -1))
    assert torch.allclose(new_out[before:], old_out.mean(0).expand(len(tokenizer) - before, -1))
    # every SID string encodes to exactly its token ids and decodes back
    texts = [sid_map.sid_string(item) for item in sid_map.item_ids]
    assert tokenizer(texts, add_special_tokens=False)["input_ids"] == ids.item_ids.tolist()
    assert [tokenizer.decode(row) for row in ids.item_ids.tolist()[:50]] == texts[:50]
    # added in one go, each level's ids are one contiguous block in level order
    lo_a, hi_a = ids.level_range(0)
    lo_b, _ = ids.level_range(1)
    assert lo_a == before and hi_a < lo_b
    return ids


def test_llama_tokenizer_untied_model(ml100k_sid, smol_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    sid_map = SidMap.load(ml100k_sid)
    model = tiny_llama(len(tokenizer), tied=False)
    ids = check_added(tokenizer, model, sid_map)
    logits = model(input_ids=torch.tensor([ids.item_ids[0].tolist()])).logits
    assert logits.shape[-1] == len(tokenizer)
    prompt = tokenizer("Next movie: " + sid_map.sid_string(sid_map.item_ids[5]), add_special_tokens=False)["input_ids"]
    assert prompt[-4:] == ids.item_ids[5].tolist()


def test_llama_tokenizer_tied_model(ml100k_sid, smol_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    model = tiny_llama(len(tokenizer), tied=True)
    check_added(tokenizer, model, SidMap.load(ml100k_sid))
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_t5_sentencepiece_tokenizer(ml100k_sid, t5_tokenizer_dir):
    from transformers import T5Tokenizer

    tokenizer = T5Tokenizer.from_pretrained(t5_tokenizer_dir)
    model = tiny_t5(len(tokenizer))
    ids = check_added(tokenizer, model, SidMap.load(ml100k_sid))
    out = model(input_ids=torch.tensor([[5, 6, 1]]), decoder_input_ids=torch.tensor([ids.item_ids[0].tolist()]))
    assert out.logits.shape[-1] == len(tokenizer)


def test_incremental_adds_only_missing_and_keeps_trained_rows(ml100k_sid, smol_tokenizer_dir, caplog):
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    full = SidMap.load(ml100k_sid)
    part = SidMap(full.item_ids[:300], full.codes[:300])
    model = tiny_llama(len(tokenizer), tied=False)
    first = add_sid_tokens(tokenizer, part, model)
    with torch.no_grad():  # pretend training changed the SID rows
        model.get_input_embeddings().weight[len(tokenizer) - len(first.added) :] += 1.0
    trained = model.get_input_embeddings().weight.detach().clone()
    with caplog.at_level(logging.INFO, logger="grec"):
        second = add_sid_tokens(tokenizer, full, model)
    assert set(second.added) == set(full.vocabulary()) - set(part.vocabulary())
    assert torch.equal(model.get_input_embeddings().weight[: len(trained)], trained)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert f"embed_tokens is updated from history:{len(trained)} to current:{len(tokenizer)}" in caplog.text
    assert np.array_equal(second.item_ids[:300], first.item_ids)
    again = add_sid_tokens(tokenizer, full, model)
    assert again.added == [] and np.array_equal(again.item_ids, second.item_ids)


def test_text_init_is_mean_of_title_embeddings(smol_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    sid_map = SidMap(["x", "y", "z"], np.array([[0, 0], [0, 1], [1, 0]]))
    titles = {"x": "Heat", "y": "Alien", "z": "Up"}
    model = tiny_llama(len(tokenizer), tied=True)
    table = model.get_input_embeddings().weight.detach().clone()
    ids = add_sid_tokens(tokenizer, sid_map, model, init="text", titles=titles)

    def title_vec(item):
        return table[tokenizer(titles[item], add_special_tokens=False)["input_ids"]].mean(0)

    weight = model.get_input_embeddings().weight
    a0, b0 = ids.level_ids[0][0], ids.level_ids[1][0]
    assert torch.allclose(weight[a0], (title_vec("x") + title_vec("y")) / 2, atol=1e-6)  # <a_0>: items x, y
    assert torch.allclose(weight[b0], (title_vec("x") + title_vec("z")) / 2, atol=1e-6)  # <b_0>: items x, z


def test_spread_init_keeps_the_text_directions_at_the_spread_of_real_rows(smol_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    sid_map = SidMap(["x", "y", "z", "w"], np.array([[0, 0], [1, 1], [2, 0], [2, 2]]))
    titles = {"x": "Heat", "y": "Alien", "z": "Up", "w": "Jaws"}
    text_model, model = tiny_llama(len(tokenizer), tied=True), tiny_llama(len(tokenizer), tied=True)
    old = model.get_input_embeddings().weight.detach().clone()
    add_sid_tokens(AutoTokenizer.from_pretrained(smol_tokenizer_dir), sid_map, text_model, init="text", titles=titles)
    ids = add_sid_tokens(tokenizer, sid_map, model, init="spread", titles=titles)
    text, spread = text_model.get_input_embeddings().weight.detach(), model.get_input_embeddings().weight.detach()
    centre, radius = old.mean(0), (old - old.mean(0)).norm(dim=1).mean()
    for level in range(2):
        rows = torch.tensor(ids.level_ids[level][ids.level_ids[level] >= 0])
        assert len(rows) == 3
        got, want = spread[rows], text[rows] - text[rows].mean(0)
        assert torch.allclose(got.mean(0), centre, atol=1e-5)  # centred where the model's own rows are
        assert torch.allclose((got - centre).norm(dim=1).mean(), radius, atol=1e-5)  # as far apart as they are
        assert torch.allclose(torch.cosine_similarity(got - centre, want), torch.ones(3), atol=1e-5)


def test_clashing_tokens_are_refused(smol_tokenizer_dir, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"<unk>": 0, "<a_0>": 1, "hello": 2}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>")
    with pytest.raises(GrecError, match="already has 1 SID-shaped tokens in its own vocabulary"):
        add_sid_tokens(tokenizer, SidMap(["x", "y"], np.array([[0], [1]])))
