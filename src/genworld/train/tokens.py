"""Tokens of a whole dataset, computed once after stage 1 so stage 2 does no convolution work."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genworld.models import WorldModel
from genworld.train.data import EpisodeStore


class TokenCache:
    """Per key, the tokens of every episode concatenated in time: (N_steps, ...) plus episode offsets."""

    def __init__(self, tokens: dict[str, torch.Tensor], offsets: list[int]) -> None:
        # Code indices are small: kept as uint8 (an eighth of int64's memory) and widened per batch.
        self.dtypes = {k: v.dtype for k, v in tokens.items()}
        self.tokens = {k: (v.to(torch.uint8) if not v.is_floating_point() and v.numel() and 0 <= v.min()
                           and v.max() < 256 else v) for k, v in tokens.items()}
        self.offsets = offsets

    @classmethod
    @torch.no_grad()
    def build(cls, model: WorldModel, store: EpisodeStore, device: str, chunk: int = 64, bar: Any = None) -> TokenCache:
        """Tokenize every episode of `store` with the model's (frozen) tokenizers; `bar` (a tqdm-like
        object) is advanced by one per episode."""
        was = model.training
        model.eval()
        parts: dict[str, list[torch.Tensor]] = {}
        offsets = []
        n = 0
        for e in range(store.num_episodes):
            offsets.append(n)
            T = store.length(e)
            for s in range(0, T, chunk):
                batch = {k: torch.as_tensor(v[e][s: s + chunk])[None].to(device) for k, v in store.arrays.items()}
                for k, v in model.tokenize(batch).items():
                    parts.setdefault(k, []).append(v[0])
            n += T
            if bar is not None:
                bar.update(1)
        model.train(was)
        return cls({k: torch.cat(v) for k, v in parts.items()}, offsets)

    def gather(self, windows: list[tuple[int, int]], length: int) -> dict[str, torch.Tensor]:
        """(episode, start) windows of `length` steps -> {key: (B, length, ...)}."""
        if not windows:
            raise ValueError("no windows to gather")
        starts = np.array([self.offsets[e] + s for e, s in windows])
        idx = torch.as_tensor(starts[:, None] + np.arange(length)[None])  # (B, L)
        return {k: v[idx.to(v.device)].to(self.dtypes[k]) for k, v in self.tokens.items()}
