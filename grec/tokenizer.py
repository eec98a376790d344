"""``grec tokenizer``: train a sentencepiece tokenizer on a corpus and save it as a Hugging Face tokenizer.

Two layouts: ``t5`` (pad 0, eos 1, unk 2, no bos; eos appended) and ``llama`` (unk 0, bos 1,
eos 2, pad = eos; bos prepended), either with a unigram or a BPE model; the saved fast tokenizer
segments exactly as sentencepiece does, and ``sentencepiece.model`` is kept beside it. ``--sid``
adds a SID folder's item tokens as added tokens, so a model trained from scratch (TIGER) gets
one token per code.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grec.base.config import callable_stage
from grec.base.errors import GrecError, where
from grec.base.fields import neutral, unrecorded
from grec.base.folders import StagedDir
from grec.base.io import refuse_foreign, text_lines

SPECIALS = {
    "t5": {"pad_id": 0, "eos_id": 1, "unk_id": 2, "bos_id": -1},
    "llama": {"unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": -1},
}


@dataclass
class TokenizerConfig:
    """grec tokenizer: a sentencepiece model (unigram or BPE) trained on text, saved as a Hugging Face tokenizer.

    Example: grec tokenizer --corpus "[data/ml-100k/items.jsonl]" --field "[text]" --vocab_size 2000 --out outputs/tok

    Args:
        corpus: text files (one document per line) or JSON-lines files (see --field); .gz works too.
        field: JSON-lines fields holding the text.
        vocab_size: pieces in the vocabulary (special tokens included).
        model_type: unigram or bpe.
        style: t5 or llama (special-token layout and tokenizer class).
        sid: a grec index folder whose SID tokens are added to the tokenizer.
        out: folder for the tokenizer.
        encoding: text encoding of the corpus files.
        max_sentences: train on a random sample of this many documents (sentencepiece holds its input in memory); 0 uses all.
        overwrite: write into an --out folder that holds files but no tokenizer (without it such a folder is refused).
    """

    corpus: list[str] | None = None
    field: list[str] | None = None
    vocab_size: int = 8000
    model_type: str = "unigram"
    style: str = "t5"
    sid: str | None = None
    out: str = unrecorded("")
    encoding: str = "utf-8"
    max_sentences: int = 0
    overwrite: bool = neutral(False)

    def __post_init__(self) -> None:
        self.corpus = list(self.corpus or [])
        self.field = list(self.field or ["text"])
        if not self.corpus:
            raise GrecError("--corpus: give one or more text or JSON-lines files")
        for path in self.corpus:
            if not Path(path).is_file():
                raise GrecError(f"{path}: corpus file not found")
        if self.model_type not in ("unigram", "bpe"):
            raise GrecError(f"--model_type: expected unigram or bpe, got {self.model_type!r}")
        if self.style not in SPECIALS:
            raise GrecError(f"--style: expected t5 or llama, got {self.style!r}")
        if self.vocab_size < 8:
            raise GrecError("--vocab_size: must be at least 8")
        if not self.out:
            raise GrecError("--out: required")
        refuse_foreign(Path(self.out), "tokenizer_config.json", self.overwrite)


def corpus_lines(paths: list[str], fields: list[str], encoding: str = "utf-8"):
    """Documents of the corpus files, one per line; JSON-lines files give the named fields."""
    for path in paths:
        jsonl = Path(path).name.removesuffix(".gz").endswith((".jsonl", ".json"))
        count = 0
        for number, line in enumerate(text_lines(path, encoding), 1):
            if not line.strip():
                continue
            if jsonl:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise GrecError(f"{where(path, number)}: not valid JSON ({err.msg})") from None
                texts = [str(record[f]) for f in fields if isinstance(record, dict) and record.get(f)]
            else:
                texts = [line]
            for text in texts:
                text = " ".join(text.split())
                if text:
                    count += 1
                    yield text
        if count == 0:
            raise GrecError(
                f"{path}: no text in this corpus file" + (f" (fields: {', '.join(fields)})" if jsonl else "")
            )


def train_tokenizer(cfg: TokenizerConfig):
    """Train, wrap and save the tokenizer; return it."""
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        with open(corpus, "w", encoding="utf-8") as handle:
            for text in corpus_lines(cfg.corpus, cfg.field, cfg.encoding):
                handle.write(text + "\n")
        try:
            spm.SentencePieceTrainer.train(
                input=str(corpus),
                model_prefix=str(Path(tmp) / "sp"),
                vocab_size=cfg.vocab_size,
                model_type=cfg.model_type,
                character_coverage=1.0,
                minloglevel=2,
                input_sentence_size=max(cfg.max_sentences, 0),
                shuffle_input_sentence=cfg.max_sentences > 0,
                **SPECIALS[cfg.style],
            )
        except RuntimeError as err:
            limit = re.search(r"<= (\d+)", str(err))
            if limit:
                raise GrecError(
                    f"--vocab_size {cfg.vocab_size}: this corpus supports at most {limit.group(1)}"
                ) from None
            floor = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", str(err))
            if floor:
                raise GrecError(
                    f"--vocab_size {cfg.vocab_size}: this corpus needs at least {floor.group(2)} "
                    f"(every distinct character plus the special tokens)"
                ) from None
            raise GrecError(f"sentencepiece could not train on the corpus: {err}") from None
        folder = Path(tmp) / "hf"
        folder.mkdir()
        tokenizer = _wrap(cfg.style, Path(tmp) / "sp.model", folder)
        if cfg.sid is not None:
            from grec.base.sid import SidMap, add_sid_tokens

            add_sid_tokens(tokenizer, SidMap.load(cfg.sid))
        with StagedDir(Path(cfg.out), "tokenizer_config.json") as staged:
            tokenizer.save_pretrained(staged)
            shutil.copy(Path(tmp) / "sp.model", Path(staged) / "sentencepiece.model")
    return tokenizer


# special pieces per layout: the names the Hugging Face tokenizer gets, and the template around a text
LAYOUTS = {
    "t5": ({"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}, "$A </s>"),
    "llama": ({"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>"}, "<s> $A"),
}


def _wrap(style: str, model_file: Path, folder: Path):
    """A fast Hugging Face tokenizer that segments exactly as the sentencepiece model does.

    transformers converts a sentencepiece model by the class's own algorithm (T5: unigram, LLaMA:
    BPE), so a unigram model read as LLaMA, or a BPE model read as T5, segments badly. The
    converter is chosen by the model's algorithm; the layout only names the special tokens and
    where they go (T5: text then eos; LLaMA: bos then text).
    """
    import sentencepiece as spm
    from tokenizers.processors import TemplateProcessing
    from transformers import LlamaTokenizer, PreTrainedTokenizerFast, T5Tokenizer

    processor = spm.SentencePieceProcessor(model_file=str(model_file))
    names, template = LAYOUTS[style]
    layout = {"bos_token": None, **names}  # naming the layout's pieces keeps the converter from adding its own
    if _is_unigram(model_file):
        shutil.copy(model_file, folder / "spiece.model")
        converted = T5Tokenizer.from_pretrained(folder, extra_ids=0, **layout)
    else:
        shutil.copy(model_file, folder / "tokenizer.model")
        converted = LlamaTokenizer.from_pretrained(folder, **layout)
    backend = converted.backend_tokenizer
    specials = [(piece, processor.piece_to_id(piece)) for piece in sorted(set(names.values())) if piece in template]
    backend.post_processor = TemplateProcessing(
        single=template, pair=f"{template} {template.replace('$A', '$B')}", special_tokens=specials
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, **names)


def _is_unigram(model_file: Path) -> bool:
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    proto = model_pb2.ModelProto()
    proto.ParseFromString(model_file.read_bytes())
    return proto.trainer_spec.model_type == model_pb2.TrainerSpec.UNIGRAM


callable_stage(__name__, TokenizerConfig, train_tokenizer)  # grec.tokenizer(...) runs the stage (grec.base.config)
