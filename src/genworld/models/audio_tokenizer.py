"""Audio tokenizer: each step's chunk of samples becomes a few FSQ tokens and back.

The chunk (already scaled to about [-1, 1] by the model's normaliser) and its log-magnitude
spectrum go through an MLP to `n_tokens` codes; a second MLP decodes the codes to the waveform.
Trained on waveform L1 plus a multi-resolution STFT log-magnitude distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genworld.models.fsq import FSQ


@dataclass
class AudioTokenizerConfig:
    """Shape of the per-step audio autoencoder."""

    samples: int = 1000  # samples per step
    n_tokens: int = 4
    hidden: int = 256
    levels: tuple[int, ...] = (8, 8, 5, 5)


def stft_logmag(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """x (N, S) -> log(1 + |STFT|) (N, F, T)."""
    win = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(x, n_fft, hop_length=n_fft // 4, window=win, return_complex=True, center=True)
    return torch.log1p(spec.abs() * 10)


class AudioTokenizer(nn.Module):
    """Chunk (N, S) float -> codes (N, n_tokens, D) and back."""

    def __init__(self, cfg: AudioTokenizerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.fsq = FSQ(cfg.levels)
        s, h, d = cfg.samples, cfg.hidden, self.fsq.dim
        n_freq = s // 2 + 1
        self.encoder = nn.Sequential(nn.Linear(s + n_freq, h), nn.GELU(), nn.Linear(h, h), nn.GELU(),
                                     nn.Linear(h, cfg.n_tokens * d))
        self.decoder = nn.Sequential(nn.Linear(cfg.n_tokens * d, h), nn.GELU(), nn.Linear(h, h), nn.GELU(),
                                     nn.Linear(h, s))

    def encode(self, chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """chunk (N, S) scaled -> (values (N, n, D), indices (N, n, D))."""
        mag = torch.log1p(torch.fft.rfft(chunk, dim=-1).abs())  # (N, S/2+1)
        z = self.encoder(torch.cat([chunk, mag], dim=-1)).view(chunk.shape[0], self.cfg.n_tokens, self.fsq.dim)
        return self.fsq(z)

    def decode(self, values: torch.Tensor) -> torch.Tensor:
        """values (N, n, D) -> chunk (N, S) in [-1, 1]."""
        return torch.tanh(self.decoder(values.flatten(1)))

    def decode_indices(self, idx: torch.Tensor) -> torch.Tensor:
        return self.decode(self.fsq.values(idx))

    def loss(self, chunk: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Waveform L1 + multi-resolution STFT distance on a batch of scaled chunks (N, S)."""
        values, _ = self.encode(chunk)
        rec = self.decode(values)
        l1 = F.l1_loss(rec, chunk)
        spec = sum(F.l1_loss(stft_logmag(rec, n), stft_logmag(chunk, n)) for n in (64, 256))
        loss = l1 + 0.5 * spec
        return loss, {"audio_l1": l1.item(), "audio_spec": float(spec.detach())}
