"""Image tokenizer: a small convolutional autoencoder with FSQ codes on a spatial grid.

A (H, W, 3) frame becomes an (H/f, W/f) grid of FSQ codes, f = 4 * 2^(len(channels) - 1): 16x16 for
64x64 with one stage. (An 8x8 grid, two stages, stalled at the mean frame, ~15 dB, on a world of moving discs; 16x16
reaches ~28 dB in 90 s on 2 cores.) Frames
whose sides are not multiples of 2^n are padded by replication and cropped after decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genworld.models.fsq import FSQ


@dataclass
class ImageTokenizerConfig:
    """Shape of the image autoencoder."""

    image_shape: tuple[int, int, int] = (64, 64, 3)  # (H, W, C) of the frames
    channels: tuple[int, ...] = (64, 96)  # at 1/4 resolution, then one more per halving
    levels: tuple[int, ...] = (8, 8, 8, 5, 5)  # FSQ levels per code channel
    local: bool = True  # the encoder sees only its own patch (see ImageTokenizer)

    @property
    def factor(self) -> int:
        return 4 * 2 ** (len(self.channels) - 1)

    @property
    def grid(self) -> tuple[int, int]:
        """(h, w) of the code grid."""
        h, w = self.image_shape[:2]
        return -(-h // self.factor), -(-w // self.factor)


class ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.gelu(self.conv1(F.gelu(x))))


class ImageTokenizer(nn.Module):
    """Encodes uint8-range frames to FSQ codes and decodes codes back to frames in [0, 1]."""

    def __init__(self, cfg: ImageTokenizerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.fsq = FSQ(cfg.levels)
        ch = cfg.channels
        c_in = cfg.image_shape[2]
        # A stride-4 patchify conv first and a pixel-shuffle last: no convolution runs at full resolution,
        # which is where a CPU would spend most of its time.
        enc: list[nn.Module]
        if cfg.local:
            # Each code sees only its own f x f patch, so a patch whose pixels do not change keeps its code.
            # With wider receptive fields, a moving disc changed the codes of its whole neighbourhood (40%
            # of a disc world's codes changed per step instead of 8%) and the dynamics had to learn that mixing.
            f = cfg.factor
            enc = [nn.Conv2d(c_in, ch[-1], f, stride=f), nn.GELU(), nn.Conv2d(ch[-1], ch[-1], 1), nn.GELU(),
                   nn.Conv2d(ch[-1], self.fsq.dim, 1)]
        else:
            enc = [nn.Conv2d(c_in, ch[0], 4, stride=4), ResBlock(ch[0])]
            for prev, c in zip(ch[:-1], ch[1:]):
                enc += [nn.GELU(), nn.Conv2d(prev, c, 4, stride=2, padding=1), ResBlock(c)]
            enc += [nn.GELU(), nn.Conv2d(ch[-1], self.fsq.dim, 1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(self.fsq.dim, ch[-1], 3, padding=1), ResBlock(ch[-1])]
        for prev, c in zip(ch[::-1][:-1], ch[::-1][1:]):
            dec += [nn.GELU(), nn.ConvTranspose2d(prev, c, 4, stride=2, padding=1), ResBlock(c)]
        dec += [nn.GELU(), nn.Conv2d(ch[0], c_in * 16, 1), nn.PixelShuffle(4)]
        self.decoder = nn.Sequential(*dec)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        gh, gw = self.cfg.grid
        ph, pw = gh * self.cfg.factor - h, gw * self.cfg.factor - w
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (N, H, W, C) uint8 or float in [0, 255] -> (values (N, h, w, D), indices (N, h, w, D))."""
        x = frames.float().permute(0, 3, 1, 2) / 127.5 - 1  # (N, C, H, W) in [-1, 1]
        z = self.encoder(self._pad(x)).permute(0, 2, 3, 1)  # (N, h, w, D)
        return self.fsq(z)

    def decode(self, values: torch.Tensor) -> torch.Tensor:
        """values (N, h, w, D) -> frames (N, H, W, C) float, about [0, 1] (clamp before display)."""
        y = self.decoder(values.permute(0, 3, 1, 2))  # (N, C, H', W')
        h, w = self.cfg.image_shape[:2]
        return (y[:, :, :h, :w].permute(0, 2, 3, 1) + 1) / 2

    def decode_indices(self, idx: torch.Tensor) -> torch.Tensor:
        """indices (N, h, w, D) -> frames (N, H, W, C) float in about [0, 1]."""
        return self.decode(self.fsq.values(idx))

    def loss(self, frames: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Reconstruction loss on a batch of frames (N, H, W, C) uint8."""
        values, _ = self.encode(frames)
        rec = self.decode(values)
        target = frames.float() / 255
        # Plain MSE: an L1 term pulls every pixel to the median (the background) and, with small
        # objects on a plain background, the autoencoder then stalls at the mean frame.
        mse = F.mse_loss(rec, target)
        loss = mse
        psnr = -10 * torch.log10(F.mse_loss(rec.detach().clamp(0, 1), target) + 1e-10)
        return loss, {"image_mse": mse.item(), "image_psnr": psnr.item()}
