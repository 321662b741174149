"""Fixtures for the play server: a small rewindable world with every modality, and sources around it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genworld.rollout.sim import SimSession
from genworld.serve.source import Source, SourceConfig, world_context
from genworld.spec import Modality, WorldSpec
from genworld.worlds.base import register_world

FPS, SIZE, SR = 10, 16, 1600
NAMES = ("none", "up", "down", "left", "right")
STEPS = {1: (0, -1), 2: (0, 1), 3: (-1, 0), 4: (1, 0)}


class ToyWorld:
    """A dot that moves in a 16x16 box: it hums at a pitch set by its speed and feels the walls it hits."""

    def __init__(self, continuous: bool = False) -> None:
        act = (Modality("action", "action", (2,), FPS, low=-1, high=1, names=("fx", "fy")) if continuous else
               Modality("action", "action", (), FPS, dtype="int64", discrete=True, names=NAMES))
        self.spec = WorldSpec(name="servetoy-c" if continuous else "servetoy", fps=FPS, modalities=(
            Modality("observation.images.top", "video", (SIZE, SIZE, 3), FPS, dtype="uint8"),
            Modality("observation.audio.mic", "audio", (SR // FPS,), SR),
            Modality("observation.tactile.walls", "touch", (4,), FPS),
            Modality("observation.state", "proprio", (4,), FPS, names=("x", "y", "vx", "vy")),
            Modality("gt.state", "gt", (5,), FPS),
            act,
            Modality("next.reward", "reward", (), FPS),
            Modality("next.done", "done", (), FPS, dtype="bool"),
        ))
        self.s = np.zeros(5)  # x, y, vx, vy, audio phase
        self.touch = np.zeros(4, np.float32)
        self.audio = np.zeros(SR // FPS, np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        img = np.full((SIZE, SIZE, 3), 20, np.uint8)
        img[int(self.s[1]), int(self.s[0])] = (250, 250, 250)
        return {"observation.images.top": img, "observation.audio.mic": self.audio.copy(),
                "observation.tactile.walls": self.touch.copy(), "observation.state": self.s[:4].astype(np.float32),
                "gt.state": self.s.astype(np.float32)}

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        self.s = np.array([*rng.uniform(2, SIZE - 2, 2), 0.0, 0.0, 0.0])
        self.touch[:] = 0
        self.audio[:] = 0
        return self._obs()

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool]:
        a = np.asarray(action)
        force = np.asarray(STEPS.get(int(a), (0, 0)), float) if a.shape == () else a.astype(float)
        self.s[2:4] = 0.8 * self.s[2:4] + 0.6 * force
        self.s[0:2] += self.s[2:4]
        self.touch[:] = 0
        for axis in (0, 1):
            for side, edge in ((0, 0.0), (1, SIZE - 1e-3)):
                if (self.s[axis] < edge) if side == 0 else (self.s[axis] > edge):
                    self.touch[2 * axis + side] = abs(self.s[2 + axis])
                    self.s[axis], self.s[2 + axis] = edge, -0.5 * self.s[2 + axis]
        freq = 200 + 100 * np.hypot(*self.s[2:4])
        phase = self.s[4] + 2 * np.pi * freq * np.arange(1, SR // FPS + 1) / SR
        self.audio = (0.3 * np.sin(phase)).astype(np.float32)
        self.s[4] = phase[-1] % (2 * np.pi)
        return self._obs(), float(-np.hypot(self.s[0] - 8, self.s[1] - 8)), False

    def get_state(self) -> dict:
        return {"s": self.s.copy(), "touch": self.touch.copy(), "audio": self.audio.copy()}

    def set_state(self, state: dict) -> None:
        self.s, self.touch, self.audio = state["s"].copy(), state["touch"].copy(), state["audio"].copy()

    def state_from_gt(self, step: dict[str, np.ndarray]) -> dict:
        return {"s": np.asarray(step["gt.state"], float), "touch": np.asarray(step["observation.tactile.walls"]),
                "audio": np.asarray(step["observation.audio.mic"])}

    def policy(self, name, rng):
        return lambda obs: np.asarray(rng.integers(0, len(NAMES)), np.int64)

    def close(self) -> None:
        pass


register_world("servetoy", lambda arg, **kw: ToyWorld(), "test world for the play server")
register_world("servetoy-c", lambda arg, **kw: ToyWorld(continuous=True), "test world, continuous action")


def source_with_reality(continuous: bool = False) -> Source:
    """A source whose 'model' is a SimSession of the toy world and whose reality check is the toy world too.

    The Source contract is any Session; a model session is slow to train in a unit test, and the
    protocol and plumbing under test do not depend on what computes the step.
    """
    world = ToyWorld(continuous)
    return Source(world.spec, lambda: SimSession(lambda: ToyWorld(continuous), 1),
                  lambda i: world_context(ToyWorld(continuous), i, 3), num_contexts=8, context_length=3,
                  true_world=lambda: ToyWorld(continuous))


@pytest.fixture
def toy_source() -> Source:
    return Source.open(SourceConfig(world="servetoy"))


@pytest.fixture
def reality_source() -> Source:
    return source_with_reality()


@pytest.fixture
def toy_cls() -> type[ToyWorld]:
    """The toy world's class (test modules cannot import conftest under --import-mode=importlib)."""
    return ToyWorld


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A real run directory: the tiny preset trained for a few steps on bounce episodes (about 15 s).

    Play speed and the protocol do not depend on how well the model is trained.
    """
    from genworld.train.config import tiny
    from genworld.train.data import from_episodes
    from genworld.train.distributed import DistInfo
    from genworld.train.run import train_run
    from genworld.worlds.base import make_world

    world = make_world("bounce")
    rng = np.random.default_rng(0)
    episodes = []
    for e in range(5):
        policy, obs, rows = world.policy("random", rng), world.reset(e), []
        for _ in range(12):
            a = policy(obs)
            nxt, r, d = world.step(a)
            rows.append({**obs, "action": a, "next.reward": np.float32(r), "next.done": np.bool_(d)})
            obs = nxt
        episodes.append({k: np.stack([row[k] for row in rows]) for k in rows[0]})
    cfg = tiny(world.spec)
    t = cfg.train
    t.tok_steps, t.dyn_steps, t.val_episodes, t.batch_size, t.tok_batch_size, t.val_every = 2, 2, 1, 2, 4, 10**6
    run = tmp_path_factory.mktemp("tiny-run")
    train_run(cfg, from_episodes(world.spec, episodes), run, False, DistInfo(), progress=False)
    return run
