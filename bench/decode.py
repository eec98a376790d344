# ruff: noqa: E402
"""Decoding speed: grec's vectorised SID beam search against Hugging Face generate, on the same model and prompts.

Cases (one run, same prompts and beams): HF unconstrained beam search; HF with a dict-trie
prefix_allowed_tokens_fn (the LC-Rec / LETTER way); HF with grec's prefix function; grec's
vectorised search; and a pure forward-pass loop (encoder + one cached decoder step per level,
no search logic) as the floor. grec's search and the floor keep freed memory in the process
between steps, as ``grec infer`` does on a CPU (grec/lm/cpu_memory.py); one more row runs HF's
unconstrained search with that setting too. Model: the TIGER T5 (d_model 128, 4+4 layers, random weights:
speed does not depend on training) over a random catalog of SID items.

    .venv/bin/python bench/decode.py --quick     # T5, 10k items, batch 64, 20 beams (< 2 minutes)
    .venv/bin/python bench/decode.py --quick --contention 2   # also under 2 busy processes: both slowdowns

With ``--contention N``, HF's unconstrained search and grec's are timed again while N other
processes keep the CPU busy (a loaded machine, another job on a shared box), and each one's
slowdown against its idle time is printed beside the threads every library uses.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from grec.base.threads import prefer_passive_waiting

prefer_passive_waiting()  # as grec infer does, before torch loads: the imports below wait for it

# isort: split
import numpy as np
import torch
from provenance import provenance
from transformers import T5Config, T5ForConditionalGeneration

from grec.base.sid import SidMap, SidTokens
from grec.base.threads import thread_report
from grec.decoding import SidIndex, sid_beam_search
from grec.decoding.hf import SidPrefixConstraint, search_config
from grec.decoding.shared_cross import one_cross_cache_per_user
from grec.decoding.shared_prompt import SharedPromptCache, one_prompt_cache_per_user, prompt_mask
from grec.lm.cpu_memory import kept_freed_memory

ROOT = Path(__file__).resolve().parent.parent
SPECIAL = 3  # pad 0, eos 1, unk 2


def catalog(n_items: int, sizes=(256, 256, 256), seed: int = 0) -> tuple[SidMap, SidTokens]:
    rng = np.random.default_rng(seed)
    codes = np.unique(np.stack([rng.integers(0, s, size=int(n_items * 1.1)) for s in sizes], 1), axis=0)
    codes = codes[rng.permutation(len(codes))[:n_items]]
    level_ids, start = [], SPECIAL
    for s in sizes:
        level_ids.append(np.arange(start, start + s))
        start += s
    items = np.stack([level_ids[k][codes[:, k]] for k in range(len(sizes))], 1)
    return SidMap([str(k) for k in range(len(codes))], codes), SidTokens(items, level_ids, [])


def smollm2_with_sids(sid_map: SidMap):
    """The packaged SmolLM2-135M-Instruct (GGUF, converted once) with the catalog's SID tokens added."""
    from grec.base import assets
    from grec.base.sid import add_sid_tokens
    from grec.lm.loading import load_model, resolve_base_model

    model, tokenizer, _ = load_model(resolve_base_model(str(assets.smollm2_gguf())))
    tokens = add_sid_tokens(tokenizer, sid_map, model)
    model.generation_config.eos_token_id = 1
    return model.eval(), tokens


def dict_trie(tokens: SidTokens) -> dict[tuple, list[int]]:
    trie: dict[tuple, set] = {}
    for row in tokens.item_ids.tolist():
        for depth in range(len(row)):
            trie.setdefault(tuple(row[:depth]), set()).add(row[depth])
    return {k: sorted(v) for k, v in trie.items()}


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


BUSY = "import time\nwhile True:\n    time.perf_counter()"


def contended(cases: dict, kept: set, args) -> dict:
    """HF's and grec's searches timed idle, then beside ``args.contention`` busy processes, taking turns
    (one batch of each per round, so a change in the machine's load hits both alike); medians of
    ``args.repeats`` rounds, and each one's slowdown."""
    names = ("hf_unconstrained", "grec_vectorised")

    def rounds() -> dict[str, float]:
        times: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.repeats):
            for name in names:
                with kept_freed_memory(name in kept), torch.no_grad():
                    times[name].append(timed(cases[name], 1))
        return {name: float(np.median(t)) for name, t in times.items()}

    idle = rounds()
    others = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.contention)]
    try:
        time.sleep(1.0)  # the busy processes are running
        busy = rounds()
    finally:
        for other in others:
            other.kill()
            other.wait()
    out = {"busy_processes": args.contention, "rounds": args.repeats}
    for name in names:
        out[name] = {
            "idle_seconds_per_batch": round(idle[name], 4),
            "contended_seconds_per_batch": round(busy[name], 4),
            "slowdown": round(busy[name] / idle[name], 2),
        }
        print(f"{name:18} {args.batch / busy[name]:>9.2f} users/s beside {args.contention} busy processes "
              f"({out[name]['slowdown']:.2f}x slower than idle)", flush=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the T5 case, 10k items, batch 64, 20 beams")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--beams", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--contention", type=int, default=0, help="also time HF and grec while N busy processes share the CPU"
    )
    parser.add_argument(
        "--model",
        choices=["t5", "smollm2"],
        default="t5",
        help="t5: the TIGER T5; smollm2: the packaged SmolLM2-135M with the SID tokens added",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    sid_map, tokens = catalog(args.items)
    seq2seq = args.model == "t5"
    if seq2seq:
        model = T5ForConditionalGeneration(
            T5Config(
                vocab_size=SPECIAL + 3 * 256,
                d_model=128,
                d_kv=64,
                d_ff=1024,
                num_layers=4,
                num_decoder_layers=4,
                num_heads=6,
                dropout_rate=0.0,
                pad_token_id=0,
                eos_token_id=1,
                decoder_start_token_id=0,
            )
        ).eval()
    else:
        model, tokens = smollm2_with_sids(sid_map)
    start = time.perf_counter()
    index = SidIndex.build(sid_map, tokens)
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(1)
    history = tokens.item_ids[rng.integers(0, len(sid_map), size=(args.batch, 20))].reshape(args.batch, -1)
    ids = torch.as_tensor(np.c_[history, np.ones(args.batch, dtype=np.int64)])
    mask = torch.ones_like(ids)
    levels, beams = 3, args.beams
    trie = dict_trie(tokens)
    start = 1 if seq2seq else ids.shape[1]
    ours_fn = SidPrefixConstraint(index, start, eos_token_id=1)

    def trie_fn(batch_id, input_ids):
        return trie.get(tuple(input_ids[start:].tolist()), [1])

    config = search_config(beams, beams, levels, eos_token_id=1, pad_token_id=0)
    unconstrained = search_config(beams, beams, levels, eos_token_id=1, pad_token_id=0)
    unconstrained.min_new_tokens = unconstrained.max_new_tokens = levels

    @torch.no_grad()
    def forward_floor():
        """The same model calls as grec's search (first step once per user, then one per beam), no search."""
        if not seq2seq:
            with one_prompt_cache_per_user(model) as shared:  # as grec's search: one prompt cache per user
                out = model(input_ids=ids, attention_mask=mask, use_cache=True, logits_to_keep=1)
                step = torch.zeros(args.batch * beams, 1, dtype=torch.long)
                positions = torch.full_like(step, ids.shape[1])
                if shared:
                    cache = SharedPromptCache(out.past_key_values, beams, levels - 1)
                    wide = prompt_mask(mask, out.logits.dtype)
                else:
                    cache, wide = out.past_key_values, mask.repeat_interleave(beams, 0)
                    cache.batch_repeat_interleave(beams)
                for _ in range(levels - 1):
                    if not shared:
                        wide = torch.cat([wide, torch.ones_like(step)], 1)
                    out = model(
                        input_ids=step,
                        attention_mask=wide,
                        position_ids=positions,
                        past_key_values=cache,
                        use_cache=True,
                    )
                    positions = positions + 1
            return
        with one_cross_cache_per_user(model) as shared:  # as grec's search: one cross-attention cache per user
            enc = model.get_encoder()(input_ids=ids, attention_mask=mask)
            out = model(
                encoder_outputs=enc,
                attention_mask=mask,
                decoder_input_ids=torch.zeros(args.batch, 1, dtype=torch.long),
                use_cache=True,
            )
            cache = out.past_key_values
            (cache.self_attention_cache if shared else cache).batch_repeat_interleave(beams)
            enc.last_hidden_state = enc.last_hidden_state.repeat_interleave(beams, 0)
            step = torch.zeros(args.batch * beams, 1, dtype=torch.long)
            for _ in range(levels - 1):
                out = model(
                    encoder_outputs=enc,
                    attention_mask=mask.repeat_interleave(beams, 0),
                    decoder_input_ids=step,
                    past_key_values=out.past_key_values,
                    use_cache=True,
                )

    cases = {
        "hf_unconstrained": lambda: model.generate(input_ids=ids, attention_mask=mask, generation_config=unconstrained),
        "hf_dict_trie_fn": lambda: model.generate(
            input_ids=ids, attention_mask=mask, generation_config=config, prefix_allowed_tokens_fn=trie_fn
        ),
        "hf_grec_fn": lambda: model.generate(
            input_ids=ids, attention_mask=mask, generation_config=config, prefix_allowed_tokens_fn=ours_fn
        ),
        "grec_vectorised": lambda: sid_beam_search(model, ids, mask, index, beams, seq2seq=seq2seq),
        "forward_floor": forward_floor,
    }
    cases["hf_unconstrained_kept_memory"] = cases["hf_unconstrained"]
    # grec infer keeps freed memory in the process on a CPU (grec/lm/cpu_memory.py): its search and the
    # floor run so; HF runs as users run it, and once more with the same setting, for comparison.
    kept = {"grec_vectorised", "forward_floor", "hf_unconstrained_kept_memory"}
    rows = {}
    with torch.no_grad():
        for name, fn in cases.items():
            with kept_freed_memory(name in kept):
                seconds = timed(fn, args.repeats)
            rows[name] = {"seconds_per_batch": round(seconds, 4), "users_per_second": round(args.batch / seconds, 2)}
            print(f"{name:18} {rows[name]['users_per_second']:>9.2f} users/s", flush=True)
    if args.contention:
        record_contention = contended(cases, kept, args)
    base = args.batch / rows["hf_unconstrained"]["seconds_per_batch"]  # ratios from the unrounded times
    ours = args.batch / rows["grec_vectorised"]["seconds_per_batch"]
    record = {
        **provenance(),
        "model": args.model,
        "items": len(sid_map),
        "batch": args.batch,
        "beams": beams,
        "index_build_seconds": round(build_s, 3),
        "index_mib": round(index.nbytes() / 2**20, 1),
        "rows": rows,
        "threads": thread_report(),
        **({"contention": record_contention} if args.contention else {}),
    }
    big_map, big_tokens = catalog(1_000_000, seed=2)
    start = time.perf_counter()
    big = SidIndex.build(big_map, big_tokens)
    record["index_1m_build_seconds"] = round(time.perf_counter() - start, 3)
    record["index_1m_mib"] = round(big.nbytes() / 2**20, 1)
    print(f"index: 1,000,000 items built in {record['index_1m_build_seconds']:.2f} s, {record['index_1m_mib']} MiB")
    (ROOT / "docs" / "bench").mkdir(parents=True, exist_ok=True)
    name = "decode.json" if args.quick else f"decode_{args.model}_{len(sid_map)}_{beams}.json"
    (ROOT / "docs" / "bench" / name).write_text(json.dumps(record, indent=2) + "\n")
    print(f"index: {len(sid_map):,} items built in {build_s:.2f} s, {record['index_mib']} MiB")
    print(
        f"grec vectorised: {ours / base:.2f}x HF unconstrained, "
        f"{rows['hf_dict_trie_fn']['seconds_per_batch'] * ours / args.batch:.2f}x HF dict-trie fn, "
        f"{rows['forward_floor']['seconds_per_batch'] * ours / args.batch:.2f}x the forward-pass floor, "
        f"{rows['hf_unconstrained_kept_memory']['seconds_per_batch'] * ours / args.batch:.2f}x HF unconstrained "
        "with grec's allocator setting"
    )
    if args.contention:
        hf, ours = record_contention["hf_unconstrained"]["slowdown"], record_contention["grec_vectorised"]["slowdown"]
        print(f"beside {args.contention} busy processes: grec {ours:.2f}x slower, HF {hf:.2f}x slower; threads: "
              f"{record['threads']}")  # fmt: skip


if __name__ == "__main__":
    main()
