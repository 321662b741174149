"""Closed-loop control in the real world with actions planned inside a session (model or simulator).

Each control step: plan with the session at the current state (all candidates as one batch), apply
the first action in the real world, then bring the session back to reality (`observe` the real step
for a model; copy the real state for the simulator). Success is judged from the real world's ground
truth. `random` skips planning and acts uniformly at random: the floor.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from genworld.plan.planner import Planner, PlannerConfig, random_actions
from genworld.plan.rollout import BatchEvaluator
from genworld.plan.tasks import BounceTask
from genworld.rollout.base import Session
from genworld.rollout.sim import SimSession
from genworld.worlds.base import World


@dataclass
class EpisodeResult:
    """The outcome of one episode."""

    seed: int
    success: bool
    steps: int  # control steps taken (to success, or the whole budget)
    plan_seconds: float  # time spent choosing actions
    frames: list[np.ndarray] = field(default_factory=list)  # real frames with the goal drawn, when recorded


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a success rate."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarise(results: list[EpisodeResult]) -> dict:
    """Success rate with its Wilson CI, steps to success and planning seconds per control step."""
    n = len(results)
    wins = [r for r in results if r.success]
    lo, hi = wilson(len(wins), n)
    steps = sum(r.steps for r in results)
    return {
        "episodes": n,
        "successes": len(wins),
        "success_rate": len(wins) / n if n else 0.0,
        "success_ci95": [round(lo, 4), round(hi, 4)],
        "steps_to_success_median": float(np.median([r.steps for r in wins])) if wins else None,
        "steps_to_success_mean": float(np.mean([r.steps for r in wins])) if wins else None,
        "seconds_per_step": sum(r.plan_seconds for r in results) / max(steps, 1),
        "control_steps": steps,
    }


def _context(steps: list[dict[str, np.ndarray]], actions: list[np.ndarray], action_key: str) -> dict:
    """`{key: (1, C, *shape)}` from C real steps and their actions (the last one is unused)."""
    ctx = {k: np.stack([s[k] for s in steps])[None] for k in steps[0]}
    ctx[action_key] = np.stack(actions)[None]
    return ctx


def run_episode(
    task: BounceTask,
    world: World,
    seed: int,
    mode: str,
    session: Session | None = None,
    planner_cfg: PlannerConfig | None = None,
    context: int = 4,
    record: bool = False,
) -> EpisodeResult:
    """One episode in `world`: `mode` is `model` (plan in `session`), `sim` (plan in a SimSession
    `session` synced to the real state every step) or `random`."""
    ep = task.setup(world, seed)
    spec, akey = world.spec, world.spec.action.key
    rng = np.random.default_rng(seed + 104729)
    neutral = np.zeros(spec.action.shape, spec.action.dtype)
    # C real steps of context with the neutral action, so a model knows where everything is and moves
    steps, acts = [ep.obs], [neutral]
    for _ in range(context - 1):
        obs, _, _ = world.step(neutral)
        steps.append(obs)
        acts.append(neutral)
    obs = steps[-1]
    planner = None
    if mode != "random":
        assert session is not None and planner_cfg is not None
        planner = Planner(planner_cfg, spec.action)
        if mode == "model":
            session.reset(_context(steps, acts, akey))
        else:
            session.restore([world.get_state()])
    key = next((m.key for m in spec.of_kind("video")), None)
    frames = [task.draw(ep, obs[key])] if record and key else []
    plan_s = 0.0
    for t in range(task.steps):
        t0 = time.perf_counter()
        if planner is None:
            action = random_actions(spec.action, rng)
        else:
            action = planner.act(BatchEvaluator(session, task.cost(world, ep, obs)))
        plan_s += time.perf_counter() - t0
        if mode == "model":
            session.step(np.asarray(action)[None])
        obs, _, _ = world.step(action)
        if mode == "model":
            session.observe({k: v[None] for k, v in obs.items()})
        elif mode == "sim":
            session.restore([world.get_state()])
        ep.info["gt_now"] = obs.get("gt.objects")
        if frames:
            frames.append(task.draw(ep, obs[key]))
        if task.success(ep, obs):
            return EpisodeResult(seed, True, t + 1, plan_s, frames)
    return EpisodeResult(seed, False, task.steps, plan_s, frames)


def run_mode(
    task: BounceTask,
    world: World,
    mode: str,
    episodes: int,
    seed: int,
    session: Session | None = None,
    planner_cfg: PlannerConfig | None = None,
    context: int = 4,
    record: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[EpisodeResult]:
    """`episodes` episodes with seeds seed, seed+1, ...; the first `record` keep their frames."""
    out = []
    for i in range(episodes):
        r = run_episode(task, world, seed + i, mode, session, planner_cfg, context, record=i < record)
        out.append(r)
        if progress:
            progress(f"{mode:<6} episode {i + 1}/{episodes}: {'success' if r.success else 'fail'} "
                     f"in {r.steps} steps, {r.plan_seconds / max(r.steps, 1):.3f} s/step")
    return out


def world_like(name: str, config: dict | None = None):  # -> World
    """The world `name`, with the scalar settings of `config` (a model's `spec.config`) where they differ
    from the defaults, so episodes run in the world the model was trained on."""
    from genworld.worlds.base import make_world

    world = make_world(name)
    if not config:
        return world
    default = world.spec.config
    scalar = (int, float, bool, str, type(None))
    over = {k: v for k, v in config.items()
            if k in default and isinstance(v, scalar) and isinstance(default[k], scalar) and v != default[k]}
    if config.get("occluder") and not default.get("occluder"):
        over["occluder"] = True  # bounce's spec.config holds the occluder's rectangle, its config a bool
    if not over:
        return world
    world.close()
    try:
        return make_world(name, **over)
    except (TypeError, ValueError) as e:
        raise ValueError(f"cannot rebuild world {name!r} with the run's settings {over}: {e}") from e


def sim_session_for(world: World) -> Session:
    """A SimSession over copies of `world` (same settings), started at its current state; for tabletop,
    its physics without rendering (`TabletopPhysics`: the tabletop task plans from true positions); a world
    with `physics_copy()` (drive) gives copies that skip drawing."""
    if world.spec.name == "tabletop":
        from genworld.plan.tabletop import TabletopPhysics

        return TabletopPhysics(world)
    fast = getattr(world, "physics_copy", None)  # a world may offer a copy that skips rendering
    if callable(fast):
        return SimSession.from_state(fast, world.get_state())
    name, config = world.spec.name, world.spec.config
    return SimSession.from_state(lambda: world_like(name, config), world.get_state())
