"""Scripted exploration for tabletop: `random`, `persistent`, `seek`, and `mixed` (one per episode).

Actions are target fingertip velocities as a fraction of `max_speed`, shape (2,), in [-1, 1].
`seek` reads the ground truth (`gt.bodies`) to drive the fingertip through objects, so contacts,
touch and impact sounds are frequent; exploration may cheat, models may not.
"""

from __future__ import annotations

import numpy as np

from genworld.worlds.base import Policy

POLICIES = ("random", "persistent", "seek", "mixed")
MIXED_WEIGHTS = {"random": 0.15, "persistent": 0.35, "seek": 0.5}  # `mixed` draws one per episode
_X, _Y, _EXISTS = 0, 1, 16  # columns of gt.bodies (see world.BODY_COLUMNS)


class RandomVelocity:
    """A fresh uniform velocity in [-1, 1]^2 every step."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, 2).astype(np.float32)


class PersistentVelocity:
    """Holds a random direction and speed for a random number of steps (mean `mean_hold`)."""

    def __init__(self, rng: np.random.Generator, mean_hold: float = 8.0) -> None:
        self.rng, self.mean_hold = rng, mean_hold
        self.left, self.a = 0, np.zeros(2, np.float32)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.left <= 0:
            ang, speed = self.rng.uniform(0, 2 * np.pi), self.rng.uniform(0.3, 1.0)
            self.a = np.array([np.cos(ang), np.sin(ang)], np.float32) * speed
            self.left = int(self.rng.geometric(1.0 / self.mean_hold))
        self.left -= 1
        return self.a.copy()


class Seek:
    """Picks an object and drives through it (aiming a little beyond), then picks another."""

    def __init__(self, rng: np.random.Generator, noise: float = 0.15, p_wander: float = 0.1) -> None:
        self.rng, self.noise, self.p_wander = rng, noise, p_wander
        self.target, self.left = -1, 0
        self.wander = PersistentVelocity(rng, mean_hold=4.0)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        bodies = obs.get("gt.bodies")
        if bodies is None:  # no ground truth (e.g. inside a model): explore without it
            return self.wander(obs)
        present = [i for i in range(1, len(bodies)) if bodies[i, _EXISTS] > 0.5]
        if self.left <= 0 or self.target not in present:
            wander = not present or self.rng.random() < self.p_wander
            self.target = -1 if wander else int(self.rng.choice(present))
            self.left = int(self.rng.integers(6, 20))
        self.left -= 1
        if self.target < 0:
            return self.wander(obs)
        finger = bodies[0, [_X, _Y]]
        to = bodies[self.target, [_X, _Y]] - finger
        dist = float(np.linalg.norm(to))
        direction = to / max(dist, 1e-6)
        speed = 1.0 if dist > 0.05 else 0.6
        a = direction * speed + self.rng.normal(0.0, self.noise, 2)
        return np.clip(a, -1.0, 1.0).astype(np.float32)


def make_policy(name: str, rng: np.random.Generator, n_objects: int) -> Policy:
    """An exploration policy by name; `mixed` draws one of the others (by MIXED_WEIGHTS) from `rng`."""
    if name == "mixed":
        p = np.array(list(MIXED_WEIGHTS.values()))
        name = list(MIXED_WEIGHTS)[int(rng.choice(len(p), p=p / p.sum()))]
    if name == "random":
        return RandomVelocity(rng)
    if name == "persistent":
        return PersistentVelocity(rng)
    if name == "seek":
        return Seek(rng)
    raise ValueError(f"tabletop: unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
