"""Planning inside a learned model's session: the protocol end to end, with an untrained tiny model
(its weights do not matter here: trained-model quality is the slow test's job)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genworld.plan.planner import PlannerConfig
from genworld.plan.runner import run_episode
from genworld.plan.tasks import make_task
from genworld.rollout.session import WorldSession
from genworld.worlds import make_world


@pytest.fixture(scope="module")
def setup():
    from genworld.models import WorldModel
    from genworld.train.config import tiny

    torch.manual_seed(0)
    world = make_world("bounce")
    return world, WorldSession(WorldModel(tiny(world.spec).model))


@pytest.mark.parametrize("task_name,goal_cost", [("push", "state"), ("reach", "latent")])
def test_model_planning_runs_and_leaves_one_future(setup, task_name, goal_cost) -> None:
    world, session = setup
    task = make_task(task_name, "bounce", steps=2, goal_cost=goal_cost)
    r = run_episode(task, world, 0, "model", session, PlannerConfig(samples=4, iterations=1, horizon=2))
    assert r.steps == 2 and r.plan_seconds > 0
    assert session.batch_size == 1  # planning restored the session; observe kept it on the real world
    assert np.isfinite(session.latent()).all()
