"""Scoring shared by the classification tasks: accuracy, macro-F1, AUC and a confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score, roc_auc_score

    predicted = probs.argmax(1)
    out = {
        "accuracy": float((predicted == labels).mean()),
        "macro_f1": float(f1_score(labels, predicted, average="macro", labels=list(range(probs.shape[1])))),
    }
    present = np.unique(labels)
    if probs.shape[1] == 2 and len(present) == 2:
        out["auc"] = float(roc_auc_score(labels, probs[:, 1]))
    elif len(present) == probs.shape[1] > 2:
        out["auc"] = float(roc_auc_score(labels, probs, multi_class="ovr"))
    return out


def plot_confusion(labels: np.ndarray, predicted: np.ndarray, names: list[str], path: Path) -> np.ndarray:
    """Save the confusion matrix (rows: true class, columns: predicted) as a PNG; return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from grec.base.io import atomic_open

    n = len(names)
    matrix = np.zeros((n, n), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.5 * n, 1 + 0.5 * n))
    ax.imshow(matrix, cmap="Blues")
    ax.set(
        xticks=range(n),
        yticks=range(n),
        xticklabels=names,
        yticklabels=names,
        xlabel="predicted",
        ylabel="true",
        title="confusion matrix (test)",
    )
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if matrix[i, j] > matrix.max() / 2 else "black",
            )
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)
    return matrix


def split_indices(n: int, fractions: list[float], seed: int) -> dict[str, np.ndarray]:
    """A seeded shuffle of 0..n-1 cut into train/valid/test by ``fractions`` (a remainder is left out)."""
    order = np.random.default_rng(seed).permutation(n)
    cut1, cut2 = int(fractions[0] * n), int((fractions[0] + fractions[1]) * n)
    cut3 = n if sum(fractions) > 1 - 1e-6 else int(sum(fractions) * n)
    return {"train": order[:cut1], "valid": order[cut1:cut2], "test": order[cut2:cut3]}
