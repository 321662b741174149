"""Exploration policies for bounce: random, persistent, seek and mixed. Deterministic given the rng.

A policy object serves one episode (build a fresh one per episode: `mixed` picks its kind at
construction). `seek` reads ground truth (`gt.objects`, `gt.contacts`): exploration may cheat.
In `action_mode="discrete"` every policy returns the keyboard direction nearest its force.
"""

from __future__ import annotations

import numpy as np

from genworld.worlds.bounce.config import DISCRETE_FORCES, BounceConfig

POLICIES: tuple[str, ...] = ("random", "persistent", "seek", "mixed")
MIXED_WEIGHTS: dict[str, float] = {"random": 0.2, "persistent": 0.35, "seek": 0.45}


def to_discrete(force: np.ndarray) -> np.ndarray:
    """The discrete action (index into DISCRETE_ACTIONS) nearest to a force in [-1, 1]^2."""
    f = np.asarray(force, np.float64)
    if np.hypot(*f) < 0.3:
        return np.asarray(0, np.int64)
    d = DISCRETE_FORCES[1:] @ (f / np.hypot(*f))  # cosine to each direction
    return np.asarray(1 + int(np.argmax(d)), np.int64)


class _Base:
    def __init__(self, rng: np.random.Generator, cfg: BounceConfig) -> None:
        self.rng, self.cfg = rng, cfg

    def force(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        f = np.clip(self.force(obs), -1.0, 1.0)
        if self.cfg.action_mode == "discrete":
            return to_discrete(f)
        return f.astype(np.float32)


class RandomForce(_Base):
    """A fresh uniform force in [-1, 1]^2 every step."""

    def force(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, 2)


class PersistentForce(_Base):
    """Holds a random force for a random 2..15 steps, then draws another."""

    def __init__(self, rng: np.random.Generator, cfg: BounceConfig) -> None:
        super().__init__(rng, cfg)
        self.left, self.f = 0, np.zeros(2)

    def force(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.left <= 0:
            self.left = int(self.rng.integers(2, 16))
            ang = self.rng.uniform(0, 2 * np.pi)
            mag = self.rng.choice([0.0, 0.5, 1.0], p=[0.15, 0.35, 0.5])
            self.f = mag * np.array([np.cos(ang), np.sin(ang)])
        self.left -= 1
        return self.f


class Seek(_Base):
    """Drives the agent into a chosen object (read from gt.objects); after a hit or a while, picks another."""

    def __init__(self, rng: np.random.Generator, cfg: BounceConfig) -> None:
        super().__init__(rng, cfg)
        self.target, self.left, self.pause = -1, 0, 0

    def force(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        gt = obs["gt.objects"]
        alive = [i for i in range(1, len(gt)) if gt[i, 8] > 0.5]
        if not alive:
            return np.zeros(2)
        hit = self.target >= 0 and obs["gt.contacts"][0, self.target] > 0
        if hit and self.pause == 0:
            self.pause = int(self.rng.integers(2, 6))  # back off for a moment after a hit
        if self.pause > 0:
            self.pause -= 1
            if self.pause == 0:
                self.left = 0
            return self.rng.uniform(-1.0, 1.0, 2)
        if self.left <= 0 or self.target not in alive:
            self.target = int(self.rng.choice(alive))
            self.left = int(self.rng.integers(15, 50))
        self.left -= 1
        agent, obj = gt[0], gt[self.target]
        lead = self.rng.uniform(0.0, 4.0)  # aim where the object will be in a few steps
        d = obj[0:2] + lead * obj[2:4] - agent[0:2]
        dist = max(float(np.hypot(*d)), 1e-6)
        want = d / dist * self.cfg.max_speed * self.rng.uniform(0.5, 1.0)
        f = (want - agent[2:4]) / max(self.cfg.agent_accel, 1e-6)
        f[1] -= self.cfg.gravity / max(self.cfg.agent_accel, 1e-6)  # hold up against gravity
        return f + self.rng.normal(0.0, 0.15, 2)


def make_policy(name: str, rng: np.random.Generator, cfg: BounceConfig) -> _Base:
    """A policy by name: random, persistent, seek, or mixed (one of the three, drawn from rng)."""
    if name == "mixed":
        names = list(MIXED_WEIGHTS)
        p = np.array(list(MIXED_WEIGHTS.values()))
        name = names[int(rng.choice(len(names), p=p / p.sum()))]
    kinds = {"random": RandomForce, "persistent": PersistentForce, "seek": Seek}
    if name not in kinds:
        raise ValueError(f"bounce: unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    return kinds[name](rng, cfg)
