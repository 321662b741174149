"""`WorldSession`: the Session protocol on a (small, untrained) world model, and loading a trained run."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from genworld.models import WorldModel
from genworld.models.dynamics import DynamicsConfig
from genworld.rollout.base import Session
from genworld.rollout.session import WorldSession
from genworld.train.config import tiny
from genworld.train.synthetic import synthetic_episode, synthetic_spec


def make_session(discrete: bool = False, **kw) -> WorldSession:
    torch.manual_seed(0)
    cfg = tiny(synthetic_spec(size=32, samples=200, discrete_action=discrete)).model
    model = WorldModel(replace(cfg, dynamics=DynamicsConfig(dim=64, depth=2, heads=4, window=4)))
    return WorldSession(model, **kw)


def context(session: WorldSession, B: int = 2, C: int = 3) -> dict[str, np.ndarray]:
    eps = [synthetic_episode(session.spec, C, seed) for seed in range(B)]
    return {k: np.stack([e[k] for e in eps]) for k in eps[0]}


def actions(session: WorldSession, B: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if session.spec.action.discrete:
        return rng.integers(0, session.spec.action.n_choices, B)
    return rng.uniform(-1, 1, (B, 2)).astype(np.float32)


@pytest.mark.parametrize("discrete", [False, True])
def test_reset_and_step_follow_the_protocol(discrete: bool) -> None:
    s = make_session(discrete)
    assert isinstance(s, Session)
    ctx = context(s)
    last = s.reset(ctx)
    assert s.batch_size == 2
    assert np.array_equal(last["observation.images.top"], ctx["observation.images.top"][:, -1])
    out = s.step(actions(s, 2))
    assert out["observation.images.top"].shape == (2, 32, 32, 3) and out["observation.images.top"].dtype == np.uint8
    assert out["observation.audio.mic"].shape == (2, 200) and out["observation.audio.mic"].dtype == np.float32
    assert out["observation.tactile.ring"].shape == (2, 4)
    assert out["observation.state"].shape == (2, 4)
    assert out["next.reward"].shape == (2,) and out["next.done"].dtype == bool
    assert s.latent().shape == (2, 64)


def test_bad_actions_and_contexts_are_clear_errors() -> None:
    s = make_session()
    with pytest.raises(RuntimeError, match="before reset"):
        s.step(np.zeros((1, 2), np.float32))
    s.reset(context(s))
    with pytest.raises(ValueError, match=r"shape \(2, 3\), expected \(2, 2\)"):
        s.step(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        s.step(np.array([[0.0, np.nan], [0, 0]], np.float32))
    with pytest.raises(ValueError, match="outside"):
        s.step(np.array([[0.0, 1.5], [0, 0]], np.float32))
    bad = context(s)
    del bad["observation.state"]
    with pytest.raises(ValueError, match="missing key 'observation.state'"):
        s.reset(bad)
    d = make_session(discrete=True)
    d.reset(context(d))
    with pytest.raises(ValueError, match="integers in 0..4"):
        d.step(np.array([0, 5]))


def test_snapshot_restore_replays_the_same_sampled_future() -> None:
    s = make_session(temperature=1.0, top_k=4, seed=3)
    s.reset(context(s))
    snap = s.snapshot()
    first = [s.step(actions(s, 2, i)) for i in range(3)]
    s.restore(snap)
    again = [s.step(actions(s, 2, i)) for i in range(3)]
    for a, b in zip(first, again):
        for k in a:
            assert np.array_equal(a[k], b[k]), k


def test_expand_branches_every_future() -> None:
    s = make_session()
    s.reset(context(s, B=2))
    s.step(actions(s, 2))
    s.expand(3)
    assert s.batch_size == 6
    a = np.repeat(actions(s, 2, 1), 3, axis=0)
    out = s.step(a)
    frames = out["observation.images.top"]
    assert np.array_equal(frames[0], frames[2]) and np.array_equal(frames[3], frames[5])


def test_observe_replaces_the_prediction_with_reality() -> None:
    s = make_session()
    ctx = context(s, B=1, C=4)
    s.reset({k: v[:, :3] for k, v in ctx.items()})
    snap = s.snapshot()
    s.step(ctx["action"][:, 2])
    s.observe({k: ctx[k][:, 3] for k in s.obs_keys})
    observed = s.step(ctx["action"][:, 3])
    fresh = make_session()
    fresh.reset(ctx)  # the same four real steps as a context
    direct = fresh.step(ctx["action"][:, 3])
    for k in observed:
        assert np.allclose(observed[k], direct[k], atol=1e-4), k
    s.restore(snap)
    assert s.batch_size == 1


def test_free_running_rollout_of_600_steps_stays_bounded() -> None:
    s = make_session(temperature=1.0, seed=0)
    s.reset(context(s, B=1, C=3))
    rng = np.random.default_rng(0)
    for _ in range(600):
        out = s.step(rng.uniform(-1, 1, (1, 2)).astype(np.float32))
    assert s._cache[0][0].shape[2] == (s.window - 1) * s.model.tokens_per_step
    assert all(np.isfinite(v).all() for v in out.values() if v.dtype.kind == "f")
    assert np.abs(out["observation.audio.mic"]).max() <= 1.0 + 1e-6
