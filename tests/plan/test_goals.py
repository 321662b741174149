"""Goal costs read positions from frames; Wilson intervals; budgets and goal images are checked."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from genworld.plan.cli import parse_budget
from genworld.plan.goals import (
    GoalError,
    ObjectTracker,
    PixelGoalCost,
    ProprioTracker,
    PushCost,
    check_goal_image,
    palette_centroids,
)
from genworld.plan.runner import wilson
from genworld.plan.tasks import TaskError, make_task, tasks_for

RED, BLUE, BG = np.array([220, 40, 40]), np.array([40, 60, 220]), np.array([30, 30, 30])


def disc_frames(centres: list[tuple[float, float]], colour: np.ndarray, size: int = 64, r: float = 4.0):
    """(N, size, size, 3) frames with one disc each, centres in pixels (x right, y down)."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    out = np.broadcast_to(BG, (len(centres), size, size, 3)).astype(np.uint8).copy()
    for i, (x, y) in enumerate(centres):
        out[i][(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = colour
    return out


def test_palette_centroids_find_the_disc_and_notice_absence() -> None:
    frames = disc_frames([(10.0, 20.0), (40.5, 50.5)], RED)
    xy, seen = palette_centroids(frames, RED)
    np.testing.assert_allclose(xy, [[10.0, 20.0], [40.5, 50.5]], atol=0.3)
    assert seen.all()
    _, seen_blue = palette_centroids(frames, BLUE)
    assert not seen_blue.any()


def test_tracker_holds_the_last_position_of_a_hidden_object() -> None:
    tr = ObjectTracker("img", RED, np.array([5.0, 5.0]))
    frames = disc_frames([(10.0, 10.0), (30.0, 30.0)], RED)
    frames[1] = BG  # the second future lost the object
    xy, seen = tr({"img": frames}, 0)
    np.testing.assert_allclose(xy[1], [5.0, 5.0])
    assert seen.tolist() == [True, False]
    frames = disc_frames([(11.0, 10.0), (30.0, 30.0)], RED)
    frames[1] = BG  # still hidden in future 1
    xy, _ = tr({"img": frames}, 1)
    np.testing.assert_allclose(xy[0], [11.0, 10.0], atol=0.3)
    np.testing.assert_allclose(xy[1], [5.0, 5.0])


def test_push_cost_prefers_the_object_near_the_target_and_the_agent_behind_it() -> None:
    key, target = "img", np.array([50.0, 32.0])
    obj = disc_frames([(40.0, 32.0), (20.0, 32.0)], RED)
    agent_pos = [(33.0, 32.0), (13.0, 32.0)]
    frames = obj.copy()
    ag = disc_frames(agent_pos, BLUE, r=3)
    mask = (ag == BLUE).all(-1)
    frames[mask] = BLUE
    # approach points at the object read from each future's frame (the default anchors them at the observed one)
    cost = PushCost(ObjectTracker(key, RED, [30, 32]), ObjectTracker(key, BLUE, [25, 32]), target, 7.0, 64.0,
                    anchor="predicted")
    c = cost({key: frames}, 0, None)
    assert c[0] < c[1]
    # same object, the agent on the wrong side costs more
    frames2 = obj.copy()
    frames2[(disc_frames([(47.0, 32.0), (27.0, 32.0)], BLUE, r=3) == BLUE).all(-1)] = BLUE
    c2 = cost({key: frames2}, 0, None)
    assert (c2 > c).all()


def test_push_cost_leads_the_agent_behind_then_through_a_static_object() -> None:
    """A model that does not move the object still ranks agent paths: around to the far side, then into it."""
    key, target = "img", np.array([50.0, 32.0])
    obj = np.array([30.0, 32.0])
    cost = PushCost(ObjectTracker(key, RED, obj), ProprioTracker("state"), target, 8.0, 64.0)
    blank = np.broadcast_to(BG, (4, 64, 64, 3)).astype(np.uint8)  # the model draws no object: it stays put

    def c(*agents):
        return cost({key: blank[: len(agents)], "state": np.array([[x, y, 0, 0] for x, y in agents])}, 0, None)

    behind, beside, front = (18.0, 32.0), (30.0, 20.0), (42.0, 32.0)
    through = (24.0, 32.0)  # behind and in contact (R = 8), pushing toward the target
    order = c(through, behind, beside, front)
    assert order[0] < order[1] < order[2] < order[3], order
    # brushing the object from the side costs more than keeping clear of it
    assert c((30.0, 25.0))[0] > c((30.0, 18.0))[0]


def test_push_cost_wants_a_slow_arrival_and_keeps_the_first_version_on_request() -> None:
    key, target, obj = "img", np.array([50.0, 32.0]), np.array([30.0, 32.0])
    blank = np.broadcast_to(BG, (2, 64, 64, 3)).astype(np.uint8)
    cost = PushCost(ObjectTracker(key, RED, obj), ProprioTracker("state"), target, 8.0, 64.0)
    at_goal = [[20.0, 32.0, 0.5, 0.0], [20.0, 32.0, 4.0, 0.0]]  # on the stand-off point: slow vs full speed
    c = cost({key: blank, "state": np.array(at_goal)}, 0, None)
    assert c[0] < c[1]
    plain = PushCost(ObjectTracker(key, RED, obj), ProprioTracker("state"), target, 8.0, 64.0, staged=False)
    c = plain({key: blank, "state": np.array([[22.0, 32.0, 4.0, 0.0], [38.0, 32.0, 0.0, 0.0]])}, 0, None)
    assert c[0] == pytest.approx(0.3 * 0 / 64 + 20 / 64, abs=1e-6) and c[1] > c[0]


def test_proprio_tracker_reads_x_y_and_falls_back_to_frames() -> None:
    tr = ProprioTracker("state", ObjectTracker("img", RED, np.array([5.0, 5.0])))
    xy, seen = tr({"state": np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)}, 0)
    np.testing.assert_allclose(xy, [[1.0, 2.0]]) and seen.all()
    xy, _ = tr({"img": disc_frames([(10.0, 20.0)], RED)}, 0)
    np.testing.assert_allclose(xy, [[10.0, 20.0]], atol=0.3)
    with pytest.raises(GoalError, match="no 'state'"):
        ProprioTracker("state")({"img": disc_frames([(10.0, 20.0)], RED)}, 0)


def test_pixel_goal_is_zero_at_the_goal() -> None:
    frames = disc_frames([(10.0, 10.0), (30.0, 30.0)], RED)
    c = PixelGoalCost("img", frames[1])({"img": frames}, 0, None)
    assert c[1] == 0 and c[0] > 0


def test_goal_image_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(GoalError, match=r"shape \(32, 32, 3\).*\(64, 64, 3\)"):
        check_goal_image(np.zeros((32, 32, 3), np.uint8), (64, 64, 3))
    assert check_goal_image(np.ones((64, 64, 3), np.float32), (64, 64, 3)).dtype == np.uint8


def test_wilson_interval() -> None:
    lo, hi = wilson(10, 20)
    assert lo == pytest.approx(0.299, abs=1e-3) and hi == pytest.approx(0.701, abs=1e-3)
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0


def test_budget_and_task_errors() -> None:
    assert parse_budget("64,3,8") == (64, 3, 8)
    for bad in ("0,3,8", "64,3", "a,b,c"):
        with pytest.raises(argparse.ArgumentTypeError, match="budget"):
            parse_budget(bad)
    assert "push" in tasks_for("bounce")
    with pytest.raises(TaskError, match="does not exist for world 'arcade:Pong'"):
        make_task("push", "arcade:Pong")
