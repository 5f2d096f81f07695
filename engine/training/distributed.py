"""Process-group plumbing for `torchrun` (DDP): gloo on CPU, NCCL on CUDA; a no-op for one process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place in the job (rank 0 alone writes files)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_world(device_type: str) -> World:
    """Join the process group described by torchrun's environment, if there is one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")),
                 int(os.environ.get("LOCAL_WORLD_SIZE", str(size))))


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def mean(value: float, world: World, device: torch.device) -> float:
    """Average a Python number over all ranks."""
    if world.size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t) / world.size


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """True if `flag` is set on any rank (so every rank stops at the same step)."""
    if world.size == 1:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t)


def gather_bytes(t: torch.Tensor, world: World, device: torch.device) -> list[torch.Tensor]:
    """Every rank's copy of a uint8 tensor of the same length (e.g. an RNG state), on the CPU."""
    if world.size == 1:
        return [t.cpu()]
    src = t.to(device)
    out = [torch.empty_like(src) for _ in range(world.size)]
    dist.all_gather(out, src)
    return [o.cpu() for o in out]
