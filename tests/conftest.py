import os

import pytest
from helpers import built_once

from grec.cli import main


@pytest.fixture(scope="session", autouse=True)
def grec_cache(tmp_path_factory):
    """One fresh grec cache for the test run: the GGUF conversion runs (and is tested) once, not in ~/.cache."""
    folder = built_once(tmp_path_factory, "grec-cache", lambda folder: None)
    previous = os.environ.get("GREC_CACHE")
    os.environ["GREC_CACHE"] = str(folder)  # subprocesses (launchers, scripts) inherit it
    yield folder
    if previous is None:
        del os.environ["GREC_CACHE"]
    else:
        os.environ["GREC_CACHE"] = previous


@pytest.fixture
def grec_cli(capsys):
    """Run ``grec ARGS...`` in-process; return (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def ml100k(tmp_path_factory):
    """Real MovieLens-100K prepared with the default settings."""
    from grec.prepare import PrepareConfig, prepare

    return built_once(
        tmp_path_factory, "prep/ml-100k", lambda out: prepare(PrepareConfig(dataset="ml-100k", out=str(out)))
    )


@pytest.fixture(scope="session")
def ml100k_sid(ml100k, tmp_path_factory):
    """Semantic IDs of ML-100K: MiniLM embeddings, RQ-KMeans 3 x 256, dedup level (the defaults)."""
    from grec.index import IndexConfig, build_index

    return built_once(
        tmp_path_factory, "sid/rqkmeans", lambda out: build_index(IndexConfig(data=str(ml100k), out=str(out)))
    )


@pytest.fixture(scope="session")
def smol_tokenizer_dir(tmp_path_factory):
    """SmolLM2-135M-Instruct's tokenizer, read once from the GGUF file and saved as a plain folder."""
    from transformers import AutoTokenizer

    from grec.base import assets

    def build(folder):
        gguf = assets.smollm2_gguf()
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)

    return built_once(tmp_path_factory, "smol-tokenizer", build)


@pytest.fixture(scope="session")
def t5_tokenizer_dir(ml100k, tmp_path_factory):
    """A T5 tokenizer around a sentencepiece model trained here on ML-100K item texts."""
    import sentencepiece as spm
    from helpers import read_jsonl
    from transformers import T5Tokenizer

    def build(folder):
        corpus = folder / "corpus.txt"
        corpus.write_text("\n".join(r["text"] for r in read_jsonl(ml100k / "items.jsonl")))
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(folder / "spiece"),
            vocab_size=600,
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            minloglevel=2,
        )
        T5Tokenizer.from_pretrained(folder, extra_ids=0).save_pretrained(folder)

    return built_once(tmp_path_factory, "t5-tokenizer", build)


@pytest.fixture(scope="session")
def tiny_llama_dir(smol_tokenizer_dir, tmp_path_factory):
    """A 2-layer, 16-wide LLaMA with random weights around SmolLM2's real tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    def build(folder):
        tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            tie_word_embeddings=False,
            eos_token_id=tokenizer.eos_token_id,
        )
        LlamaForCausalLM(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return built_once(tmp_path_factory, "tiny-llama", build)
