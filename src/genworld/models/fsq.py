"""Finite scalar quantisation (FSQ, Mentzer et al. 2023): each channel is rounded to one of L levels.

No codebook, so nothing can collapse. A code is a vector of per-channel level indices; the
dynamics model predicts each channel's index with its own small softmax (sum(levels) logits per
token instead of prod(levels)).
"""

from __future__ import annotations

import torch
from torch import nn


class FSQ(nn.Module):
    """Quantises the last axis (C = len(levels)) to per-channel levels in [-1, 1], straight-through."""

    def __init__(self, levels: tuple[int, ...]) -> None:
        super().__init__()
        if not levels or min(levels) < 2:
            raise ValueError(f"FSQ levels must be >= 2 each, got {levels}")
        self.levels = tuple(int(v) for v in levels)
        self.register_buffer("_lv", torch.tensor(self.levels, dtype=torch.float32), persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (..., C) unbounded -> (values (..., C) in [-1, 1] with straight-through grads, indices (..., C) long)."""
        soft = (torch.tanh(z) + 1) / 2 * (self._lv - 1)  # (..., C) in [0, L-1]
        idx = soft.round()
        hard = soft + (idx - soft).detach()
        return hard / (self._lv - 1) * 2 - 1, idx.long()

    def values(self, idx: torch.Tensor) -> torch.Tensor:
        """Indices (..., C) long -> values (..., C) in [-1, 1]."""
        return idx.float() / (self._lv - 1) * 2 - 1

    def random_indices(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
                       device: torch.device | str = "cpu") -> torch.Tensor:
        """Uniform random indices of shape (*shape, C), for context corruption."""
        u = torch.rand((*shape, self.dim), generator=generator, device=device)
        return (u * self._lv.to(device)).long().clamp_max(self._lv.to(device).long() - 1)
