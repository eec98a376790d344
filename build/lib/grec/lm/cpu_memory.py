"""Keep freed memory inside the process while training or ranking on a CPU (glibc's allocator).

glibc serves every allocation above 128 KiB with a fresh ``mmap`` and gives it back with
``munmap`` when freed. A training step on the CPU allocates and frees the same large activations
(a T5 encoder's attention probabilities are batch x heads x length^2 floats, ~110 MB at 380
tokens) every step, and a beam search its logits and caches every level, so each step faults in
and zeroes those pages again: on TIGER's T5 that was a third of a training step and half of a
beam search's time, spent in the kernel. :func:`kept_freed_memory` turns glibc's ``mmap`` path
off and raises its trim threshold inside a ``with`` block (grec's trainer and ranking loops), so
freed blocks stay in the heap and the next step reuses them; on leaving, the defaults come back
and the free memory is returned with ``malloc_trim``.

The price is fragmentation: the heap cannot release a block in its middle, so the peak resident
memory is higher (+6% for grec's T5 training bench, +17% for the plain Trainer's;
docs/benchmarks.md). ``--keep_cpu_memory false`` (train, task and infer flags) turns it off.
Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import platform
import sys

logger = logging.getLogger("grec")

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameters, from glibc's malloc.h
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536


def _glibc():
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@contextlib.contextmanager
def kept_freed_memory(enabled: bool = True):
    """Within the block, freed memory stays in the process for reuse (glibc only); yields whether it does."""
    libc = _glibc() if enabled else None
    if libc is None:
        yield False
        return
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
    logger.info("freed memory kept in the process between steps (glibc mallopt; --keep_cpu_memory)")
    try:
        yield True
    finally:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)
