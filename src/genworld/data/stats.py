"""Per-feature statistics (LeRobot's meta/stats.json), accumulated episode by episode."""

from __future__ import annotations

from typing import Any

import numpy as np

from genworld.spec import Modality


class RunningStats:
    """count, sum, sum of squares, min, max of one feature, reduced to its stats shape.

    Images reduce per channel to (3, 1, 1) in [0, 1] (as LeRobot); audio to (1,); other features
    keep their per-step shape (scalars become (1,)).
    """

    def __init__(self, m: Modality) -> None:
        self.m = m
        self.count = 0
        self.sum: np.ndarray | None = None
        self.sumsq: np.ndarray | None = None
        self.min: np.ndarray | None = None
        self.max: np.ndarray | None = None

    def _reduce(self, x: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self.m.kind == "video":  # (T, H, W, 3) -> per channel
            v = x.reshape(-1, x.shape[-1]).astype(np.float64) / 255.0
            shape: tuple[int, ...] = (x.shape[-1], 1, 1)
        elif self.m.kind == "audio":  # (T, spp) -> one value
            v = x.reshape(-1, 1).astype(np.float64)
            shape = (1,)
        else:  # (T, *shape)
            v = x.reshape(x.shape[0], -1).astype(np.float64)
            shape = self.m.shape or (1,)
        return (v.shape[0], v.sum(0).reshape(shape), (v * v).sum(0).reshape(shape),
                v.min(0).reshape(shape), v.max(0).reshape(shape))

    def add(self, x: np.ndarray) -> None:
        """Add one episode's values (T, *shape)."""
        n, s, ss, lo, hi = self._reduce(x)
        if self.sum is None:
            self.count, self.sum, self.sumsq, self.min, self.max = n, s, ss, lo, hi
            return
        self.count += n
        self.sum, self.sumsq = self.sum + s, self.sumsq + ss
        self.min, self.max = np.minimum(self.min, lo), np.maximum(self.max, hi)

    def to_json(self) -> dict[str, Any]:
        """LeRobot's entry: mean, std, min, max (nested lists) and count ([n])."""
        if self.sum is None:
            return {}
        mean = self.sum / self.count
        std = np.sqrt(np.maximum(self.sumsq / self.count - mean * mean, 0.0))
        return {"mean": mean.tolist(), "std": std.tolist(), "min": self.min.tolist(),
                "max": self.max.tolist(), "count": [self.count]}

    def load(self, d: dict[str, Any]) -> None:
        """Resume from a stats.json entry (as written by `to_json`)."""
        if not d:
            return
        self.count = int(d["count"][0])
        mean, std = np.asarray(d["mean"], np.float64), np.asarray(d["std"], np.float64)
        self.sum, self.sumsq = mean * self.count, (std * std + mean * mean) * self.count
        self.min, self.max = np.asarray(d["min"], np.float64), np.asarray(d["max"], np.float64)
