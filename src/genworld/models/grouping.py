"""Grouping FSQ code positions into transformer tokens: a p x p patch of image codes (or a run of
audio codes) becomes one token, which cuts the dynamics' sequence length by p^2 while the
tokenizer keeps its fine grid."""

from __future__ import annotations

import torch


class CodeGroups:
    """Maps a (gh, gw) grid of code positions to (gh/ph * gw/pw) groups of ph*pw positions and back."""

    def __init__(self, grid: tuple[int, int], patch: tuple[int, int]) -> None:
        gh, gw = grid
        ph, pw = patch
        if gh % ph or gw % pw:
            ph, pw = 1, 1  # grids that do not divide stay ungrouped
        self.grid, self.patch = (gh, gw), (ph, pw)
        self.n_groups = (gh // ph) * (gw // pw)
        self.size = ph * pw

    def group(self, x: torch.Tensor) -> torch.Tensor:
        """(..., gh*gw, F) -> (..., n_groups, size*F)."""
        lead, F = x.shape[:-2], x.shape[-1]
        (gh, gw), (ph, pw) = self.grid, self.patch
        x = x.reshape(-1, gh // ph, ph, gw // pw, pw, F).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(*lead, self.n_groups, self.size * F)

    def ungroup(self, y: torch.Tensor) -> torch.Tensor:
        """(..., n_groups, size*F) -> (..., gh*gw, F)."""
        lead = y.shape[:-2]
        (gh, gw), (ph, pw) = self.grid, self.patch
        F = y.shape[-1] // self.size
        y = y.reshape(-1, gh // ph, gw // pw, ph, pw, F).permute(0, 1, 3, 2, 4, 5)
        return y.reshape(*lead, gh * gw, F)
