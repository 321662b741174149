"""Planning time per control step on bounce push, for each budget (samples, iterations, horizon),
inside the true simulator (SimSession) and inside the tiny model (WorldSession; untrained weights
cost the same time as trained ones). Medians over control steps, replanning every step."""

from __future__ import annotations

import time

import numpy as np

BUDGETS = ((16, 2, 6), (32, 2, 8), (64, 3, 8))


def _per_step(task, world, mode, session, budget, steps: int) -> float:
    """Median seconds to choose one action."""
    from genworld.plan.planner import Planner, PlannerConfig
    from genworld.plan.rollout import BatchEvaluator
    from genworld.plan.runner import _context

    s, i, h = budget
    planner = Planner(PlannerConfig(samples=s, iterations=i, horizon=h), world.spec.action)
    ep = task.setup(world, 0)
    obs, neutral = ep.obs, np.zeros(2, np.float32)
    if mode == "model":
        session.reset(_context([obs] * 4, [neutral] * 4, "action"))
    times = []
    for _ in range(steps):
        if mode == "sim":
            session.restore([world.get_state()])
        t0 = time.perf_counter()
        a = planner.act(BatchEvaluator(session, task.cost(world, ep, obs)))
        times.append(time.perf_counter() - t0)
        if mode == "model":
            session.step(a[None])
        obs, _, _ = world.step(a)
        if mode == "model":
            session.observe({k: v[None] for k, v in obs.items()})
    return float(np.median(times))


def run(quick: bool) -> dict:
    import torch

    from genworld.models import WorldModel
    from genworld.plan.runner import sim_session_for
    from genworld.plan.tasks import make_task
    from genworld.rollout.session import WorldSession
    from genworld.train.config import tiny
    from genworld.worlds import make_world

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as `genworld plan --threads 1`: 2 threads on 2 shared cores oversubscribe (5-40x slower)
    world = make_world("bounce")
    task = make_task("push", "bounce")
    world.reset(0)
    sim = sim_session_for(world)
    model = WorldSession(WorldModel(tiny(world.spec).model))
    steps = 3 if quick else 6
    out: dict = {"task": "bounce push", "torch_threads": torch.get_num_threads(),
                 "load_average_1min_at_start": round(__import__("os").getloadavg()[0], 2)}
    try:
        for b in BUDGETS:
            name = "x".join(map(str, b))
            out[f"sim_{name}_s_per_step_median"] = round(_per_step(task, world, "sim", sim, b, steps), 4)
            out[f"model_tiny_{name}_s_per_step_median"] = round(_per_step(task, world, "model", model, b, steps), 4)
    finally:
        torch.set_num_threads(threads)
    return out
