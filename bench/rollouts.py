"""GRPO rollout speed: grec's SID-constrained beam (what ``grec align --method grpo`` rolls out with) against
``model.generate(prefix_allowed_tokens_fn=...)`` (the LC-Rec / MiniOneRec way), same model, same prompts.

Each prompt gets ``--generations`` rollouts (G beams, G returned). grec's path is
``Ranker.rank`` with the history excluded, as align uses it; the Hugging Face path is beam
search under ``SidPrefixConstraint`` over the same catalog index (it cannot exclude the history,
so it does less work). Prints rollouts per second of each and the ratio, and writes them to
``--out`` (docs/bench/rollouts.json).

    .venv/bin/python bench/rollouts.py --checkpoint outputs/demo/sidlm/train/best \\
        --records outputs/demo/sidlm/records/valid.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from provenance import provenance

from grec.base.io import write_json
from grec.base.sid import SidMap
from grec.decoding.hf import hf_constrained_generate
from grec.decoding.ranker import Ranker, prompt_batch
from grec.lm.checkpoint import load_trained

ROOT = Path(__file__).resolve().parent.parent


def rate(fn, rollouts: int, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return rollouts / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a causal SID checkpoint (sidlm best/)")
    parser.add_argument("--records", required=True, help="next-item records whose prompts are rolled out")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--cutoff_len", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench" / "rollouts.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    model, tokenizer, seq2seq = load_trained(args.checkpoint)
    model.eval()
    sid_map = SidMap.load(args.checkpoint)
    records = json.loads(Path(args.records).read_text())[: args.prompts]
    g = args.generations
    ranker = Ranker(model, tokenizer, sid_map, seq2seq, g, g, args.cutoff_len)
    ids, mask = prompt_batch(records, tokenizer, args.cutoff_len, seq2seq, "cpu", ranker.response_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def hf():
        rows, _ = hf_constrained_generate(
            model, ids, mask, ranker.index, g, g, tokenizer.eos_token_id, pad, seq2seq=seq2seq
        )
        return rows

    total = len(records) * g
    valid = float((torch.as_tensor(hf()) >= 0).float().mean())
    result = {
        "command": "python bench/rollouts.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items() if k != "out"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU, "
        f"{torch.get_num_threads()} torch threads",
        "prompts": len(records),
        "generations": g,
        "grec_rollouts_per_s": round(rate(lambda: ranker.rank(records, exclude_history=True), total, args.repeats), 1),
        "hf_prefix_fn_rollouts_per_s": round(rate(hf, total, args.repeats), 1),
        "hf_valid_share": round(valid, 4),
    }
    result["ratio"] = round(result["grec_rollouts_per_s"] / result["hf_prefix_fn_rollouts_per_s"], 2)
    print(json.dumps(result, indent=1))
    write_json(Path(args.out), {**provenance(), **result})


if __name__ == "__main__":
    main()
