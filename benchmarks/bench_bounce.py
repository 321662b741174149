"""bounce: world steps per second on one core, 64x64 frames with sound, touch and ground truth.

`steps_per_s_median` times `world.step` alone (pre-drawn persistent actions, so the agent moves and
collides as in collected data); `steps_per_s_with_policy_median` adds the `seek` policy (contact-rich).
Each figure is the median over several runs of `STEPS` steps in this one process. `steps_per_cpu_s_*`
divide by the process's CPU time instead of wall-clock time: the per-core rate, unaffected by other
programs sharing the machine (the wall-clock figures are lower when the cores are busy).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

STEPS = 2000


def _actions(n: int, rng: np.random.Generator) -> np.ndarray:
    """Persistent random forces: held for 2..15 steps each. (n, 2) float32."""
    out, t = np.zeros((n, 2), np.float32), 0
    while t < n:
        hold = int(rng.integers(2, 16))
        out[t : t + hold] = rng.uniform(-1, 1, 2)
        t += hold
    return out


def _rate(name: str, seed: int, policy: str | None, **overrides: object) -> tuple[float, float, float]:
    """(steps per wall-clock second, steps per CPU second, fraction of steps with a contact) for one run."""
    from genworld.worlds import make_world

    world = make_world(name, **overrides)
    obs = world.reset(seed)
    acts = _actions(STEPS, np.random.default_rng(seed))
    pol = world.policy(policy, np.random.default_rng(seed)) if policy else None
    contacts = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for t in range(STEPS):
        obs, _, _ = world.step(pol(obs) if pol else acts[t])
        contacts += bool(obs["gt.contacts"].any())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return STEPS / wall, STEPS / cpu, contacts / STEPS


def run(quick: bool) -> dict:
    """Median steps/s of bounce (and bounce-gravity) over several runs."""
    reps = 3 if quick else 7
    plain = [_rate("bounce", s, None) for s in range(reps)]
    seek = [_rate("bounce", s, "seek") for s in range(reps)]
    five = [_rate("bounce", s, None, n_objects=5, occluder=True) for s in range(reps)]
    grav = [_rate("bounce-gravity", s, None) for s in range(reps)]
    med = lambda runs, i=0: round(statistics.median(r[i] for r in runs), 1)  # noqa: E731
    return {
        "steps_per_s_median": med(plain),
        "steps_per_cpu_s_median": med(plain, 1),
        "steps_per_s_with_policy_median": med(seek),
        "steps_per_cpu_s_with_policy_median": med(seek, 1),
        "steps_per_cpu_s_5_objects_occluder_median": med(five, 1),
        "steps_per_cpu_s_gravity_median": med(grav, 1),
        "contact_step_fraction_seek_median": round(statistics.median(r[2] for r in seek), 3),
        "steps_per_run": STEPS,
        "runs": reps,
        "image_size": 64,
        "sample_rate": 16000,
    }
