"""A tiny Gymnasium env that registers itself when imported, as a third-party package's would.

Imported by tests/worlds/test_gym.py through `gym:gym_plugin_env:GenworldTestPlugin-v0` (the test puts
this folder on sys.path); `register_plugin` is what a `gymnasium.envs` entry point would name. Not a test
file itself (pytest collects only test_*.py).
"""

from __future__ import annotations

import gymnasium
import numpy as np

ENV_ID = "GenworldTestPlugin-v0"
PLUGIN_ENV = "Plugin-v0"  # registered by `register_plugin` inside its plugin namespace


class SliderEnv(gymnasium.Env):
    """A dot on a line: left / stay / right; ends when it reaches either end. Renders a 24x32 frame."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 12}

    def __init__(self, render_mode: str | None = None, length: int = 6) -> None:
        self.render_mode, self.length = render_mode, length
        self.observation_space = gymnasium.spaces.Box(0.0, 1.0, (2,), dtype=np.float32)
        self.action_space = gymnasium.spaces.Discrete(3)
        self.pos = length // 2

    def _obs(self) -> np.ndarray:
        return np.array([self.pos / self.length, 1.0 - self.pos / self.length], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # noqa: ANN201
        super().reset(seed=seed)
        self.pos = int(self.np_random.integers(1, self.length))
        return self._obs(), {}

    def step(self, action):  # noqa: ANN001, ANN201
        self.pos = int(np.clip(self.pos + int(action) - 1, 0, self.length))
        terminated = self.pos in (0, self.length)
        return self._obs(), float(terminated), terminated, False, {}

    def render(self) -> np.ndarray:
        frame = np.full((24, 32, 3), 40, dtype=np.uint8)
        x = 2 + self.pos * 28 // self.length
        frame[8:16, x:x + 3] = (250, 200, 30)
        return frame


def register_plugin() -> None:
    """What a `gymnasium.envs` entry point runs: registers `Plugin-v0` in the plugin's namespace."""
    gymnasium.register(PLUGIN_ENV, entry_point=SliderEnv, max_episode_steps=20)


gymnasium.register(ENV_ID, entry_point=SliderEnv, max_episode_steps=20)
