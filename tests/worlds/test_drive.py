"""drive:<scenario> on highway-env: modalities, ground truth against the simulator, touch and sound of a
crash, exact replay, planning tasks, errors."""

from __future__ import annotations

import numpy as np
import pytest

from genworld.worlds import make_world

pytest.importorskip("highway_env", reason="the drive world needs highway-env (pip install 'genworld[drive]')")

from genworld.worlds.drive import OBJECT_COLUMNS, PROPRIO, SCENARIOS, TAXELS, VEHICLE_COLUMNS  # noqa: E402

EXISTS, VISIBLE, CRASHED = (VEHICLE_COLUMNS.index(c) for c in ("exists", "visible", "crashed"))


def run(world, seed: int, actions) -> list[dict[str, np.ndarray]]:  # noqa: ANN001
    out = [world.reset(seed)]
    for a in actions:
        obs, _, _ = world.step(np.asarray(a, np.float32))
        out.append(obs)
    return out


@pytest.fixture(scope="module")
def highway():  # noqa: ANN201
    w = make_world("drive:highway")
    yield w
    w.close()


def test_every_scenario_steps_with_its_declared_modalities() -> None:
    for scenario in SCENARIOS:
        w = make_world(f"drive:{scenario}")
        spec = w.spec
        obs = w.reset(0)
        pol = w.policy("mixed", np.random.default_rng(0))
        for t in range(5):
            a = pol(obs)
            nxt, r, d = w.step(a)
            spec.check_step({**obs, "action": a, "next.reward": r, "next.done": d}, where=f"{scenario} step {t}")
            obs = nxt
        assert obs["observation.images.top"].std() > 5, scenario  # the road is drawn, not a blank frame
        assert spec["observation.tactile.bumper"].names == TAXELS and spec["observation.state"].names == PROPRIO
        w.close()


def test_ground_truth_matches_the_simulator_and_the_picture(highway) -> None:  # noqa: ANN001
    obs = run(highway, 3, [[0.2, 0.0, -1.0]] * 5)[-1]
    u = highway.env.unwrapped
    veh, obj = obs["gt.vehicles"], obs["gt.objects"]
    ego = u.vehicle
    assert veh[0, EXISTS] == 1 and veh[0, VEHICLE_COLUMNS.index("speed")] == pytest.approx(ego.speed, rel=1e-5)
    assert obs["observation.state"][PROPRIO.index("speed")] == pytest.approx(ego.speed, rel=1e-5)
    # The camera follows the ego: it sits at the image centre, and its segmentation label is under it.
    S = highway.spec["observation.images.top"].shape[0]
    x, y = obj[0, OBJECT_COLUMNS.index("x")], obj[0, OBJECT_COLUMNS.index("y")]
    assert abs(x - S / 2) < 2 and abs(y - S / 2) < 2
    seg = obs["gt.segmentation"]
    assert seg[int(y), int(x)] == 1
    # Every other visible vehicle's centre pixel carries its row's label, and its colour is its palette colour.
    palette = np.asarray(highway.spec.config["palette"])
    seen = 0
    for k in range(1, len(obj)):
        if obj[k, OBJECT_COLUMNS.index("visible")] < 0.5:
            continue
        cx, cy = int(obj[k, 0]), int(obj[k, 1])
        if 1 <= cx < S - 1 and 1 <= cy < S - 1:
            assert seg[cy, cx] == k + 1
            # At 64 px a car's pixels blend its colour with the road's: colour = a * own + (1 - a) * road.
            colour = obs["observation.images.top"][cy, cx].astype(float)
            own, road = palette[int(obj[k, OBJECT_COLUMNS.index("colour_id")])].astype(float), np.full(3, 100.0)
            a = np.clip((colour - road) @ (own - road) / ((own - road) @ (own - road)), 0, 1)
            assert a > 0.3 and np.abs(road + a * (own - road) - colour).max() < 30, (k, colour, own)
            seen += 1
    assert seen >= 1  # the highway has traffic in view


def test_a_crash_is_felt_on_the_front_bumper_and_heard(highway) -> None:  # noqa: ANN001
    for seed in range(6):  # full throttle, no steering: the ego runs into the car ahead
        steps = run(highway, seed, [[1.0, 0.0, -1.0]] * 80)
        crash = next((t for t, o in enumerate(steps) if o["gt.vehicles"][0, CRASHED] > 0.5), None)
        if crash is not None:
            break
    assert crash is not None, "no crash in 6 seeds of full throttle"
    o = steps[crash]
    assert o["observation.tactile.bumper"].max() > 0
    front = [TAXELS.index(n) for n in ("front", "front_left", "front_right")]
    assert o["observation.tactile.bumper"][front].max() > 0
    assert np.abs(o["observation.audio.car"]).max() > np.abs(steps[crash - 2]["observation.audio.car"]).max()
    assert o["gt.contacts"][0].max() > 0  # the ego's row of the contact table


def test_same_seed_same_data_and_exact_replay(highway) -> None:  # noqa: ANN001
    acts = [[0.5, 0.1 * np.sin(t), 1.0 if t == 3 else -1.0] for t in range(8)]
    a, b = run(highway, 11, acts), run(highway, 11, acts)
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)
    highway.reset(11)
    run_from = [highway.step(np.asarray(acts[i], np.float32))[0] for i in range(3)]
    state = highway.get_state()
    first = [highway.step(np.asarray(acts[i], np.float32))[0] for i in range(3, 8)]
    highway.set_state(state)
    again = [highway.step(np.asarray(acts[i], np.float32))[0] for i in range(3, 8)]
    assert run_from
    for x, y in zip(first, again):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def test_the_physics_copy_drives_the_same_way_without_drawing(highway) -> None:  # noqa: ANN001
    highway.reset(5)
    fast = highway.physics_copy()
    fast.reset(0)
    fast.set_state(highway.get_state())
    for t in range(4):
        a = np.array([0.3, 0.05, -1.0], np.float32)
        o1, _, _ = highway.step(a)
        o2, _, _ = fast.step(a)
        np.testing.assert_allclose(o1["observation.state"], o2["observation.state"], err_msg=f"step {t}")
        assert o2["observation.images.top"].max() == 0  # nothing drawn
    fast.close()


def test_meta_actions_and_bad_input_are_named(highway) -> None:  # noqa: ANN001
    w = make_world("drive:highway", actions="meta")
    assert w.spec.action.discrete and "horn" in w.spec.action.names
    w.reset(0)
    with pytest.raises(ValueError, match="outside 0..5"):
        w.step(np.array(9))
    w.close()
    highway.reset(0)
    with pytest.raises(ValueError, match=r"outside \[-1, 1\]"):
        highway.step(np.array([2.0, 0.0, 0.0], np.float32))
    with pytest.raises(ValueError, match="NaN"):
        highway.step(np.array([np.nan, 0.0, 0.0], np.float32))
    with pytest.raises(ValueError, match=r"expected \(3,\)"):
        highway.step(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="did you mean merge"):
        make_world("drive:merg")
    with pytest.raises(ValueError, match="continuous"):
        make_world("drive:parking", actions="meta")


def test_planning_tasks_are_the_worlds_own_and_check_their_scenario() -> None:
    from genworld.plan.episode import TaskError
    from genworld.plan.tasks import make_task, tasks_for

    assert set(tasks_for("drive:highway")) >= {"cruise", "merge", "park"}
    park = make_world("drive:parking")
    with pytest.raises(TaskError, match="drive:parking has the task park"):
        make_task("cruise", "drive:parking").check_world(park)
    task = make_task("park", "drive:parking")
    ep = task.setup(park, 0)
    assert ep.info["goal"][:2].any()  # the parking goal, relative to the start
    assert not task.success(ep, ep.obs)
    park.close()
    with pytest.raises(TaskError, match="does not exist"):
        make_task("fly", "drive:highway")


@pytest.mark.slow
def test_cruise_ceiling_clearly_above_random(tmp_path) -> None:  # noqa: ANN001
    from genworld.plan.experiment import PlanRunConfig, run_plan
    from genworld.plan.planner import PlannerConfig

    cfg = PlanRunConfig(task="cruise", out=str(tmp_path), world="drive:highway", episodes=4, videos=0, steps=30,
                        modes=("sim", "random"), planner=PlannerConfig(samples=16, iterations=2, horizon=5))
    report = run_plan(cfg, progress=None)
    assert report["ceiling"]["success_rate"] >= report["random"]["success_rate"] + 0.5


def test_draws_after_a_classic_control_env_set_the_dummy_video_driver() -> None:
    pytest.importorskip("pygame", reason="CartPole renders with pygame")
    cart = make_world("gym:CartPole-v1")  # its renderer sets SDL_VIDEODRIVER=dummy for the whole process
    cart.reset(0)
    cart.step(np.int64(0))
    cart.close()
    w = make_world("drive:highway")
    obs = w.reset(0)
    assert obs["observation.images.top"].std() > 5
    S = w.spec["observation.images.top"].shape[0]
    assert abs(obs["gt.objects"][0, 0] - S / 2) < 2  # the view follows the ego, so its centre is in the picture
    w.close()
