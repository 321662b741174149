"""SimSession: B copies of a rewindable world behind the Session protocol."""

from __future__ import annotations

import numpy as np
import pytest

from genworld.rollout.base import Session
from genworld.rollout.sim import SimSession, SimSessionError
from genworld.spec import Modality, WorldSpec


class PointWorld:
    """A 1-D point mass with friction: small, exact and rewindable (the protocol, not a mock)."""

    spec = WorldSpec(
        name="point",
        fps=10,
        modalities=(
            Modality("observation.state", "proprio", (2,), 10),
            Modality("gt.pos", "gt", (2,), 10),
            Modality("action", "action", (1,), 10, low=-1, high=1),
        ),
    )

    def __init__(self, rebuild: bool = True) -> None:
        self.x = np.zeros(2, np.float64)
        self.rng = np.random.default_rng(0)
        if not rebuild:
            self.state_from_gt = None

    def _obs(self) -> dict[str, np.ndarray]:
        return {"observation.state": self.x.astype(np.float32), "gt.pos": self.x.astype(np.float32)}

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        self.rng = np.random.default_rng(seed)
        self.x = np.array([self.rng.uniform(-1, 1), 0.0])
        return self._obs()

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool]:
        v = 0.9 * self.x[1] + 0.1 * float(action[0]) + 0.01 * self.rng.standard_normal()
        self.x = np.array([self.x[0] + v, v])
        return self._obs(), -abs(self.x[0]), False

    def get_state(self) -> dict:
        return {"x": self.x.copy(), "rng": self.rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self.x = state["x"].copy()
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]

    def state_from_gt(self, step: dict[str, np.ndarray]) -> dict:
        return {"x": np.asarray(step["gt.pos"], np.float64), "rng": np.random.default_rng(0).bit_generator.state}

    def policy(self, name, rng):
        return lambda obs: rng.uniform(-1, 1, size=(1,)).astype(np.float32)

    def close(self) -> None:
        pass


def test_is_a_session_and_steps_a_batch() -> None:
    s = SimSession(PointWorld, batch_size=3, seed=1)
    assert isinstance(s, Session) and s.batch_size == 3
    out = s.step(np.array([[1.0], [0.0], [-1.0]], np.float32))
    assert out["observation.state"].shape == (3, 2) and out["next.reward"].shape == (3,)
    assert out["next.done"].dtype == bool
    # the same start, different actions: the positions are ordered like the actions
    x = out["gt.pos"][:, 0]
    assert x[0] > x[1] > x[2]


def test_snapshot_restore_replays_exactly_and_expand_repeats_each_future() -> None:
    s = SimSession(PointWorld, batch_size=2, seed=3)
    s.step(np.array([[1.0], [-1.0]], np.float32))
    snap = s.snapshot()
    acts = np.array([[0.5], [0.2]], np.float32)
    a = s.step(acts)["gt.pos"]
    s.restore(snap)
    b = s.step(acts)["gt.pos"]
    np.testing.assert_array_equal(a, b)  # noise included: the rng is part of the state

    s.restore(snap)
    s.expand(3)
    assert s.batch_size == 6
    c = s.step(np.repeat(acts, 3, axis=0))["gt.pos"]
    np.testing.assert_array_equal(c, np.repeat(a, 3, axis=0))
    s.restore(snap)  # back to B=2 from B=6
    assert s.batch_size == 2


def test_from_state_and_reset_from_ground_truth() -> None:
    real = PointWorld()
    real.reset(7)
    real.step(np.array([1.0]))
    s = SimSession.from_state(PointWorld, real.get_state(), batch_size=4)
    np.testing.assert_array_equal(s.step(np.zeros((4, 1), np.float32))["gt.pos"][0],
                                  real.step(np.zeros(1))[0]["gt.pos"])

    ctx = {"gt.pos": np.array([[[0.0, 0.0], [0.3, 0.1]]], np.float32),
           "observation.state": np.zeros((1, 2, 2), np.float32), "action": np.zeros((1, 2, 1), np.float32)}
    last = s.reset(ctx)
    assert s.batch_size == 1 and last["gt.pos"].shape == (1, 2)
    x = s.step(np.zeros((1, 1), np.float32))["gt.pos"][0, 0]
    assert abs(x - (0.3 + 0.09)) < 0.05  # moved on from the rebuilt position with its velocity


def test_clear_errors() -> None:
    s = SimSession(lambda: PointWorld(rebuild=False), batch_size=2)
    with pytest.raises(SimSessionError, match="action shape"):
        s.step(np.zeros((3, 1), np.float32))
    with pytest.raises(SimSessionError, match="state_from_gt"):
        s.reset({"gt.pos": np.zeros((2, 1, 2), np.float32)})
    with pytest.raises(SimSessionError, match="n must be"):
        s.expand(0)
    with pytest.raises(SimSessionError, match="batch_size"):
        SimSession(PointWorld, batch_size=0)

    class NoRewind(PointWorld):
        get_state = None

    with pytest.raises(SimSessionError, match="get_state"):
        SimSession(NoRewind)


def test_bounce_branches_replay_the_real_world() -> None:
    from genworld.worlds import make_world

    real = make_world("bounce")
    real.reset(0)
    s = SimSession.from_state(lambda: make_world("bounce"), real.get_state(), batch_size=1)
    s.expand(4)
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, size=(5, 4, 2)).astype(np.float32)
    snap = s.snapshot()
    for t in range(5):
        out = s.step(acts[t])
        obs, _, _ = real.step(acts[t, 2])
    key = next(m.key for m in real.spec.of_kind("video"))
    np.testing.assert_array_equal(out[key][2], obs[key])
    np.testing.assert_allclose(out["gt.objects"][2], obs["gt.objects"], atol=1e-5)
    s.restore(snap)
    assert s.batch_size == 4
