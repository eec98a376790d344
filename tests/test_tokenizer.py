"""grec tokenizer on real text: round trips, SID tokens, both layouts, bad corpora."""

import json

import pytest
from transformers import AutoTokenizer

from grec.base.errors import GrecError
from grec.base.sid import SidMap
from grec.tokenizer import TokenizerConfig, train_tokenizer


def test_t5_tokenizer_with_sid_tokens_round_trips(ml100k, ml100k_sid, tmp_path):
    out = tmp_path / "t5"
    train_tokenizer(
        TokenizerConfig(
            corpus=[str(ml100k / "items.jsonl")], field=["text"], vocab_size=800, sid=str(ml100k_sid), out=str(out)
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(out)
    sid_map = SidMap.load(ml100k_sid)
    assert len(tokenizer) == 800 + len(sid_map.vocabulary())
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    texts = [json.loads(line)["text"] for line in (ml100k / "items.jsonl").read_text().splitlines()[:200]]
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == " ".join(text.split())
    sid = sid_map.sid_string(sid_map.item_ids[0])
    ids = tokenizer(sid, add_special_tokens=False)["input_ids"]
    assert len(ids) == sid_map.levels and tokenizer.decode(ids) == sid


def test_llama_bpe_layout(ml100k, tmp_path):
    out = tmp_path / "llama"
    train_tokenizer(
        TokenizerConfig(
            corpus=[str(ml100k / "items.jsonl")], vocab_size=600, model_type="bpe", style="llama", out=str(out)
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert (tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    ids = tokenizer("Toy Story (1995). Genres: Animation.", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == "Toy Story (1995). Genres: Animation."


def test_bad_corpora(ml100k, tmp_path):
    with pytest.raises(GrecError, match="--vocab_size 90000: this corpus supports at most"):
        train_tokenizer(
            TokenizerConfig(corpus=[str(ml100k / "items.jsonl")], vocab_size=90000, out=str(tmp_path / "a"))
        )
    latin = tmp_path / "latin.txt"
    latin.write_bytes("first line\nAmélie\n".encode("latin-1"))
    with pytest.raises(GrecError, match=r"latin.txt:2: not utf-8 text at byte 13"):
        train_tokenizer(TokenizerConfig(corpus=[str(latin)], vocab_size=50, out=str(tmp_path / "b")))
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"title": "x"}\n')
    with pytest.raises(GrecError, match="empty.jsonl: no text in this corpus file"):
        train_tokenizer(TokenizerConfig(corpus=[str(empty)], vocab_size=50, out=str(tmp_path / "c")))
    assert not any((tmp_path / name).exists() for name in "abc")
    with pytest.raises(GrecError, match="--vocab_size 12: this corpus needs at least 15"):
        train_tokenizer(
            TokenizerConfig(corpus=[str(latin)], vocab_size=12, encoding="latin-1", out=str(tmp_path / "d"))
        )
    train_tokenizer(TokenizerConfig(corpus=[str(latin)], vocab_size=16, encoding="latin-1", out=str(tmp_path / "d")))
    assert (
        AutoTokenizer.from_pretrained(tmp_path / "d").decode(
            AutoTokenizer.from_pretrained(tmp_path / "d")("Amélie", add_special_tokens=False)["input_ids"]
        )
        == "Amélie"
    )


@pytest.mark.parametrize("style", ["t5", "llama"])
@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_segmentation_is_sentencepieces_own(style, model_type, tmp_path):
    """The saved tokenizer splits text exactly as the trained sentencepiece model does, for every
    layout and algorithm (transformers' own conversion reads a unigram model as BPE for LLaMA)."""
    import pandas as pd
    import sentencepiece as spm

    from grec.base.assets import dataset_file

    reviews = pd.read_parquet(dataset_file("clothing-reviews"), columns=["Review Text"])["Review Text"].dropna()
    texts = [" ".join(t.split()) for t in reviews.head(3000)]
    corpus = tmp_path / "reviews.txt"
    corpus.write_text("\n".join(texts[:2500]) + "\n")
    out = tmp_path / "tok"
    train_tokenizer(
        TokenizerConfig(corpus=[str(corpus)], vocab_size=1500, model_type=model_type, style=style, out=str(out))
    )
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert len(tokenizer) == 1500  # no special token added beside the model's pieces
    processor = spm.SentencePieceProcessor(model_file=str(out / "sentencepiece.model"))
    held_out = texts[2500:2700]
    assert all(tokenizer(t, add_special_tokens=False)["input_ids"] == processor.encode(t) for t in held_out)
    assert tokenizer.tokenize("this dress")[-1] == "▁dress"  # a frequent word is one piece
    ids = tokenizer("this dress")["input_ids"]
    if style == "llama":
        assert ids[0] == tokenizer.bos_token_id == 1 and tokenizer.pad_token_id == tokenizer.eos_token_id == 2
    else:
        assert ids[-1] == tokenizer.eos_token_id == 1 and tokenizer.pad_token_id == 0 and tokenizer.bos_token_id is None
