"""Collaborative item vectors from the training histories, and how well a SID assignment follows them.

Text embeddings put items that *read* alike together; a recommender needs items that are
*consumed* together close. ``cooccurrence_embeddings`` counts, in each user's whole training
sequence (rebuilt from train.jsonl), the pairs of items at most ``window`` positions apart, weights them by positive pointwise mutual
information and keeps the top ``dim`` singular directions (a sparse randomised SVD, so a large
catalog works). ``--collab_weight w`` mixes them into the text vectors: ``[sqrt(1-w) text,
sqrt(w) collab]``, both unit-length, so the result is unit-length for every item with training
interactions (LC-Rec and LETTER make the same point with learned collaborative signals).

``sequence_agreement`` measures what TIGER can exploit: how often a validation user's next item
shares its first code (and first two codes) with the user's last item, against the rate two
random items share it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grec.base.errors import GrecError
from grec.base.sequences import read_split, user_training_sequences


def training_sequences(data: str | Path) -> list[list[str]]:
    """Each user's whole training sequence, rebuilt from ``data``/train.jsonl (``user_training_sequences``)."""
    path = Path(data) / "train.jsonl"
    if not path.is_file():
        raise GrecError(f"{path}: not found; --collab_weight needs a grec prepare folder with its splits")
    return list(user_training_sequences(read_split(path)).values())


def cooccurrence_embeddings(
    data: str | Path, item_ids: list[str], dim: int = 64, window: int = 5, seed: int = 42
) -> np.ndarray:
    """Unit-length PPMI-SVD vectors per item (rows in ``item_ids`` order; unseen items get zeros)."""
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD

    index = {item: k for k, item in enumerate(item_ids)}
    rows, cols = [], []
    for sequence in training_sequences(data):
        ids = np.array([index[i] for i in sequence if i in index])
        for gap in range(1, window + 1):
            rows.append(ids[:-gap])
            cols.append(ids[gap:])
    a, b = np.concatenate(rows), np.concatenate(cols)
    n = len(item_ids)
    counts = sparse.coo_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n)).tocsr()
    counts.sum_duplicates()
    total, marginal = counts.sum(), np.asarray(counts.sum(1)).ravel()
    coo = counts.tocoo()
    pmi = np.log(coo.data * total / (marginal[coo.row] * marginal[coo.col]))
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=(n, n))
    dim = min(dim, n - 1)
    svd = TruncatedSVD(n_components=dim, random_state=seed)
    vectors = svd.fit_transform(ppmi) / np.sqrt(np.maximum(svd.singular_values_, 1e-12))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.where(norms > 0, vectors / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


def mix(text: np.ndarray, collab: np.ndarray, weight: float) -> np.ndarray:
    """``[sqrt(1 - w) text, sqrt(w) collab]`` of unit-length rows; an item no training user consumed has
    a zero collab part, so its row has length sqrt(1 - w) (it sits nearer the centre, not among the
    consumed items)."""
    unit = text / np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)
    return np.hstack([np.sqrt(1.0 - weight) * unit, np.sqrt(weight) * collab]).astype(np.float32)


def sequence_agreement(data: str | Path, item_ids: list[str], codes: np.ndarray) -> dict:
    """Share of validation next items whose first 1 and 2 codes equal the last history item's, and by chance."""
    path = Path(data) / "valid.jsonl"
    if not path.is_file():
        return {}
    index = {item: k for k, item in enumerate(item_ids)}
    pairs = [
        (index[r["history"][-1]], index[r["target"]])
        for r in read_split(path)
        if r["history"] and r["history"][-1] in index and r["target"] in index
    ]
    if not pairs:
        return {}
    last, target = (np.array(side) for side in zip(*pairs))
    out = {"pairs": len(pairs)}
    for depth in (1, 2):
        _, key = np.unique(codes[:, :depth], axis=0, return_inverse=True)
        key = key.ravel()
        share = np.bincount(key) / len(key)
        out[f"prefix{depth}_next_item"] = float((key[last] == key[target]).mean())
        out[f"prefix{depth}_chance"] = float((share**2).sum())
    return out
