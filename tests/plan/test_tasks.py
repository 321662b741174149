"""Bounce tasks: set-up, success from ground truth, costs from frames, and planning in the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from genworld.plan.planner import PlannerConfig
from genworld.plan.runner import run_mode, sim_session_for
from genworld.plan.tasks import X, Y, make_task
from genworld.worlds import make_world


@pytest.fixture
def world():
    w = make_world("bounce")
    yield w
    w.close()


def test_push_setup_puts_the_target_inside_the_arena_and_away_from_the_object(world) -> None:
    task = make_task("push", "bounce")
    for seed in range(10):
        ep = task.setup(world, seed)
        gt = ep.obs["gt.objects"]
        assert 1 <= ep.obj < len(gt) and gt[ep.obj, 8] == 1
        assert np.all(ep.target > 0) and np.all(ep.target < 64)
        assert np.linalg.norm(gt[ep.obj, :2] - ep.target) >= 0.2 * 64 - 1e-3
        assert not task.success(ep, ep.obs)


def test_success_follows_ground_truth_and_cost_follows_the_frame(world) -> None:
    task = make_task("push", "bounce")
    ep = task.setup(world, 3)
    state = world.get_state()
    far = task.cost(world, ep, ep.obs)({"observation.images.top": ep.obs["observation.images.top"][None]}, 0, None)
    # move the object onto the target, by editing the world's state, and look again
    state["bodies"].pos[ep.obj] = ep.target
    state["bodies"].vel[:] = 0
    world.set_state(state)
    obs, _, _ = world.step(np.zeros(2, np.float32))
    assert task.success(ep, obs)
    near = task.cost(world, ep, obs)({"observation.images.top": obs["observation.images.top"][None]}, 0, None)
    assert near[0] < far[0]


def test_touch_needs_contact_held_for_hold_steps(world) -> None:
    task = make_task("touch", "bounce", hold=3)
    ep = task.setup(world, 1)
    gt = ep.obs["gt.objects"]
    state = world.get_state()
    b = state["bodies"]
    b.vel[:] = 0
    direction = (gt[ep.obj, :2] - gt[0, :2]) / np.linalg.norm(gt[ep.obj, :2] - gt[0, :2])
    b.pos[0] = gt[ep.obj, :2] - direction * (gt[0, 4] + gt[ep.obj, 4] + 0.3)  # nearly touching
    world.set_state(state)
    results = []
    for _ in range(3):
        obs, _, _ = world.step(np.clip(direction * 0.3, -1, 1).astype(np.float32))
        results.append(task.success(ep, obs))
    assert results == [False, False, True]
    assert obs["gt.objects"][ep.obj, X] != gt[ep.obj, X] or obs["gt.objects"][ep.obj, Y] != gt[ep.obj, Y]


def test_planning_in_the_simulator_touches_and_random_does_not(world) -> None:
    task = make_task("touch", "bounce", steps=30)
    cfg = PlannerConfig(samples=16, iterations=2, horizon=6, seed=0)
    world.reset(0)
    sim = sim_session_for(world)
    planned = run_mode(task, world, "sim", 2, seed=10, session=sim, planner_cfg=cfg)
    rand = run_mode(task, world, "random", 2, seed=10)
    assert all(r.success for r in planned), [r.steps for r in planned]
    assert not any(r.success for r in rand)
    assert all(r.plan_seconds > 0 for r in planned)


def test_reach_goal_image_shows_the_agent_at_the_target(world) -> None:
    from genworld.plan.goals import palette_centroids

    task = make_task("reach", "bounce")
    ep = task.setup(world, 4)
    goal = ep.info["goal_image"]
    agent_rgb = world.spec.config["palette"][world.spec.config["agent_colour_id"]]
    xy, seen = palette_centroids(goal[None], agent_rgb)
    assert seen[0] and np.linalg.norm(xy[0] - ep.target) < 0.5
    # the world was put back where it was
    np.testing.assert_array_equal(world.render(), ep.obs["observation.images.top"])
    # a given goal image defines the target by where it shows the agent
    given = make_task("reach", "bounce", goal_image=goal).setup(world, 5)
    assert np.linalg.norm(given.target - ep.target) < 0.5


def test_push_cost_choice(world) -> None:
    from genworld.plan.goals import ProprioTracker, PushCost
    from genworld.plan.tasks import TaskError

    ep = make_task("push", "bounce").setup(world, 2)
    staged = make_task("push", "bounce").cost(world, ep, ep.obs)
    assert isinstance(staged, PushCost) and staged.staged and isinstance(staged.agent, ProprioTracker)
    plain = make_task("push", "bounce", push_cost="behind").cost(world, ep, ep.obs)
    assert not plain.staged and not isinstance(plain.agent, ProprioTracker)
    with pytest.raises(TaskError, match="push cost 'sideways' unknown"):
        make_task("push", "bounce", push_cost="sideways").cost(world, ep, ep.obs)
