"""Baseline sessions for the report: copy-last-frame and constant-velocity extrapolation of the GT state.

Both implement `genworld.rollout.base.Session` (batch-first reset/step/observe/snapshot/restore/expand).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from genworld.spec import WorldSpec

PREDICTED_KINDS = ("video", "audio", "touch", "proprio")


class CopyLastSession:
    """Predicts that nothing changes: every step repeats the last real observation (audio and touch silent)."""

    def __init__(self, spec: WorldSpec) -> None:
        self.spec = spec
        self.keys = [m.key for m in spec.of_kind(*PREDICTED_KINDS)]
        self.last: dict[str, np.ndarray] = {}

    @property
    def batch_size(self) -> int:
        return len(next(iter(self.last.values()))) if self.last else 0

    def reset(self, context: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.last = {k: np.asarray(context[k])[:, -1].copy() for k in self.keys if k in context}
        return dict(self.last)

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for k, v in self.last.items():
            silent = self.spec[k].kind in ("audio", "touch")
            out[k] = np.zeros_like(v) if silent else v.copy()
        return out

    def observe(self, obs: dict[str, np.ndarray]) -> None:
        self.last.update({k: np.asarray(v).copy() for k, v in obs.items() if k in self.last})

    def snapshot(self) -> Any:
        return copy.deepcopy(self.last)

    def restore(self, snap: Any) -> None:
        self.last = copy.deepcopy(snap)

    def expand(self, n: int) -> None:
        self.last = {k: np.repeat(v, n, axis=0) for k, v in self.last.items()}


class GroundTruthStateSession(CopyLastSession):
    """Copy-last plus a per-future ground-truth state table (`state_key`, its last context row) that a
    subclass moves on in `step`; observing, snapshots and branching keep the table with the frames."""

    state_key = ""

    def __init__(self, spec: WorldSpec) -> None:
        super().__init__(spec)
        if self.state_key not in spec:
            raise ValueError(f"constant-velocity baseline: world {spec.name!r} has no {self.state_key}")
        self.video = spec.of_kind("video")[0].key
        self.state = np.zeros((0,))

    def reset(self, context: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.state_key not in context:
            raise ValueError(f"constant-velocity baseline: the context lacks {self.state_key}")
        self.state = np.asarray(context[self.state_key], np.float64)[:, -1].copy()  # (B, rows, columns)
        return super().reset(context)

    def observe(self, obs: dict[str, np.ndarray]) -> None:
        super().observe(obs)
        if self.state_key in obs:
            self.state = np.asarray(obs[self.state_key], np.float64).copy()

    def snapshot(self) -> Any:
        return copy.deepcopy((self.last, self.state))

    def restore(self, snap: Any) -> None:
        self.last, self.state = copy.deepcopy(snap)

    def expand(self, n: int) -> None:
        super().expand(n)
        self.state = np.repeat(self.state, n, axis=0)


class ConstantVelocitySession(GroundTruthStateSession):
    """Moves every GT disc on with its last GT velocity (no walls, no collisions) and renders it (bounce only)."""

    state_key = "gt.objects"

    def __init__(self, spec: WorldSpec) -> None:
        super().__init__(spec)
        from genworld.worlds.bounce.render import Painter

        self.painter = Painter(spec.config)

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]:
        out = super().step(action)
        self.state[..., 0:2] += self.state[..., 2:4]
        out[self.video] = np.stack([self.painter.paint(t) for t in self.state])
        for m in self.spec.of_kind("proprio"):
            if m.names[:4] == ("x", "y", "vx", "vy"):
                out[m.key] = self.state[:, 0, :4].astype(np.float32)
        return out
