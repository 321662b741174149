"""Tabletop push: set-up, success from gt.bodies, costs from frames and from truth, the physics-only
simulator session, and planning end to end on the real MuJoCo world."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genworld.cli import main
from genworld.plan.goals import GoalError
from genworld.plan.planner import PlannerConfig
from genworld.plan.runner import run_episode, sim_session_for
from genworld.plan.tasks import TaskError, make_task
from genworld.rollout.sim import SimSessionError
from genworld.worlds import make_world

pytest.importorskip("mujoco", reason="tabletop needs mujoco (pip install 'genworld[mujoco]')")
pytestmark = pytest.mark.gl

U, V = 13, 14  # gt.bodies image columns


@pytest.fixture(scope="module")
def world():
    w = make_world("tabletop")
    yield w
    w.close()


def frame_step(obs: dict) -> dict:
    """A real observation as a one-future predicted step, with what a model predicts (no ground truth)."""
    return {k: obs[k][None] for k in ("observation.images.top", "observation.state")}


def test_setup_picks_a_block_and_a_reachable_target_on_the_table(world) -> None:
    task = make_task("push", "tabletop")
    half = world.spec.config["table_half"]
    for seed in range(10):
        ep = task.setup(world, seed)
        g = ep.obs["gt.bodies"]
        assert 1 <= ep.obj < len(g) and g[ep.obj, 16] == 1  # an object in play
        if any(g[k, 16] == 1 and g[k, 20] == 0 for k in range(1, len(g))):
            assert ep.info["shape"] == "block" and g[ep.obj, 20] == 0
        assert np.all(np.abs(ep.target) <= half - g[ep.obj, 21] - 0.01 + 1e-6)
        d = np.linalg.norm(g[ep.obj, :2] - ep.target)
        assert task.min_dist - 1e-5 <= d <= task.max_dist + 1e-5
        assert not task.success(ep, ep.obs)
        assert ep.radius == task.region
    a, b = task.setup(world, 3), task.setup(world, 3)
    assert a.obj == b.obj and np.array_equal(a.target, b.target)  # per seed


def test_camera_model_matches_the_world_and_inverts(world) -> None:
    task = make_task("push", "tabletop")
    ep = task.setup(world, 2)
    cam, g = ep.info["camera"], ep.obs["gt.bodies"]
    present = g[:, 16] == 1
    np.testing.assert_allclose(cam.project(g[present, :3]), g[present][:, [U, V]], atol=1e-3)
    back = cam.unproject(g[present][:, [U, V]], float(g[ep.obj, 2]))
    np.testing.assert_allclose(back[list(np.flatnonzero(present)).index(ep.obj)], g[ep.obj, :2], atol=1e-4)


def test_success_follows_ground_truth_and_both_costs_fall_as_the_block_nears_the_target(world) -> None:
    task = make_task("push", "tabletop")
    truth = make_task("push", "tabletop", cost_from="gt")
    ep = task.setup(world, 0)
    obs = ep.obs
    far = task.cost(world, ep, obs)(frame_step(obs), 0, None)[0]
    far_gt = truth.cost(world, ep, obs)({"gt.bodies": obs["gt.bodies"][None]}, 0, None)[0]
    # the block read from the real frame is where ground truth has it (within a centimetre)
    xy = task.cost(world, ep, obs).obj.start
    assert np.linalg.norm(xy - obs["gt.bodies"][ep.obj, :2]) < 0.01
    # move the block onto the target by editing the ground truth the world is rebuilt from
    g = obs["gt.bodies"].copy()
    g[ep.obj, :2] = ep.target
    g[:, 7:13] = 0.0  # at rest
    world.set_state(world.state_from_gt({"gt.bodies": g}))
    obs, _, _ = world.step(np.zeros(2, np.float32))
    assert task.success(ep, obs)
    near = task.cost(world, ep, obs)(frame_step(obs), 0, None)[0]
    near_gt = truth.cost(world, ep, obs)({"gt.bodies": obs["gt.bodies"][None]}, 0, None)[0]
    assert near < far and near_gt < far_gt
    # a far-off block fails
    g[ep.obj, :2] = ep.target + np.array([2.5 * task.region, 0.0], np.float32)
    world.set_state(world.state_from_gt({"gt.bodies": g}))
    obs, _, _ = world.step(np.zeros(2, np.float32))
    assert not task.success(ep, obs)


def test_costs_refuse_steps_without_what_they_read(world) -> None:
    task = make_task("push", "tabletop")
    ep = task.setup(world, 1)
    with pytest.raises(GoalError, match="observation.images.top"):
        task.cost(world, ep, ep.obs)({"gt.positions": np.zeros((1, 5, 3))}, 0, None)
    with pytest.raises(GoalError, match="gt.positions"):
        make_task("push", "tabletop", cost_from="gt").cost(world, ep, ep.obs)(frame_step(ep.obs), 0, None)
    with pytest.raises(TaskError, match="cost_from 'pixels'"):
        make_task("push", "tabletop", cost_from="pixels").setup(world, 0)
    with pytest.raises(TaskError, match="'touch' does not exist for world 'tabletop'"):
        make_task("touch", "tabletop")
    bounce = make_world("bounce")
    with pytest.raises(TaskError, match="tabletop"):
        make_task("push", "tabletop").setup(bounce, 0)
    bounce.close()


def test_physics_session_steps_exactly_like_the_world_and_rewinds(world) -> None:
    world.reset(5)
    sess = sim_session_for(world)
    start = world.get_state()
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (6, 2)).astype(np.float32)
    for a in acts:
        pred = sess.step(a[None])
        obs, _, _ = world.step(a)
        assert np.array_equal(pred["gt.positions"][0, :, :2], obs["gt.bodies"][:, :2])
        assert np.array_equal(pred["observation.state"][0], obs["observation.state"])
    # branch 3 futures from the start, the middle one with the same actions: it ends where the world is
    sess.restore([start])
    snap = sess.snapshot()
    sess.expand(3)
    batch = np.stack([-acts, acts, np.zeros_like(acts)], 1)  # (T, 3, 2)
    for a in batch:
        out = sess.step(a)
    assert sess.batch_size == 3
    assert np.array_equal(out["gt.positions"][1, :, :2], obs["gt.bodies"][:, :2])
    assert not np.array_equal(out["gt.positions"][0], out["gt.positions"][1])
    sess.restore(snap)
    assert sess.batch_size == 1
    with pytest.raises(SimSessionError, match=r"\(1, 2\)"):
        sess.step(np.zeros((2, 2)))
    with pytest.raises(SimSessionError, match="restore"):
        sess.reset({})


def test_list_and_a_tiny_plan_run_on_tabletop(tmp_path, capsys) -> None:
    assert main(["plan", "--world", "tabletop", "--list"]) == 0
    assert "tasks for world 'tabletop': push" in capsys.readouterr().out
    out = tmp_path / "plan"
    status = main(["plan", "--world", "tabletop", "--task", "push", "--episodes", "1", "--steps", "4",
                   "--budget", "6,1,3", "--modes", "sim,random", "--videos", "1", "--out", str(out)])
    assert status == 0
    rep = json.loads((out / "plan.json").read_text())
    assert rep["world"] == "tabletop" and rep["steps_per_episode"] == 4
    assert rep["ceiling"]["control_steps"] <= 4 and rep["ceiling"]["seconds_per_step"] > 0
    assert "TabletopPhysics" in rep["ceiling_cost_from"]
    assert (out / "plan.mp4").stat().st_size > 1000


def test_planning_in_the_simulator_pushes_the_block_where_random_actions_do_not(world) -> None:
    task = make_task("push", "tabletop", cost_from="gt")
    world.reset(0)
    sess = sim_session_for(world)
    planned = run_episode(task, world, 0, "sim", sess, PlannerConfig(samples=24, iterations=2, horizon=10))
    rand = run_episode(task, world, 0, "random")
    assert planned.success and planned.steps < task.steps
    assert not rand.success


def test_model_planning_runs_on_tabletop_with_costs_from_predicted_frames(world) -> None:
    import torch

    from genworld.models import WorldModel
    from genworld.rollout.session import WorldSession
    from genworld.train.config import tiny

    torch.manual_seed(0)
    session = WorldSession(WorldModel(tiny(world.spec).model))  # untrained: the protocol only
    task = make_task("push", "tabletop", steps=2)
    r = run_episode(task, world, 0, "model", session, PlannerConfig(samples=4, iterations=1, horizon=2))
    assert r.steps == 2 and r.plan_seconds > 0
    assert session.batch_size == 1
