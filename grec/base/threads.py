"""The threads grec's libraries work on, and how their idle threads wait.

PyTorch's OpenMP runtime (libgomp) lets a thread that reaches the end of a parallel region spin
for a while before it sleeps. On a machine whose cores other processes also want, the spinning
threads take CPU time from the threads with work, and a program made of many short parallel
regions (grec's vectorised beam search: one small step per SID level) slows most: beside 2 busy
processes on 2 cores, grec's search ran 3.0-3.7x slower than idle and Hugging Face's generate
2.2-2.3x; with passive waiting (``OMP_WAIT_POLICY=PASSIVE``) about 2x and 1.6-1.8x, and no
slower idle (bench/decode.py --contention 2, docs/benchmarks.md). Idle training steps ran about
6% slower with it, so only the decoding commands (``grec infer``, ``serve``, ``generate``) and
the Python ``Recommender`` ask for it, and only where the user has not chosen: the runtime reads
the setting when torch is first imported, so it applies where grec runs before torch loads.
"""

from __future__ import annotations

import os
import sys

WAIT_POLICY = "OMP_WAIT_POLICY"


def prefer_passive_waiting() -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` for this process (and its children) unless it is set already or torch
    has loaded its OpenMP runtime already (then it would only mislead ``thread_report``)."""
    if "torch" not in sys.modules:
        os.environ.setdefault(WAIT_POLICY, "PASSIVE")


def thread_report() -> dict:
    """How many threads each library uses here, and how OpenMP's idle threads wait."""
    import torch

    report = {
        "cpus": os.cpu_count(),
        "torch_intra_op": torch.get_num_threads(),
        "torch_inter_op": torch.get_num_interop_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        WAIT_POLICY: os.environ.get(WAIT_POLICY) or "unset (libgomp spins, then sleeps)",
    }
    if "faiss" in sys.modules:  # faiss keeps its own OpenMP thread count
        report["faiss_omp"] = sys.modules["faiss"].omp_get_max_threads()
    return report
