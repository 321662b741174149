"""Long bounce runs (marked slow): physics invariants over many seeds, configs and thousands of steps."""

from __future__ import annotations

import numpy as np
import pytest

from genworld.worlds import make_world

CONFIGS = [
    ("bounce", {"n_objects": 5}),
    ("bounce", {"n_objects": 5, "occluder": True, "action_mode": "discrete"}),
    ("bounce", {"n_objects": 4, "restitution": 1.0, "friction": 0.0, "drag": 0.0}),
    ("bounce-gravity", {"n_objects": 5}),
    ("bounce-gravity", {"n_objects": 3, "restitution": 1.0, "friction": 0.0}),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,overrides", CONFIGS)
def test_long_runs_keep_discs_apart_inside_and_finite(name: str, overrides: dict) -> None:
    world = make_world(name, **overrides)
    size = world.cfg.image_size
    worst = 0.0
    for seed in range(4):
        obs = world.reset(seed)
        policy = world.policy("mixed", np.random.default_rng(seed))
        for _ in range(2500):
            obs, _, _ = world.step(policy(obs))
            g = obs["gt.objects"][obs["gt.objects"][:, 8] > 0]
            assert np.isfinite(g).all()
            p, r = g[:, :2], g[:, 4]
            dist = np.hypot(*(p[:, None] - p[None]).transpose(2, 0, 1))
            worst = max(worst, float((r[:, None] + r[None] - dist)[np.triu_indices(len(g), 1)].max()))
            assert (p - r[:, None] >= -1e-3).all() and (p + r[:, None] <= size + 1e-3).all()
            speed = np.hypot(g[:, 2], g[:, 3])
            assert speed[0] <= world.cfg.max_speed + 1e-4 and speed.max() <= world.cfg.speed_limit + 1e-4
            assert np.abs(obs["observation.audio.mic"]).max() <= 1.0
    assert worst < 0.1, f"{name} {overrides}: discs overlapped by {worst:.3f} px"


@pytest.mark.slow
def test_energy_never_grows_over_many_seeds() -> None:
    world = make_world("bounce", restitution=1.0, friction=0.0, drag=0.0, n_objects=5, init_speed=3.0)
    for seed in range(10):
        world.reset(seed)
        b = world.bodies
        e0 = float(0.5 * (b.mass * (b.vel**2).sum(1)).sum())
        for _ in range(3000):
            world.step(np.zeros(2, np.float32))
            e = float(0.5 * (b.mass * (b.vel**2).sum(1)).sum())
            assert e <= e0 * (1 + 1e-9), f"seed {seed}: energy grew from {e0} to {e}"
