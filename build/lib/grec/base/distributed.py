"""Process-group helpers for runs under ``accelerate launch`` / torchrun (no-ops when running alone).

accelerate's ``PartialState`` reports ``DistributedType.NO`` for processes started by its
multi-GPU launcher on a machine without GPUs (how CI runs two CPU processes), so its
``wait_for_everyone`` does not wait there; these helpers call torch.distributed directly.
"""

from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def barrier() -> None:
    """Block until every process of the launch reaches this point, joining the process group if needed."""
    if world_size() == 1:
        return
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    dist.barrier()


def release_processes() -> None:
    """Wait for every process, then close the process group (no-op when running alone).

    A process that exits while another still works (rank 0 scoring the test split) tears gloo's
    threads down under it, which aborts with "terminate called without an active exception".
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
