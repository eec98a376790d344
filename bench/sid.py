"""Semantic-ID building at scale: time, peak memory, reconstruction error, collisions and code use.

Each case runs in its own process (peak memory is that process's maximum resident set, input
included). Synthetic embeddings: unit-norm 384-d vectors from a 64-d latent around 1,000 topics.
Baseline, measured in the same run: faiss k-means alone (``faiss.Kmeans``, 25 iterations, 256
points per centroid) level by level on the residuals, each row assigned to its nearest centroid;
against it, the whole ``grec index`` stage (``--embeddings``: quantiser, de-duplication, reports,
plot and files), so grec's overhead over the library is visible. The full run adds scikit-learn
KMeans, 1M items and RQ-VAE.

    .venv/bin/python bench/sid.py            # writes docs/bench/sid.json (~6 minutes)
    .venv/bin/python bench/sid.py --quick    # 100k and ML-100K, about a minute; key figure last
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
from provenance import provenance

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


def faiss_rq(x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    residual, codes = x.copy(), np.empty((len(x), LEVELS), dtype=np.int64)
    for level in range(LEVELS):
        km = faiss.Kmeans(x.shape[1], CODEBOOK, niter=25, seed=seed + level, max_points_per_centroid=256)
        km.train(residual)
        codes[:, level] = km.index.search(residual, 1)[1][:, 0]
        residual -= km.centroids[codes[:, level]]
    return codes, residual


def grec_index(x: np.ndarray, seed: int, balanced: bool) -> tuple[np.ndarray, float, float]:
    """The whole stage on a synthetic catalog; returns (final codes, seconds, relative reconstruction error)."""
    import tempfile

    from grec.base.io import write_jsonl
    from grec.index import IndexConfig, build_index

    with tempfile.TemporaryDirectory() as tmp:
        write_jsonl(Path(tmp) / "items.jsonl", ({"item_id": str(k), "text": f"item {k}"} for k in range(len(x))))
        np.save(Path(tmp) / "x.npy", x)
        cfg = IndexConfig(
            data=tmp,
            out=tmp + "/sid",
            embeddings=tmp + "/x.npy",
            levels=LEVELS,
            codebook_size=CODEBOOK,
            balanced=balanced,
            seed=seed,
        )
        start = time.perf_counter()
        report = build_index(cfg)
        seconds = time.perf_counter() - start
        codes = np.load(tmp + "/sid/sid_codes.npy")
    return codes, seconds, report["relative_reconstruction_error"]


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
    error = None
    if method.startswith("grec-index"):
        final, seconds, error = grec_index(x, seed, balanced=method.endswith("balanced"))
        codes = final[:, :LEVELS]
    else:
        if method == "faiss":
            codes, residual = faiss_rq(x, seed)
        elif method == "sklearn":
            codes, residual = sklearn_rq(x, seed), None
        elif method == "rqvae":
            codes, residual = RQVAE(LEVELS, CODEBOOK, [512, 256, 128], 32, epochs=20, batch_size=4096, seed=seed).fit(x)
            residual = None  # a latent residual: not comparable with the input-space errors
        else:
            codes, residual = RQKMeans(LEVELS, CODEBOOK, balanced=method.endswith("balanced"), seed=seed).fit(x)
        final = dedup_level(codes)
        seconds = time.perf_counter() - start
        if residual is not None:
            error = float((residual**2).sum(1).mean() / (x**2).sum(1).mean())
    levels = level_report(final, [CODEBOOK] * LEVELS + [int(final[:, -1].max()) + 1])[:LEVELS]
    return {
        "method": method,
        "items": len(x),
        "seconds": round(seconds, 2),
        "relative_reconstruction_error": None if error is None else round(error, 5),
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
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the plan N times, alternating cases, and keep each case's fastest run",
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.data, args.seed)))
        return
    plan = [
        ("faiss", "100000"),
        ("grec-index", "100000"),
        ("rqkmeans", "ml-100k"),
        ("rqkmeans-balanced", "ml-100k"),
    ]
    if not args.quick:
        plan += [
            ("grec-index-balanced", "100000"),
            ("sklearn", "100000"),
            ("faiss", "1000000"),
            ("grec-index", "1000000"),
            ("grec-index-balanced", "1000000"),
            ("rqvae", "100000"),
        ]
    best: dict[tuple[str, str], dict] = {}
    for _ in range(args.repeat):
        for method, data in plan:
            r = measure(method, data, args.seed)
            if (method, data) not in best or r["seconds"] < best[method, data]["seconds"]:
                best[method, data] = r
            error = (
                ""
                if r["relative_reconstruction_error"] is None
                else f"error {r['relative_reconstruction_error']:.4f}  "
            )
            print(
                f"{r['method']:20} {r['items']:>9,} items {r['seconds']:>7.1f} s {r['peak_mib']:>6,} MiB  {error}"
                f"collisions {r['collision_rate_before']:.2%} -> {r['collision_rate_after']:.2%}  "
                f"min utilisation {r['min_utilisation']:.1%}",
                flush=True,
            )
    rows = [best[case] for case in plan]
    base, ours = rows[0], rows[1]
    ratio = ours["seconds"] / base["seconds"]
    error_ratio = ours["relative_reconstruction_error"] / base["relative_reconstruction_error"]
    if not args.quick:
        record = {
            "command": f"python bench/sid.py --repeat {args.repeat}",
            "repeat": args.repeat,
            "levels": LEVELS,
            "codebook_size": CODEBOOK,
            "rows": rows,
            "time_ratio_grec_index_vs_faiss_100k": round(ratio, 3),
            "error_ratio_grec_index_vs_faiss_100k": round(error_ratio, 4),
            "grec_index_1m_seconds": best["grec-index", "1000000"]["seconds"],
            "faiss_1m_seconds": best["faiss", "1000000"]["seconds"],
        }
        print(
            f"grec index 1M x 384: {record['grec_index_1m_seconds']:.1f} s (faiss k-means alone "
            f"{record['faiss_1m_seconds']:.1f} s)"
        )
        (ROOT / "docs" / "bench").mkdir(parents=True, exist_ok=True)
        (ROOT / "docs" / "bench" / "sid.json").write_text(json.dumps({**provenance(), **record}, indent=2) + "\n")
    print(
        f"grec index 100k x 384, {LEVELS}x{CODEBOOK}: {ours['seconds']:.1f} s = {ratio:.2f}x the time of faiss "
        f"k-means alone ({base['seconds']:.1f} s), reconstruction error {error_ratio:.4f}x faiss's; collisions after "
        f"{ours['collision_rate_after']:.0%}, min utilisation {ours['min_utilisation']:.0%}"
    )


if __name__ == "__main__":
    main()
