"""Peak memory and time of `grec prepare` on a large Amazon-format reviews file, against loading it whole.

Writes a synthetic Amazon 2018-format reviews file (JSON lines with review text, like the real
files) and its metadata, then runs, each in its own process:
  - grec:     grec prepare --dataset amazon (streams the file, keeps three integer columns)
  - baseline: pandas.read_json(lines=True) of the whole file, then a per-user time sort
and prints wall time, peak resident memory, and the ratios baseline / grec.

    .venv/bin/python bench/prepare_stream.py --reviews 1000000
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = """
import sys, pandas as pd
frame = pd.read_json(sys.argv[1], lines=True)
frame = frame.sort_values(["reviewerID", "unixReviewTime"], kind="stable")
print(len(frame))
"""


def write_files(folder: Path, n_reviews: int, seed: int) -> tuple[Path, Path]:
    rng = random.Random(seed)
    n_users, n_items = n_reviews // 8, n_reviews // 20
    words = "great good bad fine color size fit smell works broke love hate again price quality".split()
    reviews = folder / "reviews.json.gz"
    with gzip.open(reviews, "wt", encoding="utf-8", compresslevel=1) as handle:
        for _ in range(n_reviews):
            record = {
                "overall": float(rng.randint(1, 5)),
                "verified": True,
                "reviewTime": "01 1, 2018",
                "reviewerID": f"A{rng.randrange(n_users):012d}",
                "asin": f"B{int(n_items * rng.random() ** 2):09d}",
                "reviewerName": "Someone",
                "reviewText": " ".join(rng.choices(words, k=60)),
                "summary": " ".join(rng.choices(words, k=5)),
                "unixReviewTime": 1_300_000_000 + rng.randrange(200_000_000),
            }
            handle.write(json.dumps(record) + "\n")
    meta = folder / "meta.json.gz"
    with gzip.open(meta, "wt", encoding="utf-8") as handle:
        for k in range(n_items):
            handle.write(json.dumps({"asin": f"B{k:09d}", "title": f"Product {k}", "brand": "Acme"}) + "\n")
    return reviews, meta


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a child process."""
    start = time.perf_counter()
    script = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", script, *cmd], check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - start, int(out.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=1_000_000, help="number of review lines")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        reviews, meta = write_files(folder, args.reviews, args.seed)
        raw_mib = sum(len(line) for line in gzip.open(reviews, "rb")) / 2**20
        grec_cmd = [
            sys.executable,
            "-m",
            "grec",
            "prepare",
            "--dataset",
            "amazon",
            "--reviews",
            str(reviews),
            "--meta",
            str(meta),
            "--out",
            str(folder / "out"),
        ]
        grec_s, grec_mib = measure(grec_cmd)
        stats = json.loads((folder / "out" / "stats.json").read_text())
        base_s, base_mib = measure([sys.executable, "-c", BASELINE, str(reviews)])
    print(
        f"reviews file: {args.reviews:,} lines, {raw_mib:,.0f} MiB uncompressed; prepared "
        f"{stats['users']:,} users, {stats['items']:,} items, {stats['interactions']:,} interactions"
    )
    print(f"{'':10}{'seconds':>10}{'peak MiB':>10}")
    print(f"{'grec':10}{grec_s:>10.1f}{grec_mib:>10.0f}")
    print(f"{'baseline':10}{base_s:>10.1f}{base_mib:>10.0f}")
    print(f"ratio baseline/grec: time {base_s / grec_s:.2f}x, peak memory {base_mib / grec_mib:.2f}x")


if __name__ == "__main__":
    main()
