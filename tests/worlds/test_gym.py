"""gym:<env-id>: Box and Discrete actions, state vectors, frames, determinism, absorbing end, errors."""

from __future__ import annotations

import numpy as np
import pytest

from genworld.worlds import make_world

pytest.importorskip("gymnasium", reason="gym worlds need gymnasium (pip install 'genworld[gym]')")
pytest.importorskip("pygame", reason="CartPole and Pendulum render with pygame (pip install 'genworld[gym]')")


def rollout(world, seed: int, steps: int, policy: str = "random") -> list[dict[str, np.ndarray]]:
    obs = world.reset(seed=seed)
    pol = world.policy(policy, np.random.default_rng(seed))
    out = []
    for _ in range(steps):
        a = pol(obs)
        nxt, r, d = world.step(a)
        out.append({**obs, "action": a, "next.reward": r, "next.done": d})
        obs = nxt
    return out


def test_cartpole_discrete_actions_state_and_frames() -> None:
    w = make_world("gym:CartPole-v1")
    spec = w.spec
    assert spec.name == "gym:CartPole-v1" and spec.fps == 50
    assert spec.action.discrete and spec.action.names == ("push_left", "push_right")
    assert spec["observation.state"].shape == (4,)
    assert spec["observation.images.render"].shape == (64, 64, 3)
    steps = rollout(w, seed=0, steps=60, policy="sticky")
    for i, s in enumerate(steps):
        spec.check_step(s, where=f"step {i}")
    assert steps[0]["observation.images.render"].std() > 5
    done_at = next(i for i, s in enumerate(steps) if s["next.done"])  # sticky pushes tip the pole over
    after = steps[done_at + 1:]
    assert after and all(s["next.done"] and s["next.reward"] == 0.0 for s in after)  # absorbing
    np.testing.assert_array_equal(after[-1]["observation.state"], steps[done_at + 1]["observation.state"])
    w.close()


def test_pendulum_box_actions_are_clipped_to_bounds() -> None:
    w = make_world("gym:Pendulum-v1", image_size=32)
    act = w.spec.action
    assert not act.discrete and act.shape == (1,) and (act.low, act.high) == (-2.0, 2.0)
    assert w.spec.config["action_low"] == [-2.0] and w.spec.fps == 30
    steps = rollout(w, seed=1, steps=10)
    assert steps[0]["observation.images.render"].shape == (32, 32, 3)
    assert all(-2.0 <= s["action"][0] <= 2.0 for s in steps)
    w.reset(seed=1)
    a, _, _ = w.step(np.array([50.0], np.float32))  # far outside the Box: clipped, not an error
    b_world = make_world("gym:Pendulum-v1", image_size=32)
    b_world.reset(seed=1)
    b, _, _ = b_world.step(np.array([2.0], np.float32))
    np.testing.assert_array_equal(a["observation.state"], b["observation.state"])


def test_string_overrides_from_the_command_line() -> None:
    w = make_world("gym:CartPole-v1", image_size="48", make_kwargs='{"sutton_barto_reward": true}')
    assert w.spec["observation.images.render"].shape == (48, 48, 3)
    assert w.env.unwrapped._sutton_barto_reward is True
    with pytest.raises(ValueError, match="unknown config keys"):
        make_world("gym:CartPole-v1", size=3)


def test_same_seed_same_data() -> None:
    a = rollout(make_world("gym:Pendulum-v1"), seed=5, steps=12)
    b = rollout(make_world("gym:Pendulum-v1"), seed=5, steps=12)
    for t, (x, y) in enumerate(zip(a, b)):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"{k} at step {t}")
    c = rollout(make_world("gym:Pendulum-v1"), seed=6, steps=1)
    assert not np.array_equal(a[0]["observation.state"], c[0]["observation.state"])


def test_unknown_env_and_env_without_rgb_array() -> None:
    import gymnasium

    with pytest.raises(ValueError, match="no environment 'CartPol-v1'; did you mean CartPole-v1"):
        make_world("gym:CartPol-v1")
    with pytest.raises(ValueError, match="needs an env id"):
        make_world("gym")

    class HumanOnly(gymnasium.Env):
        metadata = {"render_modes": ["human"]}
        observation_space = gymnasium.spaces.Box(-1, 1, (2,))
        action_space = gymnasium.spaces.Discrete(2)

    gymnasium.register("genworld-test/HumanOnly-v0", entry_point=HumanOnly)
    try:
        with pytest.raises(ValueError, match="cannot render 'rgb_array'.*\\['human'\\]"):
            make_world("gym:genworld-test/HumanOnly-v0")
    finally:
        del gymnasium.registry["genworld-test/HumanOnly-v0"]


def test_unsupported_action_space_is_named() -> None:
    import gymnasium

    class MultiAct(gymnasium.Env):
        metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
        observation_space = gymnasium.spaces.Box(-1, 1, (2,))
        action_space = gymnasium.spaces.MultiDiscrete([2, 3])

        def __init__(self, render_mode=None):
            self.render_mode = render_mode

    gymnasium.register("genworld-test/MultiAct-v0", entry_point=MultiAct)
    try:
        with pytest.raises(ValueError, match="not supported; genworld maps Discrete and Box"):
            make_world("gym:genworld-test/MultiAct-v0")
    finally:
        del gymnasium.registry["genworld-test/MultiAct-v0"]


def test_the_own_world_example_in_the_docs_runs() -> None:
    from pathlib import Path

    from genworld.worlds.base import _REGISTRY

    doc = (Path(__file__).resolve().parents[2] / "docs" / "worlds.md").read_text()
    code = doc.split("## Your own world", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    try:
        exec(compile(code, "docs/worlds.md", "exec"), {})
        world = make_world("blink")
        world.reset(seed=0)
        obs, reward, done = world.step(np.int64(1))
        step = world.spec.check_step({**obs, "action": np.int64(1), "next.reward": reward, "next.done": done})
        assert step["observation.images.cam"].min() == 255
    finally:
        _REGISTRY.pop("blink", None)


@pytest.mark.parametrize("module, world, extra", [
    ("gymnasium", "gym:CartPole-v1", "gym"),
    ("ale_py", "arcade:Pong", "atari"),
    ("mujoco", "tabletop", "mujoco"),
])
def test_a_missing_extra_is_named_and_other_worlds_still_work(module: str, world: str, extra: str) -> None:
    import subprocess
    import sys

    code = (f"import sys; sys.modules[{module!r}] = None\n"  # as if the package were not installed
            "from genworld.worlds import MissingExtraError, make_world, registered_worlds\n"
            "assert {'tabletop', 'arcade', 'gym'} <= set(registered_worlds())\n"
            f"try:\n    make_world({world!r})\nexcept MissingExtraError as e:\n    print(e)\n"
            "make_world('bounce').reset(seed=0)\nprint('bounce ok')\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert f"pip install 'genworld[{extra}]'" in p.stdout and "bounce ok" in p.stdout
