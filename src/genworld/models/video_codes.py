"""Image codes in and out of the transformer, with a convolutional stem and head on the code grid.

In: each code position carries its FSQ values and their change since the previous step (a direct
motion cue: the transformer need not discover velocity by comparing steps through attention). Two
3x3 convolutions mix neighbouring positions, then p x p positions are grouped into one token.
Out: a token is expanded back to its p x p positions and two convolutions produce per-channel level
logits. The convolutions are translation-equivariant, so a motion learnt in one place holds in all.
"""

from __future__ import annotations

import torch
from torch import nn

from genworld.models.grouping import CodeGroups


class VideoCodeIO(nn.Module):
    """Embeds a camera's code grid into tokens and turns token outputs into code logits."""

    def __init__(self, grid: tuple[int, int], levels: tuple[int, ...], groups: CodeGroups, dim: int,
                 width: int) -> None:
        super().__init__()
        self.grid, self.groups, self.width = grid, groups, width
        C = len(levels)
        self.stem = nn.Sequential(nn.Conv2d(2 * C, width, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(width, width, 3, padding=1))
        self.inp = nn.Linear(groups.size * width, dim)
        self.out = nn.Linear(dim, groups.size * width)
        self.head = nn.Sequential(nn.GELU(), nn.Conv2d(width, width, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(width, sum(levels), 1))

    def embed(self, vals: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        """FSQ values (B, T, h*w, C) and the step before them (B, 1, h*w, C) or None -> tokens (B, T, G, D).

        Without `prev` the first step's change is zero (as at the start of a training window)."""
        B, T, n, C = vals.shape
        before = torch.cat([vals[:, :1] if prev is None else prev, vals[:, :-1]], dim=1)
        x = torch.cat([vals, vals - before], dim=-1)  # (B, T, n, 2C)
        gh, gw = self.grid
        x = self.stem(x.reshape(B * T, gh, gw, 2 * C).permute(0, 3, 1, 2))  # (B*T, width, gh, gw)
        x = x.permute(0, 2, 3, 1).reshape(B, T, n, self.width)
        return self.inp(self.groups.group(x))

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Token outputs (..., G, D) -> per-position logits (..., h*w, sum(levels))."""
        lead = h.shape[:-2]
        gh, gw = self.grid
        y = self.groups.ungroup(self.out(h)).reshape(-1, gh, gw, self.width).permute(0, 3, 1, 2)
        y = self.head(y)  # (N, sum(levels), gh, gw)
        return y.permute(0, 2, 3, 1).reshape(*lead, gh * gw, y.shape[1])
