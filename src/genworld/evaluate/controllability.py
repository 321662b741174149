"""Controllability: how much a prediction changes under other actions, relative to how much the world does.

From the real context of each episode, the model is rolled `control_steps` steps with the true actions and
again with alternative actions (the true ones negated for continuous actions; another random choice for
discrete ones). Its action sensitivity is the mean absolute pixel difference (frames on [0, 1]) between the
two rollouts. The ground truth's sensitivity is the same quantity for the simulator, re-simulated from the
GT state of the last context step with the same two action sequences (bounce). ratio = model / ground truth:
a model that ignores actions scores 0, one that reacts as much as the world scores 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genworld.evaluate.rollout import open_loop


def alternative_actions(actions: np.ndarray, spec_action: Any, rng: np.random.Generator) -> np.ndarray:
    """Actions that differ from `actions` (N, T, *a): negated (continuous) or another random choice (discrete)."""
    if spec_action.discrete:
        shift = rng.integers(1, spec_action.n_choices, size=actions.shape)
        return ((actions + shift) % spec_action.n_choices).astype(actions.dtype)
    alt = -actions
    small = np.abs(actions).reshape(*actions.shape[:2], -1).max(-1) < 0.2  # near-zero pushes: push hard instead
    alt[small] = rng.uniform(-1, 1, alt[small].shape).astype(alt.dtype)
    lo = -np.inf if spec_action.low is None else spec_action.low
    hi = np.inf if spec_action.high is None else spec_action.high
    return np.clip(alt, lo, hi).astype(actions.dtype)


def change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute pixel difference of two uint8 frame stacks, on [0, 1]."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() / 255.0)


def model_sensitivity(session: Any, episodes: list[dict[str, np.ndarray]], context: int, steps: int,
                      alt: np.ndarray, video_key: str, true: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """(mean pixel change, frames under the alternative actions (N, steps, ...)); `alt` (N, steps, *a).

    `true`: the session's frames under the true actions (N, >= steps, ...) if already rolled out (a
    deterministic session gives the same ones again).
    """
    akey = session.spec.action.key
    true = open_loop(session, episodes, context, steps)[video_key] if true is None else true[:, :steps]
    changed = []
    for ep, a in zip(episodes, alt):
        e = dict(ep)
        act = ep[akey].copy()
        act[context - 1: context - 1 + steps] = a
        e[akey] = act
        changed.append(e)
    other = open_loop(session, changed, context, steps)[video_key]
    return change(true, other), other


def sim_rollouts(world: Any, episodes: list[dict[str, np.ndarray]], context: int, steps: int, alt: np.ndarray,
                 video_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Simulator frames (N, steps, ...) under the true and the alternative actions, from each GT state at C-1."""
    from genworld.worlds.bounce import state_from_gt

    akey = world.spec.action.key
    runs: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for ep, a in zip(episodes, alt):
        for j, acts in enumerate((ep[akey][context - 1: context - 1 + steps], a)):
            world.set_state(state_from_gt(ep["gt.objects"][context - 1], world.k, world.synth.n_modes))
            runs[j].append(np.stack([world.step(x)[0][video_key] for x in acts]))
    return np.stack(runs[0]), np.stack(runs[1])


def sim_sensitivity(world: Any, episodes: list[dict[str, np.ndarray]], context: int, steps: int,
                    alt: np.ndarray, video_key: str) -> float:
    """Mean pixel change of the simulator re-run from each episode's GT state at step C-1."""
    return change(*sim_rollouts(world, episodes, context, steps, alt, video_key))


def direction(model_true: np.ndarray, model_alt: np.ndarray, gt_true: np.ndarray, gt_alt: np.ndarray) -> float:
    """Mean over episodes of the cosine between the model's and the world's frame change (N, steps, ...).

    1 = the prediction changes where and how the world does; about 0 for changes unrelated to the world's
    (noise, or the right amount of change in the wrong place); 0 when either does not change.
    """
    N = len(model_true)
    dm = (model_true.astype(np.float32) - model_alt.astype(np.float32)).reshape(N, -1)
    dg = (gt_true.astype(np.float32) - gt_alt.astype(np.float32)).reshape(N, -1)
    norm = np.linalg.norm(dm, axis=1) * np.linalg.norm(dg, axis=1)
    cos = np.where(norm > 0, (dm * dg).sum(1) / np.maximum(norm, 1e-12), 0.0)
    return float(cos.mean())
