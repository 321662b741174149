"""World steps per second, one process (one core), rendering at 64x64 with every modality on.

For each world: reset, then time `steps` steps of its exploration policy (resetting whenever an
episode ends, inside the timing), `repeats` times; the figure is the median rate. The cost of one
reset is reported apart (arcade reloads its ROM on reset, so that the same seed gives the same sound).
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("MUJOCO_GL", "egl")

WORLDS = (
    ("tabletop", "seek"),
    ("arcade:Breakout", "sticky"),
    ("arcade:Pong", "sticky"),
    ("gym:CartPole-v1", "random"),
    ("gym:Pendulum-v1", "random"),
    ("drive:highway", "driver"),
    ("drive:parking", "sticky"),
    ("metaworld:push-v3", "expert"),
    ("metaworld:pick-place-v3", "expert"),
)


def _slug(name: str) -> str:
    return name.replace(":", "_").replace("-", "_").lower()


def run(quick: bool) -> dict:
    import numpy as np

    from genworld.worlds import make_world

    steps, repeats = (60, 3) if quick else (300, 5)
    out: dict = {"image_size": 64, "steps_per_repeat": steps, "repeats": repeats}
    for name, policy in WORLDS:
        try:
            world = make_world(name, image_size=64)
        except Exception as e:  # a missing extra or GL: report it, keep measuring the others
            out[f"{_slug(name)}_error"] = f"{type(e).__name__}: {e}"
            continue
        rates, resets = [], []
        for r in range(repeats):
            t0 = time.perf_counter()
            obs = world.reset(seed=r)
            resets.append(time.perf_counter() - t0)
            pol = world.policy(policy, np.random.default_rng(r))
            t0 = time.perf_counter()
            for i in range(steps):
                obs, _, done = world.step(pol(obs))
                if done:  # a finished episode would repeat its last frame for free: start another
                    obs = world.reset(seed=1000 * r + i)
            rates.append(steps / (time.perf_counter() - t0))
        world.close()
        out[f"{_slug(name)}_steps_per_s_median"] = round(statistics.median(rates), 1)
        out[f"{_slug(name)}_reset_ms_median"] = round(1e3 * statistics.median(resets), 1)
        out[f"{_slug(name)}_fps"] = world.spec.fps
    return out
