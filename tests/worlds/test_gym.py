"""gym:<env-id>: Box and Discrete actions, state vectors, frames, determinism, absorbing end, errors;
gym:<module>:<env-id> and plugin namespaces (with tests/worlds/gym_plugin_env.py)."""

from __future__ import annotations

import sys
from pathlib import Path

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


PLUGIN = "gym:gym_plugin_env:GenworldTestPlugin-v0"  # tests/worlds/gym_plugin_env.py registers it on import


@pytest.fixture
def plugin_module(monkeypatch):  # noqa: ANN001, ANN201
    """tests/worlds on sys.path, gym_plugin_env not imported yet; afterwards what it registered is removed."""
    import gymnasium

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    sys.modules.pop("gym_plugin_env", None)
    before = set(gymnasium.registry)
    yield gymnasium
    sys.modules.pop("gym_plugin_env", None)
    for env_id in set(gymnasium.registry) - before:
        del gymnasium.registry[env_id]


def test_module_env_id_imports_the_module_then_collects(plugin_module, tmp_path, capsys) -> None:  # noqa: ANN001
    from genworld.cli import main
    from genworld.data import Dataset

    assert "GenworldTestPlugin-v0" not in plugin_module.registry  # only importing the module registers it
    w = make_world(PLUGIN, image_size=16)
    spec = w.spec
    assert spec.name == PLUGIN and spec.fps == 12 and w.env_id == "GenworldTestPlugin-v0"
    assert spec.action.names == ("action_0", "action_1", "action_2") and spec["observation.state"].shape == (2,)
    for i, s in enumerate(rollout(w, seed=3, steps=10, policy="sticky")):
        spec.check_step(s, where=f"step {i}")
        assert s["observation.images.render"].shape == (16, 16, 3)
    w.close()
    out = tmp_path / "ds"  # the command of the issue: `genworld collect gym:module:EnvId`
    assert main(["collect", PLUGIN, "--episodes", "2", "--steps", "8", "--out", str(out), "--quiet",
                 "--set", "image_size=16"]) == 0
    assert "2 episodes of gym:gym_plugin_env:GenworldTestPlugin-v0" in capsys.readouterr().out
    ds = Dataset(str(out))
    assert ds.num_episodes == 2 and ds.spec == spec
    assert ds.episode(1)["observation.images.render"].shape[1:] == (16, 16, 3)
    # spawned workers import the module themselves (sys.path travels with them, as PYTHONPATH would)
    assert main(["collect", PLUGIN, "--episodes", "3", "--steps", "8", "--out", str(out), "--quiet",
                 "--set", "image_size=16", "--workers", "2"]) == 0
    assert "resumed at episode 2" in capsys.readouterr().out and Dataset(str(out)).num_episodes == 3


def test_a_plugin_namespace_runs_its_entry_point(plugin_module, monkeypatch) -> None:  # noqa: ANN001
    from importlib.metadata import EntryPoint

    import genworld.worlds.gym as gymworld

    eps = [EntryPoint("GenworldTestNS", "gym_plugin_env:register_plugin", "gymnasium.envs"),
           EntryPoint("OtherNS", "genworld_no_such_module:register", "gymnasium.envs")]  # not run: other namespace
    monkeypatch.setattr(gymworld, "_plugin_entry_points", lambda: eps)
    monkeypatch.setattr(gymworld, "_PLUGINS_RUN", set())
    w = make_world("gym:GenworldTestNS/Plugin-v0")
    assert w.spec.name == "gym:GenworldTestNS/Plugin-v0" and "GenworldTestNS/Plugin-v0" in plugin_module.registry
    assert gymworld._PLUGINS_RUN == {"GenworldTestNS = gym_plugin_env:register_plugin"}
    w.close()


def test_module_env_id_errors_name_the_module_and_near_ids(plugin_module, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="no environment 'GenworldTestPlugin-v1' after importing module "
                                         "'gym_plugin_env' \\(which registered GenworldTestPlugin-v0\\); "
                                         "did you mean GenworldTestPlugin-v0"):
        make_world("gym:gym_plugin_env:GenworldTestPlugin-v1")
    with pytest.raises(ValueError, match="cannot import module 'genworld_no_such_module'.*PYTHONPATH"):
        make_world("gym:genworld_no_such_module:Foo-v0")
    (tmp_path / "genworld_broken_envs.py").write_text("import genworld_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="importing module 'genworld_broken_envs' failed: No module named "
                                         "'genworld_missing_dependency'"):
        make_world("gym:genworld_broken_envs:Foo-v0")
    with pytest.raises(ValueError, match="namespace 'GenworldNoSuchNS'.*gym:<module>:GenworldNoSuchNS/Env-v0"):
        make_world("gym:GenworldNoSuchNS/Env-v0")
    with pytest.raises(ValueError, match="expected gym:<env-id> or gym:<module>:<env-id>"):
        make_world("gym::Foo-v0")


def test_genworld_worlds_says_how_to_name_a_module(capsys) -> None:  # noqa: ANN001
    from genworld.cli import main

    with pytest.raises(SystemExit):
        main(["worlds", "--help"])
    assert "gym:my_package.envs:MyEnv-v0      imports my_package.envs first" in capsys.readouterr().out
    assert main(["worlds", "gym"]) == 0
    assert "gym:<module>:<env-id> imports the module" in capsys.readouterr().out


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
