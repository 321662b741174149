"""Data normalisation held as buffers (saved with the weights) and as JSON-able stats.

Proprio, continuous actions and reward are standardised per dimension; touch is divided by one
scale so that "no contact" stays exactly zero; audio is divided by a robust peak.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from genworld.spec import WorldSpec


def compute_stats(spec: WorldSpec, arrays: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    """Stats from training episodes {key: [(T, *shape), ...]} -> JSON-able {key: {...}}."""
    stats: dict[str, Any] = {}
    for m in spec.modalities:
        if m.key not in arrays or m.kind in ("video", "gt", "text", "done") or m.discrete:
            continue
        x = np.concatenate([a.reshape(a.shape[0], -1) for a in arrays[m.key]]).astype(np.float64)
        if m.kind == "audio":
            peak = float(np.quantile(np.abs(x), 0.999)) if x.size else 1.0
            stats[m.key] = {"scale": max(peak, 1e-4)}
        elif m.kind == "touch":
            absx = np.abs(x)
            active = absx[absx > 0]
            top = float(np.quantile(active, 0.99)) if active.size else 1.0
            stats[m.key] = {"scale": max(top, 1e-6) / 2, "threshold": max(top, 1e-6) * 0.02}
        else:
            stats[m.key] = {"mean": x.mean(0).tolist(), "std": np.maximum(x.std(0), 1e-3).tolist()}
    return stats


class Normalizer(nn.Module):
    """Maps raw values to the model's scale and back, per key."""

    def __init__(self, spec: WorldSpec) -> None:
        super().__init__()
        self.kinds: dict[str, str] = {}
        for m in spec.modalities:
            if m.kind in ("proprio", "reward") or (m.kind == "action" and not m.discrete):
                n = math.prod(m.shape) if m.shape else 1
                self.register_buffer(f"{_n(m.key)}_mean", torch.zeros(n))
                self.register_buffer(f"{_n(m.key)}_std", torch.ones(n))
            elif m.kind in ("touch", "audio"):
                self.register_buffer(f"{_n(m.key)}_scale", torch.ones(()))
                if m.kind == "touch":
                    self.register_buffer(f"{_n(m.key)}_threshold", torch.zeros(()))
            else:
                continue
            self.kinds[m.key] = m.kind

    def set_stats(self, stats: dict[str, Any]) -> None:
        """Load stats from `compute_stats` output into the buffers."""
        for key, s in stats.items():
            if key not in self.kinds:
                continue
            for name, v in s.items():
                if name == "delta_std":  # in the stats.json of runs from before proprio heads stopped predicting changes
                    continue
                buf = getattr(self, f"{_n(key)}_{name}")
                buf.copy_(torch.as_tensor(v, dtype=torch.float32).reshape(buf.shape))

    def get(self, key: str, name: str) -> torch.Tensor:
        return getattr(self, f"{_n(key)}_{name}")

    def contact_level(self, key: str) -> torch.Tensor:
        """A touch key's contact threshold in its scaled units: a taxel above it is in contact."""
        return self.get(key, "threshold") / self.get(key, "scale")

    def encode(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Raw (..., n) -> normalised (..., n)."""
        if self.kinds[key] == "touch":
            return x / self.get(key, "scale")
        return (x - self.get(key, "mean")) / self.get(key, "std")

    def decode(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Normalised (..., n) -> raw (..., n)."""
        if self.kinds[key] == "touch":
            return x * self.get(key, "scale")
        return x * self.get(key, "std") + self.get(key, "mean")

    def audio_in(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return (x / self.get(key, "scale")).clamp(-1, 1)

    def audio_out(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return x * self.get(key, "scale")


def _n(key: str) -> str:
    return key.replace(".", "__")
