"""`DreamEnv`: a `gymnasium.Env` whose dynamics are a trained world model, so RL libraries can train
inside the model ("in imagination"). Each episode starts from a real context stored in the run (or
one passed in `reset(options={"context": ...})`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from genworld.rollout.session import WorldSession


def _space(m: Any) -> spaces.Space:
    if m.kind == "action" and m.discrete:
        return spaces.Discrete(m.n_choices)
    if m.kind == "video":
        return spaces.Box(0, 255, m.shape, np.uint8)
    lo = -np.inf if m.low is None else m.low
    hi = np.inf if m.high is None else m.high
    return spaces.Box(lo, hi, m.shape, np.float32)


class DreamEnv(gym.Env):
    """One imagined future at a time; observations are dicts of every predicted modality."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, session: WorldSession | str | Path, context: int = 4, max_steps: int = 200,
                 reward_fn: Callable[[dict[str, np.ndarray]], float] | None = None,
                 render_mode: str | None = "rgb_array") -> None:
        self.session = session if isinstance(session, WorldSession) else WorldSession.load(session)
        spec = self.session.spec
        self.context, self.max_steps, self.reward_fn = context, max_steps, reward_fn
        self.render_mode = render_mode
        self.observation_space = spaces.Dict({k: _space(spec[k]) for k in self.session.obs_keys})
        self.action_space = _space(spec.action)
        self._obs: dict[str, np.ndarray] = {}
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        if "context" in options:
            ctx = options["context"]
        else:
            n = len(next(iter(self.session.contexts.values()))) if self.session.contexts else 1
            ctx = self.session.stored_context(int(self.np_random.integers(0, n)), self.context)
        if seed is not None:
            self.session.gen.manual_seed(seed)
        last = self.session.reset(ctx)
        self._obs = {k: v[0].copy() for k, v in last.items()}  # callers keep observations: never share them
        self._steps = 0
        return dict(self._obs), {}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        spec = self.session.spec
        a = np.asarray(action, dtype=np.int64 if spec.action.discrete else np.float32)[None]
        out = self.session.step(a)
        self._obs = {k: out[k][0] for k in self.session.obs_keys}
        self._steps += 1
        rkey = next((m.key for m in spec.of_kind("reward")), None)
        dkey = next((m.key for m in spec.of_kind("done")), None)
        if self.reward_fn is not None:
            reward = float(self.reward_fn(self._obs))
        else:
            reward = float(out[rkey][0]) if rkey in out else 0.0
        terminated = bool(out[dkey][0]) if dkey in out else False
        truncated = self._steps >= self.max_steps
        return dict(self._obs), reward, terminated, truncated, {}

    def render(self) -> np.ndarray | None:
        """The first camera's latest predicted frame (H, W, 3) uint8."""
        videos = self.session.spec.of_kind("video")
        return self._obs.get(videos[0].key) if videos else None
