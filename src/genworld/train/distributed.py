"""Distributed set-up from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK): gloo on CPU, NCCL on GPU."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    """Where this process sits among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str) -> str:
    """auto -> cuda when available, else cpu; an unavailable cuda is an error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    return name


def init_distributed(device: str) -> DistInfo:
    """Join the process group when WORLD_SIZE > 1 (set by torchrun); otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev == "cuda":
        torch.cuda.set_device(local)
        dev = f"cuda:{local}"
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.startswith("cuda") else "gloo")
    return DistInfo(rank, world, local, dev)


def _all_reduce(x: float, info: DistInfo, op: dist.ReduceOp) -> float:
    t = torch.tensor([x], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=op)
    return float(t.item())


def all_mean(x: float, info: DistInfo) -> float:
    """Mean of a float over ranks (identity in one process)."""
    return _all_reduce(x, info, dist.ReduceOp.SUM) / info.world_size if info.distributed else x


def all_max(x: float, info: DistInfo) -> float:
    """Largest value of a float over ranks (identity in one process): ranks that share a clock agree on
    the learning rate and on when a --max-minutes stage ends."""
    return _all_reduce(x, info, dist.ReduceOp.MAX) if info.distributed else x
