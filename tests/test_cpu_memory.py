"""grec.lm.cpu_memory: freed memory is reused inside the block and handed back after it."""

import platform
import resource
import sys

import pytest
import torch

from grec.lm.cpu_memory import kept_freed_memory

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="the setting is glibc's"
)


def page_faults_of(churn) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    churn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def churn() -> None:
    """Allocate, touch and free 64 MB four times, as a training step does with its activations."""
    for _ in range(4):
        torch.ones(16 * 2**20).sum()


def test_freed_memory_is_reused_inside_and_returned_after():
    pages = 4 * 64 * 2**20 // 4096
    assert page_faults_of(churn) > 0.9 * pages  # glibc's default: a fresh mmap, faulted in, each time
    with kept_freed_memory() as kept:
        assert kept
        churn()  # the heap grows once
        assert page_faults_of(churn) < 0.05 * pages  # then the same blocks serve every allocation
    assert page_faults_of(churn) > 0.9 * pages  # defaults back: large blocks are returned on free


def test_disabled_changes_nothing():
    with kept_freed_memory(enabled=False) as kept:
        assert not kept
        assert page_faults_of(churn) > 0.9 * 4 * 64 * 2**20 // 4096
