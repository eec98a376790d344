"""Title-mode speed (BIGRec): grec's prefilled title search against plain ``generate`` on the same prompts.

Both run Hugging Face beam search constrained to the catalog's title trie. Plain ``generate``
repeats every prompt for its beams before the first forward, so a prompt is encoded once per
beam; grec encodes it once (``grec.decoding.titles.prefill``) and hands the cache to ``generate``.
The two must return the same titles; the script checks that and prints the speed ratio last.

    .venv/bin/python bench/titles.py --checkpoint outputs/quality/bigrec-seed0/train/best \
        --records outputs/quality/bigrec-seed0/records/test.json --users 16

The checkpoint is any title-mode model (``grec records --style title`` + ``grec train``): the
bigrec recipe's, or the one ``bench/quality.py --recipes bigrec`` leaves in outputs/quality.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from provenance import provenance

from grec.base.io import read_json, read_jsonl, write_json
from grec.decoding.ranker import prompt_batch
from grec.decoding.title_trie import TitlePrefixConstraint, TitleTrie
from grec.decoding.titles import generate_titles, title_config
from grec.lm.checkpoint import load_trained

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="outputs/quality/bigrec-seed0/train/best")
    parser.add_argument("--records", default="outputs/quality/bigrec-seed0/records/test.json")
    parser.add_argument("--items", default="data/ml-100k/items.jsonl")
    parser.add_argument("--users", type=int, default=16, help="prompts in the one timed batch")
    parser.add_argument("--beams", type=int, default=10)
    parser.add_argument("--cutoff_len", type=int, default=384)
    parser.add_argument("--json", default=str(ROOT / "docs" / "bench" / "titles.json"))
    args = parser.parse_args()

    for path in (args.checkpoint, args.records, args.items):
        if not Path(path).exists():
            raise SystemExit(
                f"{path} not found: train a title model first, e.g. "
                "`bench/quality.py --recipes bigrec --seeds 0`, or pass --checkpoint/--records"
            )
    model, tokenizer, seq2seq = load_trained(args.checkpoint)
    if seq2seq:
        raise SystemExit("bench/titles.py times a causal model: seq2seq generate already encodes once per prompt")
    model.eval()
    titles = {str(r["item_id"]): r["title"] for _, r in read_jsonl(args.items)}
    trie = TitleTrie(tokenizer, titles)
    records = read_json(args.records)[: args.users]
    ids, mask = prompt_batch(records, tokenizer, args.cutoff_len, False, "cpu", trie.longest)
    width = args.beams

    started = time.perf_counter()
    ours = generate_titles(model, tokenizer, records, width, width, False, trie, args.cutoff_len)
    grec_seconds = time.perf_counter() - started

    config = title_config(width, width, 64, tokenizer.eos_token_id, tokenizer.pad_token_id)
    started = time.perf_counter()
    with torch.no_grad():
        plain = model.generate(
            input_ids=ids,
            attention_mask=mask,
            generation_config=config,
            prefix_allowed_tokens_fn=TitlePrefixConstraint(trie, ids.shape[1]),
        )
    plain_seconds = time.perf_counter() - started
    plain = plain[:, ids.shape[1] :].tolist()
    same = ours == [plain[k * width : (k + 1) * width] for k in range(len(records))]

    result = {
        "checkpoint": args.checkpoint,
        "users": len(records),
        "beams": width,
        "prompt_tokens": ids.shape[1],
        "plain_generate_seconds": round(plain_seconds, 2),
        "grec_seconds": round(grec_seconds, 2),
        "same_titles": same,
        "ratio": round(plain_seconds / grec_seconds, 2),
    }
    write_json(args.json, {**provenance(), **result})
    print(json.dumps(result, indent=1))
    if not same:
        raise SystemExit("the prefilled search returned different titles from plain generate: a bug, please report it")
    print(f"grec / plain generate (title search): {result['ratio']:.2f}x")


if __name__ == "__main__":
    main()
