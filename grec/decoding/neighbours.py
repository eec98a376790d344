"""Nearest catalog items to query vectors (L2) on faiss: exact up to a catalog size, approximate past it.

Grounding (BIGRec's free title generation) embeds each generated title and ranks catalog items by
distance. ``NearestItems`` answers "the k nearest items" without the dense query x catalog matrix:
a flat (exact) faiss index for catalogs up to ``exact_up_to`` items, an inverted-file index
(``IndexIVFFlat``, ``sqrt(n)`` lists trained on 40 items each, ``nprobe`` of them searched) past it. Its recall@10 against
the exact search is measured in ``bench/ground.py`` (docs/benchmarks.md). With faiss-gpu and a GPU
the index is moved there.
"""

from __future__ import annotations

import math

import numpy as np

from grec.quantizers.kmeans import faiss_gpus

EXACT_UP_TO = 200_000  # items: above this the inverted-file index answers
NPROBE = 32


class NearestItems:
    """A faiss index over item vectors (rows); ``search(queries, k)`` -> (L2 distances, rows), nearest first."""

    def __init__(self, vectors: np.ndarray, exact_up_to: int = EXACT_UP_TO, nprobe: int = NPROBE, seed: int = 0):
        import faiss

        x = np.ascontiguousarray(vectors, dtype=np.float32)
        self.size, dim = x.shape
        self.exact = self.size <= exact_up_to
        if self.exact:
            self.index = faiss.IndexFlatL2(dim)
        else:
            lists = int(math.sqrt(self.size))
            self.index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, lists)
            sample = np.random.default_rng(seed).choice(self.size, min(self.size, lists * 40), replace=False)
            self.index.cp.seed, self.index.cp.niter = seed, 10
            self.index.train(x[np.sort(sample)])
            self.index.nprobe = nprobe
        if faiss_gpus():  # faiss-gpu installed and a GPU visible: the same index, searched there
            self.index = faiss.index_cpu_to_all_gpus(self.index)
        self.index.add(x)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        squared, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, self.size))
        return np.sqrt(np.maximum(squared, 0.0)), rows
