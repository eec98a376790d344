"""Peak memory and time of `grec prepare` on a large log, against a plain pandas pipeline.

Two layouts, each generated here and then run, each side in its own process:

- ``--layout amazon``: a synthetic Amazon 2018-format reviews file (JSON lines with review text,
  like the real files) and its metadata.
  grec: ``grec prepare --dataset amazon`` (streams the file, keeps three integer columns);
  baseline: ``pandas.read_json(lines=True)`` of the whole file, then a per-user time sort.
- ``--layout ml-20m``: ``ratings.csv`` + ``movies.csv`` shaped like MovieLens-20M (20,000,263
  ratings of 138,493 users on 26,744 movies by default).
  grec: ``grec prepare --dataset ml-20m --train_format sequences`` (the whole stage: k-core,
  leave-one-out, items/train/valid/test files, stats and plot);
  baseline: pandas read_csv, sort, dedup, k-core, group into sequences and write the same
  leave-one-out JSON lines.

Prints wall time, peak resident memory, and the ratios baseline / grec.

    .venv/bin/python bench/prepare_stream.py --layout amazon --rows 1000000
    .venv/bin/python bench/prepare_stream.py --layout ml-20m            # 20M ratings, ~10 minutes in all
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

ML_BASELINE = """
import json, sys, pandas as pd
frame = pd.read_csv(sys.argv[1] + "/ratings.csv")
frame = frame.sort_values(["userId", "timestamp"], kind="stable").drop_duplicates(["userId", "movieId"])
frame = frame[frame.groupby("userId")["movieId"].transform("size") >= 3]
sequences = frame.groupby("userId", sort=True)["movieId"].agg(list)
with open(sys.argv[2] + "/train.jsonl", "w") as train, open(sys.argv[2] + "/valid.jsonl", "w") as valid, \
        open(sys.argv[2] + "/test.jsonl", "w") as test:
    for user, seq in sequences.items():
        seq = [str(i) for i in seq]
        train.write(json.dumps({"user_id": str(user), "sequence": seq[:-2]}) + "\\n")
        valid.write(json.dumps({"user_id": str(user), "history": seq[-52:-2], "target": seq[-2]}) + "\\n")
        test.write(json.dumps({"user_id": str(user), "history": seq[-51:-1], "target": seq[-1]}) + "\\n")
print(len(sequences))
"""

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


def write_ml20m(folder: Path, n_ratings: int, seed: int) -> Path:
    """``ratings.csv`` and ``movies.csv`` in ML-20M's layout and shape: every user rates at least 20
    distinct movies (a heavy-tailed number beyond that; a run of a shuffled catalog starting at a
    popularity-skewed place), half-star ratings, timestamps increasing per user."""
    import numpy as np
    import pyarrow as pa
    from pyarrow import csv as pacsv

    rng = np.random.default_rng(seed)
    n_users, n_items = max(1, round(n_ratings * 138_493 / 20_000_263)), max(20, round(n_ratings * 26_744 / 20_000_263))
    extra = rng.lognormal(3.5, 1.2, n_users)
    lengths = 20 + np.floor(extra * max(0, n_ratings - 20 * n_users) / extra.sum()).astype(np.int64)
    lengths = np.minimum(lengths, n_items)
    lengths[: n_ratings - lengths.sum()] += 1
    users = np.repeat(np.arange(1, n_users + 1), lengths)
    starts = rng.integers(789_652_009, 1_427_784_002, n_users)
    steps = rng.exponential(3_000, len(users)).astype(np.int64)
    first = np.r_[0, np.cumsum(lengths)[:-1]]
    cumulative = np.cumsum(steps)
    positions = np.arange(len(users)) - np.repeat(first, lengths)
    starts_item = (n_items * rng.random(n_users) ** 3).astype(np.int64)
    times = np.repeat(starts, lengths) + cumulative - np.repeat(cumulative[first], lengths)
    table = pa.table(
        {
            "userId": users,
            "movieId": rng.permutation(n_items)[(np.repeat(starts_item, lengths) + positions) % n_items] + 1,
            "rating": rng.integers(1, 11, len(users)) / 2,
            "timestamp": times,
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, folder / "ratings.csv", pacsv.WriteOptions(quoting_style="none"))
    with open(folder / "movies.csv", "w", encoding="utf-8") as handle:
        handle.write("movieId,title,genres\n")
        for k in range(1, n_items + 1):
            handle.write(f'{k},"Movie {k}, The ({1900 + k % 120})",Drama|Comedy\n')
    return folder


def run_amazon(folder: Path, rows: int, seed: int) -> tuple[str, list[str], list[str]]:
    reviews, meta = write_files(folder, rows, seed)
    raw_mib = sum(len(line) for line in gzip.open(reviews, "rb")) / 2**20
    grec_cmd = ["--dataset", "amazon", "--reviews", str(reviews), "--meta", str(meta)]
    return f"reviews file: {rows:,} lines, {raw_mib:,.0f} MiB uncompressed", grec_cmd, ["-c", BASELINE, str(reviews)]


def run_ml20m(folder: Path, rows: int, seed: int) -> tuple[str, list[str], list[str]]:
    data = write_ml20m(folder / "ml-20m", rows, seed)
    mib = (data / "ratings.csv").stat().st_size / 2**20
    grec_cmd = ["--dataset", "ml-20m", "--source", str(data), "--train_format", "sequences"]
    (folder / "baseline").mkdir()
    return (
        f"ratings.csv: {rows:,} lines, {mib:,.0f} MiB",
        grec_cmd,
        ["-c", ML_BASELINE, str(data), str(folder / "baseline")],
    )


LAYOUTS = {"amazon": (run_amazon, 1_000_000), "ml-20m": (run_ml20m, 20_000_263)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=LAYOUTS, default="amazon", help="which generated log (module docstring)")
    parser.add_argument(
        "--rows", type=int, help="review lines (amazon, default 1M) or ratings (ml-20m, default 20,000,263)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make, default_rows = LAYOUTS[args.layout]
    rows = args.rows or default_rows
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        described, grec_args, baseline_args = make(folder, rows, args.seed)
        out = folder / "out"
        grec_s, grec_mib = measure([sys.executable, "-m", "grec", "prepare", *grec_args, "--out", str(out)])
        stats = json.loads((out / "stats.json").read_text())
        base_s, base_mib = measure([sys.executable, *baseline_args])
    print(
        f"{described}; prepared {stats['users']:,} users, {stats['items']:,} items, "
        f"{stats['interactions']:,} interactions"
    )
    print(f"{'':10}{'seconds':>10}{'peak MiB':>10}")
    print(f"{'grec':10}{grec_s:>10.1f}{grec_mib:>10.0f}")
    print(f"{'baseline':10}{base_s:>10.1f}{base_mib:>10.0f}")
    print(f"ratio baseline/grec: time {base_s / grec_s:.2f}x, peak memory {base_mib / grec_mib:.2f}x")


if __name__ == "__main__":
    main()
