"""Tabletop parts of the report that re-simulate or edit ground truth (evaluate/tabletop_sim.py).

* controllability: the MuJoCo world rebuilt from GT bodies reproduces the recorded frames under the true
  actions and changes under others; a session that is that world scores ratio 1 and direction 1, copy-last 0;
* constant velocity: a rebuilt state renders as the recorded frame, the bodies move by v / fps per step,
  and one step ahead it is closer to the truth than copy-last;
* surprise: the impossible clip equals the possible one before the event and differs only around the edited
  body after it; the simulator (which knows the real state) finds every impossible clip more surprising.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from genworld.evaluate import surprise as S
from genworld.evaluate.baselines import CopyLastSession
from genworld.evaluate.config import EvalConfig
from genworld.evaluate.controllability import alternative_actions, change, direction, model_sensitivity
from genworld.evaluate.episodes import collect
from genworld.evaluate.rollout import open_loop, truth

pytest.importorskip("mujoco", reason="tabletop needs mujoco (pip install 'genworld[mujoco]')")
pytestmark = pytest.mark.gl

from genworld.evaluate import tabletop_sim as T  # noqa: E402

V = "observation.images.top"
C = 4


@pytest.fixture(scope="module")
def data() -> tuple[Any, list[dict[str, np.ndarray]], Any]:
    """(spec, 4 episodes of 24 steps, a world rebuilt for the spec)."""
    spec, eps = collect("tabletop", 4, 24, seed=7, policy="mixed")
    world = T.world_for(spec)
    yield spec, eps, world
    world.close()


class SimSession(CopyLastSession):
    """The MuJoCo world as a Session: each row rebuilt from the context's last gt.bodies, then stepped."""

    def __init__(self, spec: Any, world: Any) -> None:
        super().__init__(spec)
        self.world, self.states = world, []

    def reset(self, context: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.states = [self.world.state_from_gt({"gt.bodies": b}) for b in context["gt.bodies"][:, -1]]
        return super().reset(context)

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]:
        frames = []
        for j, a in enumerate(action):
            self.world.set_state(self.states[j])
            frames.append(self.world.step(a)[0][V])
            self.states[j] = self.world.get_state()
        return {V: np.stack(frames)}

    def snapshot(self) -> Any:
        return copy.deepcopy(self.states)

    def restore(self, snap: Any) -> None:
        self.states = copy.deepcopy(snap)


def test_controllability_of_the_world_against_itself(data) -> None:
    spec, eps, world = data
    steps = 8
    acts = np.stack([ep[spec.action.key][C - 1: C - 1 + steps] for ep in eps])
    alt = alternative_actions(acts, spec.action, np.random.default_rng(1))
    g_true, g_alt = T.sim_rollouts(world, eps, C, steps, alt, V)
    recorded = np.stack([ep[V][C: C + steps] for ep in eps])
    g = change(g_true, g_alt)
    # rebuilt from gt.bodies, the world replays the recorded episode (contact history aside) far more closely
    # than it follows other actions
    assert g > 0.002 and change(g_true, recorded) < 0.1 * g, (g, change(g_true, recorded))
    same_true, same_alt = T.sim_rollouts(world, eps, C, steps, acts, V)
    assert change(same_true, same_alt) == 0.0  # the same actions twice: the same frames

    sim = SimSession(spec, world)
    m_true = open_loop(sim, eps, C, steps)[V]
    np.testing.assert_array_equal(m_true, g_true)
    m, m_alt = model_sensitivity(sim, eps, C, steps, alt, V, m_true)
    assert m / g == pytest.approx(1.0, abs=1e-6)
    assert direction(m_true, m_alt, g_true, g_alt) == pytest.approx(1.0, abs=1e-6)
    blind, _ = model_sensitivity(CopyLastSession(spec), eps, C, steps, alt, V)
    assert blind == 0.0


def test_constant_velocity_moves_bodies_and_renders_them(data) -> None:
    spec, eps, world = data
    b = eps[0]["gt.bodies"][C - 1]
    # a state rebuilt from one step's GT bodies draws that step's frame
    rebuilt = world.state_from_gt({"gt.bodies": b})["obs"][V]
    assert change(rebuilt, eps[0][V][C - 1]) < 1e-3, change(rebuilt, eps[0][V][C - 1])
    sess = T.ConstantVelocitySession(spec, world)
    sess.reset({k: np.stack([ep[k][:C] for ep in eps]) for k in eps[0]})
    out = sess.step(np.zeros((len(eps), 2), np.float32))
    np.testing.assert_allclose(sess.state[0, :, :3], b[:, :3] + b[:, 7:10] / spec.fps, atol=1e-5)
    moved = b[0, [0, 1, 7, 8]] + np.r_[b[0, 7:9] / spec.fps, 0, 0]
    np.testing.assert_allclose(out["observation.state"][0], moved, atol=1e-6)
    moving = np.abs(np.stack([ep["gt.bodies"][C - 1, :, 7:9] for ep in eps])).max() > 0.05
    assert moving
    H = 6
    cv = open_loop(T.ConstantVelocitySession(spec, world), eps, C, H)[V]
    cl = open_loop(CopyLastSession(spec), eps, C, H)[V]
    gt = truth(eps, C, H)[V]
    assert change(cv[:, 0], gt[:, 0]) < change(cl[:, 0], gt[:, 0]), (change(cv[:, 0], gt[:, 0]),
                                                                     change(cl[:, 0], gt[:, 0]))
    assert change(cv, cl) > 0  # it is not copy-last


def test_surprise_pairs_differ_only_after_the_event_and_around_the_body(data) -> None:
    spec, eps, world = data
    cfg = EvalConfig(context=C, surprise_pairs=3, surprise_steps=8)
    pairs, missing = T.make_pairs(eps, spec.config, cfg, V, np.random.default_rng(0), world)
    # 3 pairs of each edit; these episodes hold 2 rim hits after free motion
    assert not missing and {p.kind for p in pairs} == set(T.KINDS) and len(pairs) == 11
    e = C + S.EVENT
    for p in pairs:
        seg = eps[p.episode]["gt.segmentation"][p.start: p.start + len(p.possible)]
        np.testing.assert_array_equal(p.possible, eps[p.episode][V][p.start: p.start + len(p.possible)])
        np.testing.assert_array_equal(p.possible[:e], p.impossible[:e])
        diff = np.abs(p.possible.astype(int) - p.impossible.astype(int)).max(-1) > 0  # (L, S, S)
        assert diff[e:].any((1, 2)).all(), p.kind  # every frame from the event on is edited
        own = np.stack([T.body_mask(s, p.obj + 1) for s in seg[e:]])
        if p.kind in ("vanish", "recolour"):
            assert not (diff[e:] & ~own).any(), p.kind  # nothing outside the body (and its rim) changes
        elif p.kind == "wall":  # the real object bounces off the rim: the impossible one moves on outwards
            real = eps[p.episode]["gt.bodies"][p.start + e - 1, p.obj]
            assert np.abs(real[:2]).max() > spec.config["table_half"] - 0.1 and np.hypot(*real[7:9]) > 0
        else:
            assert (diff[e:] & ~own).any() and (diff[e:] & own).any()  # gone from its place, drawn elsewhere
    clips = [T.clip_steps(f, eps[p.episode], p.start, V) for p in pairs for f in (p.possible, p.impossible)]
    sim = S.accuracy(pairs, T.sim_errors(clips, C, V, world))
    assert sim["accuracy"] == 1.0, sim  # the simulator (which knows the real state) is surprised by each one
    no_wall, why = T.make_pairs(eps, spec.config, cfg, V, np.random.default_rng(0))  # no world: no wall pairs
    assert "wall" in why and all(p.kind != "wall" for p in no_wall)
    # a predictor that never sees the frames cannot tell the clips apart: every pair a tie
    blind = np.tile(np.arange(cfg.surprise_steps, dtype=float), (len(clips), 1))
    assert S.accuracy(pairs, blind)["accuracy"] == 0.5


def test_world_for_refuses_another_camera(data) -> None:
    from genworld.spec import WorldSpec

    spec, _, _ = data
    cam = dict(spec.config["camera"], fovy=spec.config["camera"]["fovy"] + 5)
    other = WorldSpec(spec.name, spec.fps, spec.modalities, spec.description, {**spec.config, "camera": cam})
    with pytest.raises(ValueError, match="camera"):
        T.world_for(other)


@pytest.mark.slow
def test_tabletop_sim_large() -> None:
    """The figures quoted in docs/evaluation.md: 16 episodes of 48 steps (seed 11), 8 surprise pairs per kind."""
    import json

    from genworld.evaluate.frames import psnr

    spec, eps = collect("tabletop", 16, 48, seed=11, policy="mixed")
    world = T.world_for(spec)
    steps = 8
    acts = np.stack([ep[spec.action.key][C - 1: C - 1 + steps] for ep in eps])
    alt = alternative_actions(acts, spec.action, np.random.default_rng(1))
    g_true, g_alt = T.sim_rollouts(world, eps, C, steps, alt, V)
    recorded = np.stack([ep[V][C: C + steps] for ep in eps])
    ctrl = {"gt_change": change(g_true, g_alt), "replay_change": change(g_true, recorded),
            "replay_psnr_mean": float(psnr(g_true, recorded).mean())}
    H = 16
    gt = truth(eps, C, H)[V]
    curves = {n: psnr(open_loop(s, eps, C, H)[V], gt).mean(0) for n, s in
              (("const_velocity", T.ConstantVelocitySession(spec, world)), ("copy_last", CopyLastSession(spec)))}
    cfg = EvalConfig(context=C, surprise_pairs=8, surprise_steps=8)
    pairs, missing = T.make_pairs(eps, spec.config, cfg, V, np.random.default_rng(0), world)
    clips = [T.clip_steps(f, eps[p.episode], p.start, V) for p in pairs for f in (p.possible, p.impossible)]
    sim = S.accuracy(pairs, T.sim_errors(clips, C, V, world))
    cl = S.accuracy(pairs, S.teacher_forced_errors(CopyLastSession(spec), clips, C, V))
    world.close()
    print("\ncontrollability:", json.dumps(ctrl))
    print("psnr h=1,8,16:", json.dumps({n: [round(float(c[h]), 2) for h in (0, 7, 15)] for n, c in curves.items()}))
    print("surprise simulator:", json.dumps(sim), "\nsurprise copy-last:", json.dumps(cl), "missing:", missing)
    assert ctrl["replay_change"] < 0.1 * ctrl["gt_change"], ctrl
    assert curves["const_velocity"][0] > curves["copy_last"][0]
    assert len(pairs) >= 25 and not missing and sim["accuracy"] == 1.0, sim
