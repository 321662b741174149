"""A flow-matching sampler of the next step's image codes: one sharp possibility instead of the average.

The dynamics' per-code heads predict each code position on its own; where the model is unsure where a thing
goes, the most likely code of every candidate position is "not there" and the thing vanishes, and the expected
values draw a blur that fades. This head draws the whole code grid of the next step jointly: a small
convolutional denoiser on the (gh, gw) grid, conditioned on the transformer's video tokens, the current step's
code values and the heads' estimate of the next, is trained by flow matching (rectified flow, x-prediction;
Lipman et al. 2023, Liu et al. 2023) and sampled in a few Euler steps from Gaussian noise, as DIAMOND and
GameNGen draw frames, here on a 16x16 grid of code values instead of pixels. Its convolutions see each code's
neighbourhood, so a sample that puts a disc in one place does not also put it in the next.

Shapes: grids are (N, C, gh, gw) code values in [-1, 1]; token features (N, G, D).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genworld.models.grouping import CodeGroups

BLOCKS = 3  # residual blocks of the denoiser (each two 3x3 convolutions)


class _Block(nn.Module):
    """A residual block whose features are shifted and scaled by the noise level (FiLM)."""

    def __init__(self, w: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(w, w, 3, padding=1)
        self.conv2 = nn.Conv2d(w, w, 3, padding=1)
        self.film = nn.Linear(w, 2 * w)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(temb)[..., None, None].chunk(2, dim=1)  # (N, w, 1, 1) each
        y = self.conv1(F.gelu(x)) * (1 + scale) + shift
        return x + self.conv2(F.gelu(y))


class CodeFlow(nn.Module):
    """Denoiser of one camera's next code grid; `loss` trains it, `sample` draws from it."""

    def __init__(self, channels: int, dim: int, groups: CodeGroups, width: int) -> None:
        super().__init__()
        self.C, self.groups, self.width = channels, groups, width
        self.cond = nn.Linear(dim, groups.size * width)  # a video token -> features of each of its code positions
        self.stem = nn.Conv2d(3 * channels, width, 3, padding=1)  # noisy sample, current values, heads' estimate
        self.temb = nn.Sequential(nn.Linear(16, width), nn.GELU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(_Block(width) for _ in range(BLOCKS))
        self.out = nn.Conv2d(width, channels, 3, padding=1)

    def _features(self, h: torch.Tensor) -> torch.Tensor:
        """Token features (N, G, D) -> per-code conditioning (N, width, gh, gw)."""
        gh, gw = self.groups.grid
        c = self.groups.ungroup(self.cond(h))  # (N, gh*gw, width)
        return c.transpose(1, 2).reshape(-1, self.width, gh, gw)

    def denoise(self, x: torch.Tensor, tau: torch.Tensor, now: torch.Tensor, mean: torch.Tensor,
                cond: torch.Tensor) -> torch.Tensor:
        """Noisy grids x (N, C, gh, gw) at flow times tau (N,) -> the clean grid's estimate (N, C, gh, gw)."""
        freqs = torch.exp(torch.arange(8, device=x.device) * (math.log(1000.0) / 8))
        ang = tau[:, None] * freqs[None]  # (N, 8)
        temb = self.temb(torch.cat([ang.sin(), ang.cos()], -1))  # (N, width)
        y = self.stem(torch.cat([x, now, mean], 1)) + cond
        for blk in self.blocks:
            y = blk(y, temb)
        return mean + self.out(F.gelu(y))  # a correction of the heads' estimate

    def loss(self, target: torch.Tensor, now: torch.Tensor, mean: torch.Tensor, h: torch.Tensor,
             weight: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """Flow-matching loss: target, current and estimated grids (N, C, gh, gw), token features (N, G, D) and a
        per-position weight (N, gh, gw) -> the clean-grid estimate's squared error, weighted, averaged over positions."""
        N = target.shape[0]
        tau = torch.rand(N, generator=gen).to(target.device)
        noise = torch.randn(target.shape, generator=gen).to(target.device)
        t = tau[:, None, None, None]
        x = (1 - t) * noise + t * target
        err = (self.denoise(x, tau, now, mean, self._features(h)) - target).pow(2).mean(1)  # (N, gh, gw)
        return (err * weight).mean()  # over positions, not the weights' sum: data-parallel ranks agree

    @torch.no_grad()
    def sample(self, now: torch.Tensor, mean: torch.Tensor, h: torch.Tensor, steps: int,
               gen: torch.Generator | None = None) -> torch.Tensor:
        """Current and estimated grids (N, C, gh, gw), token features (N, G, D) -> a sampled next grid (N, C, gh, gw),
        by `steps` Euler steps of the flow from Gaussian noise."""
        if steps < 1:
            raise ValueError(f"model.flow_steps={steps}: the code sampler needs at least one step")
        cond = self._features(h)
        x = torch.randn(now.shape, generator=gen).to(now.device)
        for i in range(steps):
            tau = i / steps
            x1 = self.denoise(x, now.new_full((now.shape[0],), tau), now, mean, cond)
            x = x + (x1 - x) / (1 - tau) * (1 / steps)  # the last step lands on the estimate x1
        return x.clamp(-1, 1)
