"""`gym:<env-id>`: any Gymnasium environment that renders `rgb_array`, as a genworld world.

The env's action space becomes the `action` modality (Discrete -> one discrete choice with names,
Box -> a continuous vector with its bounds), its vector observation (if it has one) becomes
`observation.state`, and its rendered frame, resized to `image_size` with area resampling, becomes
`observation.images.render`. The step rate is the env's `render_fps`. After `terminated` or
`truncated` the world is absorbing: further steps repeat the last observation with reward 0 and
done True, so a collector that keeps stepping never drives Gymnasium into undefined behaviour.

This module also holds the helpers that `arcade` and `tabletop` share: `config_from_overrides`
(keyword overrides, strings from `--set key=value` included, into a typed config), `resize_frame`,
and the `random` and `sticky` exploration policies over a discrete or box action.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import typing
import warnings
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from genworld.spec import Modality, WorldSpec
from genworld.worlds.base import MissingExtraError, Policy, register_world

# Readable names for the discrete actions of the classic envs; others get `action_<i>`.
KNOWN_ACTION_NAMES: dict[str, tuple[str, ...]] = {
    "CartPole": ("push_left", "push_right"),
    "MountainCar": ("accelerate_left", "coast", "accelerate_right"),
    "Acrobot": ("torque_minus", "torque_zero", "torque_plus"),
    "LunarLander": ("noop", "fire_left", "fire_main", "fire_right"),
    "FrozenLake": ("left", "down", "right", "up"),
    "CliffWalking": ("up", "right", "down", "left"),
}
MAX_STATE_DIM = 4096  # a flat observation larger than this is an image or worse, not a state vector


C = TypeVar("C")


def _convert(value: Any, hint: Any, where: str) -> Any:
    """`value` as type `hint` when it is a string (from the command line); otherwise unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if type(None) in typing.get_args(hint):
        if text.lower() in ("none", "null", ""):
            return None
        hint = args[0] if len(args) == 1 else hint
    origin = typing.get_origin(hint) or hint
    try:
        if origin is bool:
            if text.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return text.lower() in ("1", "true", "yes", "on")
        if origin in (int, float):
            return origin(text)
        if origin in (tuple, list, dict):
            parsed = json.loads(text.replace("(", "[").replace(")", "]")) if text[:1] in "[({" else [
                float(x) if "." in x else int(x) for x in text.split(",")]
            return origin(parsed) if origin is not dict else parsed
    except (ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: cannot read {value!r} as {hint}") from e
    return value


def config_from_overrides(cls: type[C], overrides: dict[str, Any], where: str) -> C:
    """Build dataclass `cls` from keyword overrides; strings (from `--set key=value`) are converted to
    the field's type, and an unknown key is an error that lists the known ones."""
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{where}: unknown config keys {unknown}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _convert(v, hints[k], f"{where}, {k}") for k, v in overrides.items()})


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """Resize an (H, W, 3) uint8 frame to (size, size, 3) by area averaging (PIL's BOX filter)."""
    from PIL import Image

    if frame.shape[:2] == (size, size):
        return np.ascontiguousarray(frame, dtype=np.uint8)
    img = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8))
    return np.asarray(img.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)


class RandomPolicy:
    """Uniform random actions: a choice among `n` (discrete) or a vector within [low, high]."""

    def __init__(self, rng: np.random.Generator, n: int = 0, low: np.ndarray | None = None,
                 high: np.ndarray | None = None) -> None:
        self.rng, self.n = rng, n
        self.low = None if low is None else np.asarray(low, np.float32)
        self.high = None if high is None else np.asarray(high, np.float32)

    def sample(self) -> np.ndarray:
        """One fresh random action."""
        if self.n:
            return np.asarray(self.rng.integers(self.n), dtype=np.int64)
        assert self.low is not None and self.high is not None
        lo = np.where(np.isfinite(self.low), self.low, -1.0)
        hi = np.where(np.isfinite(self.high), self.high, 1.0)
        return self.rng.uniform(lo, hi).astype(np.float32)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.sample()


class StickyPolicy(RandomPolicy):
    """Sticky-random: keeps its last action with probability `repeat`, else draws a new random one."""

    def __init__(self, rng: np.random.Generator, repeat: float = 0.8, **kw: Any) -> None:
        super().__init__(rng, **kw)
        self.repeat = repeat
        self.last: np.ndarray | None = None

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.last is None or self.rng.random() >= self.repeat:
            self.last = self.sample()
        return self.last.copy()


@dataclass
class GymConfig:
    """How a Gymnasium env is wrapped."""

    env_id: str = "CartPole-v1"
    image_size: int = 64
    fps: int = 0  # 0: the env's metadata["render_fps"] (30 when it has none)
    sticky_repeat: float = 0.8  # probability that the `sticky` policy keeps its last action
    make_kwargs: dict[str, Any] | None = None  # passed to gymnasium.make


def _gymnasium() -> Any:
    try:
        import gymnasium
    except ImportError as e:
        raise MissingExtraError("the gym worlds need gymnasium: pip install 'genworld[gym]'") from e
    return gymnasium


def _make_env(cfg: GymConfig) -> Any:
    gymnasium = _gymnasium()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders offscreen; no display needed
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")  # SDL would swallow SIGTERM, so a worker pool could not stop
    ids = list(gymnasium.registry)
    if cfg.env_id not in gymnasium.registry:
        close = difflib.get_close_matches(cfg.env_id, ids, n=5, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"for example {', '.join(ids[:5])}"
        raise ValueError(f"gym:{cfg.env_id}: Gymnasium has no environment {cfg.env_id!r}; {hint} "
                         "(list them with `python -c 'import gymnasium; print(list(gymnasium.registry))'`)")
    creator = gymnasium.registry[cfg.env_id].entry_point
    try:
        if isinstance(creator, str):
            creator = gymnasium.envs.registration.load_env_creator(creator)
        declared = getattr(creator, "metadata", {}).get("render_modes")
        if declared is not None:
            _need_rgb(cfg.env_id, declared)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gymnasium.make(cfg.env_id, render_mode="rgb_array", **(cfg.make_kwargs or {}))
    except gymnasium.error.DependencyNotInstalled as e:
        raise MissingExtraError(f"gym:{cfg.env_id}: {e} (or pip install 'genworld[gym]')") from e
    try:
        _need_rgb(cfg.env_id, env.metadata.get("render_modes", []))
    except ValueError:
        env.close()
        raise
    return env


def _need_rgb(env_id: str, modes: list[str]) -> None:
    if "rgb_array" not in modes:
        raise ValueError(f"gym:{env_id}: the environment cannot render 'rgb_array' (its render modes: "
                         f"{list(modes)}); genworld needs frames, so pick an env that renders rgb_array")


class GymWorld:
    """A Gymnasium env behind the World protocol: frames, state vector, action, reward, done."""

    def __init__(self, cfg: GymConfig) -> None:
        self.cfg = cfg
        gymnasium = _gymnasium()
        self.env = _make_env(cfg)
        spaces = gymnasium.spaces
        act_space, obs_space = self.env.action_space, self.env.observation_space
        fps = cfg.fps or int(self.env.metadata.get("render_fps") or 30)
        S = cfg.image_size
        mods = [Modality("observation.images.render", "video", (S, S, 3), fps, dtype="uint8",
                         description=f"{cfg.env_id} rgb_array frame, area-resized")]
        self._flatten = None
        is_image = isinstance(obs_space, spaces.Box) and obs_space.dtype == np.uint8 and len(obs_space.shape) >= 2
        if not is_image and spaces.flatdim(obs_space) <= MAX_STATE_DIM:
            self._flatten = lambda o: spaces.flatten(obs_space, o)
            mods.append(Modality("observation.state", "proprio", (spaces.flatdim(obs_space),), fps,
                                 description=f"{cfg.env_id} observation, flattened"))
        config: dict[str, Any] = {"env_id": cfg.env_id, "image_size": S,
                                  "max_episode_steps": getattr(self.env.spec, "max_episode_steps", None)}
        if isinstance(act_space, spaces.Discrete):
            self.n_actions, self._start = int(act_space.n), int(act_space.start)
            names = _action_names(self.env, cfg.env_id, self.n_actions)
            mods.append(Modality("action", "action", (), fps, dtype="int64", discrete=True, names=names))
            self.low = self.high = None
        elif isinstance(act_space, spaces.Box):
            self.n_actions = 0
            self.low = act_space.low.astype(np.float32).ravel()
            self.high = act_space.high.astype(np.float32).ravel()
            self._act_shape = act_space.shape
            mods.append(Modality("action", "action", (self.low.size,), fps, low=float(self.low.min()),
                                 high=float(self.high.max()), description="continuous, clipped to the Box"))
            config.update(action_low=self.low.tolist(), action_high=self.high.tolist())
        else:
            self.env.close()
            raise ValueError(f"gym:{cfg.env_id}: action space {act_space} is not supported; genworld maps "
                             "Discrete and Box actions (wrap others with a Gymnasium ActionWrapper)")
        mods += [Modality("next.reward", "reward", (), fps), Modality("next.done", "done", (), fps, dtype="bool")]
        self.spec = WorldSpec(f"gym:{cfg.env_id}", fps, tuple(mods), f"Gymnasium {cfg.env_id}", config)
        self._last: dict[str, np.ndarray] = {}
        self._done = False

    def _obs(self, o: Any) -> dict[str, np.ndarray]:
        frame = self.env.render()
        if frame is None or np.asarray(frame).ndim != 3:
            raise RuntimeError(f"gym:{self.cfg.env_id}: render() returned {type(frame).__name__}, not an (H, W, 3) array")
        out = {"observation.images.render": resize_frame(np.asarray(frame)[..., :3], self.cfg.image_size)}
        if self._flatten is not None:
            out["observation.state"] = np.asarray(self._flatten(o), dtype=np.float32)
        return out

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start an episode (Gymnasium's own seeding); returns o_0."""
        o, _ = self.env.reset(seed=seed)
        self._done = False
        self._last = self._obs(o)
        return {k: v.copy() for k, v in self._last.items()}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool]:
        """Apply one action; after the episode ended, repeat the last observation (absorbing)."""
        if self._done:
            return {k: v.copy() for k, v in self._last.items()}, 0.0, True
        if self.n_actions:
            a: Any = int(np.asarray(action).reshape(()))
            if not 0 <= a < self.n_actions:
                raise ValueError(f"gym:{self.cfg.env_id}: action {a} outside 0..{self.n_actions - 1}")
            a += self._start
        else:
            a = np.clip(np.asarray(action, np.float32).reshape(-1), self.low, self.high).reshape(self._act_shape)
        o, r, term, trunc, _ = self.env.step(a)
        self._done = bool(term or trunc)
        self._last = self._obs(o)
        return {k: v.copy() for k, v in self._last.items()}, float(r), self._done

    def policy(self, name: str, rng: np.random.Generator) -> Policy:
        """`random` (uniform), `sticky` (keeps its last action with probability `sticky_repeat`) or `mixed`."""
        kw: dict[str, Any] = {"n": self.n_actions} if self.n_actions else {"low": self.low, "high": self.high}
        if name == "mixed":  # one of the two per episode
            name = "random" if rng.random() < 0.5 else "sticky"
        if name == "random":
            return RandomPolicy(rng, **kw)
        if name == "sticky":
            return StickyPolicy(rng, repeat=self.cfg.sticky_repeat, **kw)
        raise ValueError(f"gym:{self.cfg.env_id}: unknown policy {name!r}; choose random, sticky or mixed")

    def close(self) -> None:
        self.env.close()


def _action_names(env: Any, env_id: str, n: int) -> tuple[str, ...]:
    meanings = getattr(env.unwrapped, "get_action_meanings", None)
    if callable(meanings):
        names = tuple(str(m).lower() for m in meanings())
        if len(names) == n:
            return names
    known = KNOWN_ACTION_NAMES.get(env_id.split("/")[-1].split("-")[0])
    return known if known and len(known) == n else tuple(f"action_{i}" for i in range(n))


def make_gym_world(arg: str | None, **overrides: Any) -> GymWorld:
    """Factory for `gym:<env-id>`: `make_world("gym:Pendulum-v1", image_size=64)`."""
    if not arg:
        raise ValueError("the gym world needs an env id: gym:<env-id>, for example gym:CartPole-v1")
    return GymWorld(config_from_overrides(GymConfig, {**overrides, "env_id": arg}, f"gym:{arg}"))


register_world("gym", make_gym_world, "any Gymnasium env that renders rgb_array (gym:<env-id>)",
               extra="gym", policies=("random", "sticky", "mixed"))
