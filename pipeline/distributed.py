"""torchrun integration: which process this is, and the process group when there are several.

Collectives time out after ``CDVD_DIST_TIMEOUT_MIN`` minutes (default 30): a rank that died or hangs ends
the run with an error instead of leaving the others waiting forever.
"""
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from pipeline.runtime import compute_device


@dataclass(frozen=True)
class Process:
    """This process's place in a torchrun launch (rank 0 of 1 when run directly)."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_process(device: str | None = None) -> tuple[Process, torch.device]:
    """Read torchrun's environment, join the process group (NCCL on GPUs, gloo on CPUs), pick the device."""
    process = Process(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                      int(os.environ.get("LOCAL_RANK", 0)))
    device = compute_device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if process.world_size > 1 and not dist.is_initialized():
        timeout = timedelta(minutes=float(os.environ.get("CDVD_DIST_TIMEOUT_MIN", 30)))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout)
    return process, device


def barrier() -> None:
    """Wait for every rank (nothing when running alone)."""
    if dist.is_initialized():
        dist.barrier()


def gather(value: object) -> list[object]:
    """Every rank's ``value``, in rank order, on every rank (``[value]`` when running alone)."""
    if not dist.is_initialized():
        return [value]
    values: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def broadcast(value: object) -> object:
    """Rank 0's ``value`` on every rank (``value`` itself when running alone)."""
    if not dist.is_initialized():
        return value
    values = [value]
    dist.broadcast_object_list(values, src=0)
    return values[0]


def restarted() -> bool:
    """Whether torchrun restarted this launch after a worker failed (``--max-restarts``)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)) > 0


def close_process() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
