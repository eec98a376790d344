"""Every shared-trainer task on its real data, each next to a classical baseline fitted in the same run.

| task | grec model | baseline (same split) |
|---|---|---|
| ML-100K CTR (time split) | FM, DeepFM, DCNv2 | logistic regression (grec `lr`) |
| Adult CTR | DeepFM | scikit-learn LogisticRegression on one-hot features |
| clothing reviews | MiniLM + LoRA (text_cls) | TF-IDF + LogisticRegression |
| digits | CNN (image_cls) | scikit-learn LogisticRegression on pixels |
| ML-100K next item | SASRec (seqrec) | most popular items |

Prints one table (metric, baseline, ratio, training seconds) and writes docs/bench/tasks.json.

    .venv/bin/python bench/tasks.py              # about 15 minutes on the 2-core CPU
    .venv/bin/python bench/tasks.py --quick      # smaller budgets, about 4 minutes
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from provenance import provenance

from grec.tasks import TaskConfig, train_task

ROOT = Path(__file__).resolve().parent.parent


def timed(cfg: TaskConfig) -> tuple[dict, float]:
    started = time.time()
    state = train_task(cfg)
    return state["test"], time.time() - started


def sklearn_adult_auc() -> float:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import OneHotEncoder

    from grec.base.assets import dataset_file

    table = pd.read_parquet(dataset_file("adult")).sample(frac=1.0, random_state=0).reset_index(drop=True)
    y = (table.pop("income").str.strip() == ">50K").to_numpy()
    x = OneHotEncoder(handle_unknown="ignore").fit(table[: int(0.8 * len(table))].astype(str))
    n1, n2 = int(0.8 * len(table)), int(0.9 * len(table))
    model = LogisticRegression(max_iter=2000).fit(x.transform(table[:n1].astype(str)), y[:n1])
    return float(roc_auc_score(y[n2:], model.predict_proba(x.transform(table[n2:].astype(str)))[:, 1]))


def tfidf_reviews_auc(seed: int, sample: int, split: list[float]) -> float:
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from grec.base.assets import dataset_file
    from grec.tasks.classify import split_indices

    table = pd.read_parquet(dataset_file("clothing-reviews"))
    texts = (table["Title"].fillna("") + ". " + table["Review Text"].fillna("")).to_numpy()
    labels = table["Recommended IND"].to_numpy()
    parts = split_indices(len(texts), split, seed)
    train = parts["train"][:sample] if sample > 0 else parts["train"]
    vectoriser = TfidfVectorizer(min_df=2, ngram_range=(1, 2)).fit(texts[train])
    model = LogisticRegression(max_iter=2000).fit(vectoriser.transform(texts[train]), labels[train])
    test = parts["test"]
    return float(roc_auc_score(labels[test], model.predict_proba(vectoriser.transform(texts[test]))[:, 1]))


def sklearn_digits_accuracy(seed: int) -> float:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from grec.tasks.classify import split_indices

    digits = load_digits()
    parts = split_indices(len(digits.target), [0.8, 0.1, 0.1], seed)
    model = LogisticRegression(max_iter=5000).fit(digits.data[parts["train"]], digits.target[parts["train"]])
    return float((model.predict(digits.data[parts["test"]]) == digits.target[parts["test"]]).mean())


def popularity_ndcg(data: Path) -> float:
    from grec.evaluate.run import score_file
    from grec.infer.popularity import PopularityConfig, popularity

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pop.jsonl"
        popularity(PopularityConfig(data=str(data), out=str(out)))
        return score_file(out, [10], None)["NDCG@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller budgets (about 4 minutes)")
    parser.add_argument("--data", default="data/ml-100k", help="prepared ML-100K (grec prepare) for SASRec")
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench" / "tasks.json"))
    args = parser.parse_args()
    logging.disable(logging.INFO)
    quick = args.quick
    rows = []
    with tempfile.TemporaryDirectory() as tmp:

        def run(name: str, **settings) -> tuple[dict, float]:
            return timed(TaskConfig(output_dir=f"{tmp}/{name}", **settings))

        ctr = dict(task="ctr", data="ml-100k", batch_size=2048, learning_rate=5e-3, num_epochs=2 if quick else 4)
        lr_test, lr_seconds = run("lr", model="lr", **{**ctr, "learning_rate": 5e-2})
        rows.append(("ML-100K CTR", "lr", "auc", lr_test["auc"], "(itself)", lr_test["auc"], lr_seconds))
        for model in ("fm", "deepfm", "dcnv2"):
            test, seconds = run(model, model=model, model_args={"embed_dim": 16}, **ctr)
            rows.append(("ML-100K CTR", model, "auc", test["auc"], "grec lr", lr_test["auc"], seconds))
        test, seconds = run("adult", model="deepfm", **{**ctr, "data": "adult", "learning_rate": 1e-2})
        rows.append(("Adult", "deepfm", "auc", test["auc"], "sklearn one-hot LR", sklearn_adult_auc(), seconds))
        text = dict(sample=1000 if quick else 4000, max_len=96, split=[0.8, 0.05, 0.15])
        test, seconds = run(
            "reviews",
            task="text_cls",
            num_epochs=1,
            batch_size=32,
            learning_rate=2e-3,
            eval_batch_size=128,
            model_args={"finetune": "lora", "lora_r": 8},
            data_args=text,
        )
        rows.append(
            (
                "clothing reviews",
                "MiniLM + LoRA",
                "auc",
                test["auc"],
                "TF-IDF + LR",
                tfidf_reviews_auc(42, text["sample"], text["split"]),
                seconds,
            )
        )
        test, seconds = run(
            "digits", task="image_cls", num_epochs=4 if quick else 10, batch_size=64, learning_rate=3e-3
        )
        rows.append(
            ("digits", "cnn", "accuracy", test["accuracy"], "sklearn pixel LR", sklearn_digits_accuracy(42), seconds)
        )
        test, seconds = run(
            "sasrec",
            task="seqrec",
            data=args.data,
            num_epochs=3 if quick else 10,
            batch_size=128,
            data_args={"repeat": 20},
        )
        rows.append(
            (
                "ML-100K next item",
                "sasrec",
                "ndcg@10",
                test["ndcg@10"],
                "most popular",
                popularity_ndcg(Path(args.data)),
                seconds,
            )
        )
    print("| data | model | metric | grec | baseline | baseline value | ratio | train s |")
    print("|---|---|---|---:|---|---:|---:|---:|")
    for data, model, metric, value, base_name, base, seconds in rows:
        print(
            f"| {data} | {model} | {metric} | {value:.4f} | {base_name} | {base:.4f} | {value / base:.2f}x | "
            f"{seconds:.0f} |"
        )
    record = {
        "quick": quick,
        "rows": [
            dict(zip(("data", "model", "metric", "value", "baseline", "baseline_value", "seconds"), r)) for r in rows
        ],
    }
    out = Path(args.out)
    stored = json.loads(out.read_text()) if out.is_file() else {}  # keeps what bench/pretrain.py stored
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**stored, **provenance(), **record}, indent=1) + "\n")


if __name__ == "__main__":
    main()
