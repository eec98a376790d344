"""Semantic-ID building at scale: time, peak memory, collisions and code use of grec's quantisers.

Each case runs in its own process (peak memory is that process's maximum resident set, input
included). Synthetic embeddings: unit-norm 384-d vectors from a 64-d latent around 1,000 topics.
Baseline, measured in the same run: scikit-learn KMeans (k-means++, one init, 25 iterations)
level by level on the residuals, at 100k items.

    .venv/bin/python bench/sid.py            # 100k and 1M synthetic, ML-100K; writes docs/bench/sid.json
    .venv/bin/python bench/sid.py --quick    # 100k and ML-100K, under 2 minutes; key figure last
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LEVELS, CODEBOOK = 3, 256


def synthetic(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    """Unit-norm vectors with the structure of text embeddings: a 64-d latent with a decaying spectrum
    around 1,000 topic centres, mapped into ``dim`` dimensions, plus a little isotropic noise."""
    rng = np.random.default_rng(seed)
    latent, topics = 64, 1000
    scale = (1.0 / np.sqrt(np.arange(1, latent + 1))).astype(np.float32)
    centres = rng.standard_normal((topics, latent), dtype=np.float32) * scale
    mixing = rng.standard_normal((latent, dim), dtype=np.float32) / np.sqrt(latent)
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        rows = min(100_000, n - start)
        z = centres[rng.integers(0, topics, size=rows)] + 0.5 * scale * rng.standard_normal(
            (rows, latent), dtype=np.float32
        )
        x[start : start + rows] = z @ mixing + 0.02 * rng.standard_normal((rows, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def ml100k_embeddings() -> np.ndarray:
    import tempfile

    from grec.lm.encoder import embed_texts
    from grec.prepare import PrepareConfig, prepare

    with tempfile.TemporaryDirectory() as tmp:
        prepare(PrepareConfig(dataset="ml-100k", out=tmp + "/ml"))
        texts = [json.loads(line)["text"] for line in open(tmp + "/ml/items.jsonl")]
    return embed_texts(texts)


def sklearn_rq(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    residual, codes = x.copy(), np.empty((len(x), LEVELS), dtype=np.int64)
    for level in range(LEVELS):
        km = KMeans(CODEBOOK, init="k-means++", n_init=1, max_iter=25, random_state=seed + level).fit(residual)
        codes[:, level] = km.labels_
        residual -= km.cluster_centers_[km.labels_].astype(np.float32)
    return codes


def run_case(method: str, data: str, seed: int) -> dict:
    """One measurement, in this process."""
    from grec.index.collisions import collision_stats, dedup_level
    from grec.index.report import level_report
    from grec.quantizers.rqkmeans import RQKMeans
    from grec.quantizers.rqvae import RQVAE

    x = ml100k_embeddings() if data == "ml-100k" else synthetic(int(data), seed=seed)
    start = time.perf_counter()
    if method == "sklearn":
        codes = sklearn_rq(x, seed)
    elif method == "rqvae":
        codes, _ = RQVAE(LEVELS, CODEBOOK, [512, 256, 128], 32, epochs=20, batch_size=4096, seed=seed).fit(x)
    else:
        codes, _ = RQKMeans(LEVELS, CODEBOOK, balanced=method == "rqkmeans-balanced", seed=seed).fit(x)
    final = dedup_level(codes)
    seconds = time.perf_counter() - start
    levels = level_report(final, [CODEBOOK] * LEVELS + [int(final[:, -1].max()) + 1])[:LEVELS]
    return {
        "method": method,
        "items": len(x),
        "seconds": round(seconds, 2),
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "collision_rate_before": collision_stats(codes)["collision_rate"],
        "collision_rate_after": collision_stats(final)["collision_rate"],
        "min_utilisation": min(level["utilisation"] for level in levels),
        "entropy_normalised": [round(level["entropy_normalised"], 3) for level in levels],
    }


def measure(method: str, data: str, seed: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--case", method, "--data", data, "--seed", str(seed)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k items and ML-100K only (under 2 minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.data, args.seed)))
        return
    plan = [("rqkmeans", "100000"), ("sklearn", "100000"), ("rqkmeans", "ml-100k"), ("rqkmeans-balanced", "ml-100k")]
    if not args.quick:
        plan += [("rqkmeans", "1000000"), ("rqkmeans-balanced", "1000000"), ("rqvae", "100000")]
    rows = []
    for method, data in plan:
        rows.append(measure(method, data, args.seed))
        r = rows[-1]
        print(
            f"{r['method']:18} {r['items']:>9,} items {r['seconds']:>7.1f} s {r['peak_mib']:>6,} MiB  "
            f"collisions {r['collision_rate_before']:.2%} -> {r['collision_rate_after']:.2%}  "
            f"min utilisation {r['min_utilisation']:.1%}",
            flush=True,
        )
    ours, base = rows[0], rows[1]
    speedup = base["seconds"] / ours["seconds"]
    if not args.quick:
        record = {
            "command": "python bench/sid.py",
            "levels": LEVELS,
            "codebook_size": CODEBOOK,
            "rows": rows,
            "speedup_vs_sklearn_100k": round(speedup, 2),
        }
        (ROOT / "docs" / "bench").mkdir(parents=True, exist_ok=True)
        (ROOT / "docs" / "bench" / "sid.json").write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"rqkmeans 100k x 384, {LEVELS}x{CODEBOOK}: {ours['seconds']:.1f} s, {ours['peak_mib']:,} MiB, "
        f"collisions after {ours['collision_rate_after']:.0%}, min utilisation {ours['min_utilisation']:.0%}; "
        f"{speedup:.2f}x the speed of scikit-learn KMeans ({base['seconds']:.1f} s)"
    )


if __name__ == "__main__":
    main()
