"""metaworld:<task>: modalities, finger touch from MuJoCo contacts, contact sound, ground truth through the
camera, Meta-World's success flag, exact replay, the task description in the dataset, errors."""

from __future__ import annotations

import numpy as np
import pytest

from genworld.worlds import make_world

pytest.importorskip("metaworld", reason="metaworld worlds need Meta-World (pip install 'genworld[metaworld]')")

from genworld.worlds.metaworld import OBJECT_COLUMNS, PROPRIO, TAXELS, describe  # noqa: E402

pytestmark = pytest.mark.gl


@pytest.fixture(scope="module")
def push():  # noqa: ANN201
    w = make_world("metaworld:push-v3")
    yield w
    w.close()


def expert_run(world, seed: int, steps: int) -> list[dict[str, np.ndarray]]:  # noqa: ANN001
    obs = world.reset(seed)
    pol = world.policy("expert", np.random.default_rng(seed))
    out = [obs]
    for _ in range(steps):
        a = pol(obs)
        obs, r, d = world.step(a)
        out.append({**obs, "action": a, "next.reward": np.float32(r), "next.done": d})
    return out


def test_modalities_and_the_expert_succeeds(push) -> None:  # noqa: ANN001
    spec = push.spec
    assert spec.name == "metaworld:push-v3" and spec.fps == 20
    assert spec.action.shape == (4,) and spec["observation.state"].names == PROPRIO
    assert spec["observation.tactile.fingers"].names == TAXELS
    assert spec.config["description"] == describe("push-v3") == "push the puck to the goal"
    steps = expert_run(push, 0, 40)
    for t, s in enumerate(steps[1:]):
        spec.check_step(s, where=f"step {t}")
    assert steps[0]["observation.images.front"].std() > 10
    assert max(float(s["gt.success"]) for s in steps) == 1.0  # Meta-World's own flag, through the world


def test_touch_and_sound_follow_the_mujoco_contacts(push) -> None:  # noqa: ANN001
    steps = expert_run(push, 1, 30)[1:]
    touch = np.array([s["observation.tactile.fingers"].max() for s in steps])
    contact = np.array([s["gt.contacts"][0, 1:].max() for s in steps])  # gripper row: objects and the table
    assert touch.max() > 0 and contact.max() > 0
    # a pad reads force exactly when the gripper's row of the contact table has an impulse (pads are gripper)
    assert np.all(contact[touch > 1e-6] > 0)
    sound = np.array([np.abs(s["observation.audio.contact"]).max() for s in steps])
    assert (sound > 0).any() and sound[:2].max() == 0  # silent until the first contact of the approach
    first_sound, first_contact = int(np.argmax(sound > 0)), int(np.argmax(contact > 0))
    assert first_sound >= first_contact


def test_ground_truth_lands_on_the_picture(push) -> None:  # noqa: ANN001
    obs = push.reset(2)
    obj = obs["gt.objects"]
    seg = obs["gt.segmentation"]
    S = seg.shape[0]
    ix, iy = OBJECT_COLUMNS.index("x"), OBJECT_COLUMNS.index("y")
    for k, label in ((0, 1), (1, 2)):  # gripper (the arm's label), the puck
        x, y = int(round(obj[k, ix])), int(round(obj[k, iy]))
        assert 0 <= x < S and 0 <= y < S
        win = seg[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3]
        assert (win == label).any(), (k, x, y)
    bodies = obs["gt.bodies"]
    assert np.allclose(bodies[0, :3], push.data.xpos[push.objects[0]])


def test_exact_replay_and_same_seed_same_data(push) -> None:  # noqa: ANN001
    a = expert_run(push, 4, 20)
    b = expert_run(push, 4, 20)
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)
    state = push.get_state()
    act = np.array([0.4, -0.3, -0.5, 1.0], np.float32)
    first = [push.step(act)[0] for _ in range(6)]
    push.set_state(state)
    again = [push.step(act)[0] for _ in range(6)]
    for x, y in zip(first, again):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def test_the_task_description_is_the_datasets_task(tmp_path) -> None:  # noqa: ANN001
    from genworld.data.reader import Dataset
    from genworld.worlds.collect import CollectConfig, collect

    collect(CollectConfig(world="metaworld:reach-v3", out=str(tmp_path / "d"), episodes=1, steps=6, progress=False))
    assert Dataset(tmp_path / "d").tasks == ["move the gripper to the goal position"]


def test_every_policy_acts_within_the_action_box(push) -> None:  # noqa: ANN001
    for name in ("random", "sticky", "mixed", "expert"):
        obs = push.reset(0)
        pol = push.policy(name, np.random.default_rng(1))
        for _ in range(3):
            a = pol(obs)
            assert a.shape == (4,) and np.all(np.abs(a) <= 1.0), name
            obs, _, _ = push.step(a)
    with pytest.raises(ValueError, match="unknown policy"):
        push.policy("nope", np.random.default_rng(0))


def test_bad_input_is_named(push) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="did you mean push-v3"):
        make_world("metaworld:psuh-v3")
    with pytest.raises(ValueError, match="camera"):
        make_world("metaworld:push-v3", camera="nowhere")
    push.reset(0)
    with pytest.raises(ValueError, match=r"outside \[-1, 1\]"):
        push.step(np.array([3.0, 0, 0, 0], np.float32))
    with pytest.raises(ValueError, match="NaN"):
        push.step(np.array([np.nan, 0, 0, 0], np.float32))
    with pytest.raises(ValueError, match=r"expected \(4,\)"):
        push.step(np.zeros(3, np.float32))


@pytest.mark.slow
def test_reach_ceiling_clearly_above_random(tmp_path) -> None:  # noqa: ANN001
    from genworld.plan.experiment import PlanRunConfig, run_plan
    from genworld.plan.planner import PlannerConfig

    cfg = PlanRunConfig(task="solve", out=str(tmp_path), world="metaworld:reach-v3", episodes=4, videos=0, steps=20,
                        modes=("sim", "random"), planner=PlannerConfig(samples=32, iterations=2, horizon=6))
    report = run_plan(cfg, progress=None)
    assert report["ceiling"]["success_rate"] >= report["random"]["success_rate"] + 0.5
