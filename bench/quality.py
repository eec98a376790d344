"""Recommendation quality on ML-100K: popularity, SASRec and the generative recipes, three seeds each.

Protocol: leave-one-out by time (grec prepare defaults), full ranking of all 1,682 items, the
user's history excluded from the candidates, HR@{5,10,20}, NDCG@{5,10,20}, MRR@10 over the
943 test users. Each recipe runs through `grec run` with the seed (and any budget override)
merged into its training stage; the table gives mean +/- std over the seeds and the minutes each
run took. Writes docs/bench/quality.json ({"recipe": {"ndcg@10": {"mean", "std"}, ...}}) and
docs/bench/quality.png.

    .venv/bin/python bench/quality.py --recipes popularity,itemknn,sasrec    # ~10 minutes on the CPU
    .venv/bin/python bench/quality.py --recipes sidlm                        # ~10 minutes per seed
    .venv/bin/python bench/quality.py --recipes tiger --seeds 0 \\
        --overrides '{train: {num_epochs: 1}}'                               # ~12 minutes per seed

The LLM recipes on the CPU rank a fixed sample of users; --users N scores every row (the
baselines too) on the first N test users, into docs/bench/quality_users<N>.json:

    .venv/bin/python bench/quality.py --recipes popularity,itemknn,sasrec,bigrec --users 500 \\
        --overrides '{records: {sample: 512}, train: {num_epochs: 1, batch_size: 16}, infer: {batch_size: 16},
                      grounded: {val_sample: 200}}'                          # bigrec ~30-40 minutes per seed
    .venv/bin/python bench/quality.py --recipes lcrec-seq --users 500 --overrides \\
        '{records: {max_history: 20}, train: {train_data_path: ["{out}/records/train.json"], max_steps: 300,
          batch_size: 8, micro_batch_size: 8, learning_rate: 0.003, cutoff_len: 128, val_sample: 200}}'
                                                                             # ~30 CPU-minutes per seed

MovieLens-1M (6,040 test users, 3,706 movies), beside the published figures of HSTU (Zhai et al.,
ICML 2024, Table 3: full-catalog leave-one-out), into docs/bench/quality_ml1m.json, on the
reference's 200-item histories (docs/reproduce.md; every row, the baselines too, on one folder):

    .venv/bin/python bench/quality.py --dataset ml-1m --data data/ml-1m-h200 \\
        --recipes popularity,itemknn,paper/sasrec-ml1m,paper/hstu-ml1m \\
        --overrides '{prepare: {max_history: 200, train_format: sequences}}'     # ~35 minutes per run
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from itertools import islice
from pathlib import Path

import yaml
from provenance import provenance

from grec.base.io import read_jsonl, write_json, write_jsonl
from grec.evaluate.run import score_file
from grec.prepare import PrepareConfig, prepare
from grec.recipes import RunConfig, run_recipe, stage_keys

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr@10")
SEQREC = ("sasrec", "hstu", "paper/sasrec-ml1m", "paper/hstu-ml1m", "paper/hstu-large-ml1m")
TRAIN_STAGE = {r: "train-task" for r in SEQREC} | {
    r: "train" for r in ("tiger", "sidlm", "lcrec", "lcrec-seq", "bigrec")
}
RESULT = {
    "popularity": "popularity.jsonl",
    "itemknn": "itemknn.jsonl",
    "sasrec": "sasrec.jsonl",
    "hstu": "hstu.jsonl",
    "paper/sasrec-ml1m": "sasrec.jsonl",
    "paper/hstu-ml1m": "hstu.jsonl",
    "paper/hstu-large-ml1m": "hstu-large.jsonl",
    "tiger": "tiger.jsonl",
    "sidlm": "sidlm.jsonl",
    "lcrec": "lcrec.jsonl",
    "lcrec-seq": "lcrec-seq.jsonl",
    "bigrec": "bigrec-trie.jsonl",
}
BASELINES = ("popularity", "itemknn")  # written by grec popularity: no seed, no training
ALSO = {  # further rows a recipe's one run produces
    "bigrec": {"bigrec-grounded": "bigrec-grounded.jsonl"},
    # the same ranking with the history left in (data_args with_history_too): the other protocol
    **{r: {f"{r} (history kept)": RESULT[r].replace(".jsonl", ".with_history.jsonl")} for r in SEQREC[2:4]},
}
# Published figures on the same protocol, shown beside grec's rows (key "published" of the JSON).
PUBLISHED = {
    "ml-1m": {
        "source": "HSTU (Zhai et al., ICML 2024), Table 3, and the README of meta-recsys/generative-recommenders "
        "(verified 04/15/2024): ML-1M, leave-one-out, full ranking, 200-item history excluded",
        "SASRec": {"hr@10": 0.2853, "ndcg@10": 0.1603},
        "HSTU": {"hr@10": 0.3097, "ndcg@10": 0.1720},
        "HSTU-large": {"hr@10": 0.3294, "ndcg@10": 0.1893},
    }
}


def score(path: Path, users: list[str] | None = None) -> dict[str, float]:
    """The metrics of one result file; with ``users``, of their records only (every one of them)."""
    if users is None:
        result = score_file(path, [5, 10, 20], None)
    else:
        wanted = set(users)
        records = [row for _, row in read_jsonl(path) if str(row.get("user_id")) in wanted]
        if len(records) != len(wanted):
            raise SystemExit(f"{path}: {len(records)} records for the {len(wanted)} users asked for")
        with tempfile.TemporaryDirectory() as folder:
            write_jsonl(Path(folder) / "shared.jsonl", records)
            result = score_file(Path(folder) / "shared.jsonl", [5, 10, 20], None)
    return {m: result[m.upper()] for m in METRICS} | {"users": result["records"]}


def first_test_users(data: str, count: int) -> list[str]:
    """The users of the first ``count`` test lines: what ``infer --sample count`` ranks."""
    return [str(row["user_id"]) for _, row in islice(read_jsonl(Path(data) / "test.jsonl"), count)]


def run(
    recipe: str, seed: int, data: str, out: Path, overrides: dict, users: list[str] | None = None
) -> tuple[dict[str, dict], float]:
    """Scores of each table row the recipe's run gives (row name -> metrics), and the run's seconds."""
    started = time.time()
    if recipe in BASELINES:
        from grec.infer.popularity import PopularityConfig, popularity

        prepare(PrepareConfig(**{"dataset": "ml-100k", **overrides.get("prepare", {}), "out": data}))
        popularity(PopularityConfig(data=data, out=str(out / "results" / RESULT[recipe]), method=recipe))
    else:
        keys = stage_keys(recipe)  # one --overrides serves several recipes: each takes the stages it has
        stage_overrides = {k: dict(v) for k, v in overrides.items() if k in keys}
        stage_overrides.setdefault(TRAIN_STAGE[recipe], {})["seed"] = seed
        run_recipe(RunConfig(recipe=recipe, data=data, out=str(out), overrides=stage_overrides))
    rows = {recipe: RESULT[recipe]} | ALSO.get(recipe, {})
    return {row: score(out / "results" / name, users) for row, name in rows.items()}, time.time() - started


def table_row(per_seed: list[tuple[int, dict, float]], overrides: dict, earlier: dict | None = None) -> dict:
    """One row of the table: mean and std over seeds of each metric, the per-seed figures (``runs``),
    the users scored, the minutes per run and the overrides. ``per_seed``: (seed, scores, minutes).
    With ``earlier`` (the row as the JSON holds it, from other seeds run under the same overrides on
    the same users) its runs join the new ones: seeds run on different days make one row."""
    seeds = [seed for seed, _, _ in per_seed]
    runs = [{m: scores[m] for m in METRICS} for _, scores, _ in per_seed]
    minutes = sum(m for _, _, m in per_seed)
    users = per_seed[0][1]["users"]  # fewer than 943 with --users (or an override sampling them)
    if earlier is not None:
        clash = set(seeds) & set(earlier["seeds"])
        if clash or earlier["overrides"] != overrides or earlier["users"] != users:
            raise SystemExit(
                f"--merge: the row holds seeds {earlier['seeds']} on {earlier['users']} users with overrides "
                f"{earlier['overrides']}; add only new seeds run the same way (or drop --merge to replace it)"
            )
        minutes += earlier["minutes_per_run"] * len(earlier["seeds"])
        seeds, runs = earlier["seeds"] + seeds, earlier["runs"] + runs
    row = {
        m: {
            "mean": statistics.fmean(r[m] for r in runs),
            "std": statistics.stdev([r[m] for r in runs]) if len(runs) > 1 else 0.0,
        }
        for m in METRICS
    }
    row |= {"seeds": seeds, "runs": runs, "users": users, "minutes_per_run": round(minutes / len(runs), 1)}
    made = (earlier or {}).get("provenance", []) + [provenance()]  # one entry per invocation that ran seeds
    return row | {"overrides": overrides, "provenance": made}


def plot(table: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # rows such as sidlm+dpo come from one SFT checkpoint (scripts/align_seeds.sh), not from seeds of
    # the recipe: beside the recipe rows they would read as a gain over its 3-seed mean
    names = [n for n in table if n != "published" and "+" not in n]
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(names) + 2), 3.6))
    for k, metric in enumerate(("hr@10", "ndcg@10")):
        means = [table[n][metric]["mean"] for n in names]
        stds = [table[n][metric]["std"] for n in names]
        bars = ax.bar([i + 0.4 * k for i in range(len(names))], means, 0.4, yerr=stds, capsize=3, label=metric.upper())
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks([i + 0.2 for i in range(len(names))], names)
    ax.set(ylabel="score (mean ± std over seeds)", title=f"{title}, full ranking, history excluded")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default="popularity,sasrec,tiger")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--dataset", default="ml-100k", help="grec prepare's --dataset (ml-100k, ml-1m)")
    parser.add_argument("--data", help="prepared data folder; default data/<dataset>")
    parser.add_argument("--out", help="run folders; default outputs/quality (ml-100k) or outputs/quality-<dataset>")
    parser.add_argument("--overrides", default="{}", help="YAML mapping of stage -> flags, as grec run takes it")
    parser.add_argument("--json", help="default docs/bench/quality.json (ml-100k) or quality_<dataset>.json")
    parser.add_argument(
        "--users",
        type=int,
        default=0,
        help="score every row on the first N test users only (the infer stages rank just those); 0: all",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="add these seeds to the rows the JSON already holds (same overrides and users) instead of replacing them",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    suffix = "" if args.dataset == "ml-100k" else f"_{args.dataset.replace('-', '')}"
    args.data = args.data or f"data/{args.dataset}"
    args.out = args.out or f"outputs/quality{suffix.replace('_', '-')}"
    overrides = yaml.safe_load(args.overrides) or {}
    if args.dataset != "ml-100k":
        overrides.setdefault("prepare", {})["dataset"] = args.dataset
    users = None
    if args.users:
        prepare(PrepareConfig(dataset=args.dataset, out=args.data))
        users = first_test_users(args.data, args.users)
        overrides.setdefault("infer", {})["sample"] = args.users
        suffix += f"_users{args.users}"
    path = Path(args.json or ROOT / "docs" / "bench" / f"quality{suffix}.json")
    table = json.loads(path.read_text()) if path.is_file() else {}
    if args.dataset in PUBLISHED:
        table["published"] = PUBLISHED[args.dataset]
    for recipe in args.recipes.split(","):
        seeds = [0] if recipe in BASELINES else [int(s) for s in args.seeds.split(",")]
        runs = [
            run(recipe, seed, args.data, Path(args.out) / f"{recipe}-seed{seed}", overrides, users) for seed in seeds
        ]
        for row in runs[0][0]:
            per_seed = [(seed, scores[row], seconds / 60) for seed, (scores, seconds) in zip(seeds, runs)]
            entry = table_row(per_seed, overrides, table.get(row) if args.merge else None)
            table[row] = entry
            print(
                f"{row}: "
                + ", ".join(f"{m} {entry[m]['mean']:.4f} ± {entry[m]['std']:.4f}" for m in METRICS)
                + f" ({entry['users']} users, seeds {entry['seeds']}, {entry['minutes_per_run']} min per run)",
                flush=True,
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        # rows another bench/quality.py wrote to the same file meanwhile (one per recipe, run side by side) stay
        table = (json.loads(path.read_text()) if path.is_file() else {}) | {
            r: table[r] for r in (*runs[0][0], "published") if r in table
        }
        write_json(path, table)
        title = args.dataset.upper() + (f", first {args.users} test users" if args.users else "")
        plot(table, path.with_suffix(".png"), title)
    best = max(
        (r for r in table if r not in (*BASELINES, *SEQREC, "published")),
        key=lambda r: table[r]["ndcg@10"]["mean"],
        default=None,
    )
    if best and "sasrec" in table:
        ratio = table[best]["ndcg@10"]["mean"] / table["sasrec"]["ndcg@10"]["mean"]
        print(f"best generative recipe {best}: NDCG@10 {ratio:.2f}x SASRec's (target 1.10x)")


if __name__ == "__main__":
    main()
