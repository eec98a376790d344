"""Grounding at catalog scale: the 10 nearest items (L2) to each generated-title embedding.

Three ways, measured in the same run on synthetic text-like embeddings (``bench/sid.py``'s
``synthetic``: unit-norm 384-d around 1,000 topics); queries are catalog items plus noise, as
generated titles are near, not on, real ones:
- numpy: the dense path grec used before faiss (every distance, then a full argsort per query);
- faiss flat: ``NearestItems`` exact (the default up to 200,000 items);
- faiss IVF: ``NearestItems`` past that size (sqrt(n) lists, nprobe 32), its recall@10 against exact.

    .venv/bin/python bench/ground.py            # 100k and 1M items; writes docs/bench/ground.json
    .venv/bin/python bench/ground.py --quick    # 100k only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from provenance import provenance

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from sid import synthetic  # noqa: E402

from grec.decoding.neighbours import NearestItems  # noqa: E402


def numpy_nearest(queries: np.ndarray, items: np.ndarray, chunk: int = 25) -> np.ndarray:
    """The former grounding path: dense distances to the whole catalog and a full stable argsort."""
    norms = (items**2).sum(1)
    rows = []
    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk]
        dist = np.sqrt(np.maximum((q**2).sum(1, keepdims=True) - 2 * q @ items.T + norms[None, :], 0))
        rows.append(np.argsort(dist, axis=1, kind="stable")[:, :10])
    return np.concatenate(rows)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found.tolist(), truth.tolist())]))


def case(n: int, queries_n: int, numpy_queries: int) -> dict:
    items = synthetic(n)
    rng = np.random.default_rng(1)
    queries = items[rng.choice(n, queries_n, replace=False)] + 0.05 * rng.standard_normal((queries_n, 384))
    queries = queries.astype(np.float32)
    out = {"items": n, "queries": queries_n}
    start = time.perf_counter()
    dense = numpy_nearest(queries[:numpy_queries], items)
    out["numpy_s_per_1000"] = (time.perf_counter() - start) / numpy_queries * 1000
    start = time.perf_counter()
    flat = NearestItems(items, exact_up_to=n)
    out["flat_build_s"] = time.perf_counter() - start
    start = time.perf_counter()
    exact = flat.search(queries, 10)[1]
    out["flat_s_per_1000"] = (time.perf_counter() - start) / queries_n * 1000
    out["flat_agrees_with_numpy"] = recall(exact[:numpy_queries], dense)
    start = time.perf_counter()
    ivf = NearestItems(items, exact_up_to=0)
    out["ivf_build_s"] = time.perf_counter() - start
    start = time.perf_counter()
    approximate = ivf.search(queries, 10)[1]
    out["ivf_s_per_1000"] = (time.perf_counter() - start) / queries_n * 1000
    out["ivf_recall_at_10"] = recall(approximate, exact)
    out["flat_speedup"] = out["numpy_s_per_1000"] / out["flat_s_per_1000"]
    out["ivf_speedup"] = out["numpy_s_per_1000"] / out["ivf_s_per_1000"]
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k items only")
    args = parser.parse_args()
    sizes = [(100_000, 1000, 200)] + ([] if args.quick else [(1_000_000, 1000, 50)])
    results = []
    for n, queries, dense in sizes:
        results.append(case(n, queries, dense))
        print(json.dumps(results[-1]), flush=True)
    (ROOT / "docs" / "bench").mkdir(parents=True, exist_ok=True)
    record = {**provenance(), "results": results}
    (ROOT / "docs" / "bench" / "ground.json").write_text(json.dumps(record, indent=2) + "\n")
    last = results[-1]
    print(
        f"grounding at {last['items']:,} items: faiss flat {last['flat_speedup']:.1f}x numpy, "
        f"IVF {last['ivf_speedup']:.1f}x numpy at recall@10 {last['ivf_recall_at_10']:.3f}"
    )


if __name__ == "__main__":
    main()
