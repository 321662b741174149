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


def compute_stats(spec: WorldSpec, arrays: dict[str, list[np.ndarray]], object_slots: int = 0,
                  palette_frames: int = 512) -> dict[str, Any]:
    """Stats from training episodes {key: [(T, *shape), ...]} -> JSON-able {key: {...}}; with `object_slots`,
    also the palette of the first camera (models/objects.py), learned on up to `palette_frames` frames."""
    stats: dict[str, Any] = {}
    videos = [m.key for m in spec.of_kind("video") if m.key in arrays and arrays[m.key]]
    if object_slots > 0 and videos:
        from genworld.models.objects import MIN_COVERAGE, OBJECTS, coverage, learn_palette

        eps = arrays[videos[0]]
        where = [(e, t) for e in range(len(eps)) for t in range(len(eps[e]))]
        pick = np.linspace(0, len(where) - 1, min(palette_frames, len(where))).round().astype(int)
        frames = np.stack([np.asarray(eps[where[i][0]][where[i][1]]) for i in pick])
        colours, background = learn_palette(frames, object_slots)
        share = coverage(frames, [background] + colours)
        # A world not drawn in flat colours (shaded 3-D, photographs) gets no slots: they would be noise.
        stats[OBJECTS] = {"palette": [background] + colours, "count": len(colours) if share >= MIN_COVERAGE else 0,
                          "coverage": round(share, 4)}
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
            if m.kind == "proprio":  # the step-to-step change, for heads that predict it (proprio_residual)
                d = np.concatenate([np.diff(a.reshape(a.shape[0], -1).astype(np.float64), axis=0) for a in arrays[m.key]])
                std = np.asarray(stats[m.key]["std"])
                stats[m.key]["delta_std"] = (np.maximum(d.std(0), 1e-3 * std) if len(d) else std).tolist()
    return stats


class Normalizer(nn.Module):
    """Maps raw values to the model's scale and back, per key."""

    def __init__(self, spec: WorldSpec, deltas: bool = False, object_slots: int = 0) -> None:
        super().__init__()
        self.kinds: dict[str, str] = {}
        if object_slots > 0:  # the first camera's palette, background first (models/objects.py)
            from genworld.models.objects import OBJECTS

            self.register_buffer("objects_palette", torch.zeros(object_slots + 1, 3))
            self.register_buffer("objects_count", torch.zeros(()))
            self.kinds[OBJECTS] = "objects"
        for m in spec.modalities:
            if m.kind in ("proprio", "reward") or (m.kind == "action" and not m.discrete):
                n = math.prod(m.shape) if m.shape else 1
                self.register_buffer(f"{_n(m.key)}_mean", torch.zeros(n))
                self.register_buffer(f"{_n(m.key)}_std", torch.ones(n))
                if deltas and m.kind == "proprio":  # std of the step-to-step change (proprio_residual)
                    self.register_buffer(f"{_n(m.key)}_delta_std", torch.ones(n))
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
                if self.kinds[key] == "objects":
                    if name == "coverage":
                        continue
                    if name == "palette":
                        n = len(v)
                        if n > self.objects_palette.shape[0]:
                            raise ValueError(f"stats: a palette of {n - 1} colours for {self.objects_palette.shape[0] - 1} "
                                             "object slots")
                        self.objects_palette.zero_()
                        self.objects_palette[:n] = torch.as_tensor(v, dtype=torch.float32)
                    else:
                        self.objects_count.fill_(float(v))
                    continue
                if name == "delta_std" and not hasattr(self, f"{_n(key)}_{name}"):  # no head predicts changes
                    continue
                buf = getattr(self, f"{_n(key)}_{name}")
                buf.copy_(torch.as_tensor(v, dtype=torch.float32).reshape(buf.shape))

    def get(self, key: str, name: str) -> torch.Tensor:
        return getattr(self, f"{_n(key)}_{name}")

    def contact_level(self, key: str) -> torch.Tensor:
        """A touch key's contact threshold in its scaled units: a taxel above it is in contact."""
        return self.get(key, "threshold") / self.get(key, "scale")

    def delta_scale(self, key: str) -> torch.Tensor:
        """The std of a proprio key's step-to-step change in its normalised units (n,)."""
        return self.get(key, "delta_std") / self.get(key, "std")

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
