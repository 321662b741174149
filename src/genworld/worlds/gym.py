"""`gym:<env-id>`: any Gymnasium environment that renders `rgb_array`, as a genworld world.

The id is Gymnasium's own: `gym:module:EnvId` imports `module` first (as `gymnasium.make("module:EnvId")`
does), so an env that a package registers when imported needs no code; `gym:ns/Env-v0` also runs the
installed plugins of namespace `ns` (entry points in the group `gymnasium.envs`) when Gymnasium has
not registered it yet. An id that is still unknown is an error that names the module it imported and
lists near ids.

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

import contextlib
import dataclasses
import difflib
import importlib
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
PLUGIN_GROUP = "gymnasium.envs"  # the entry-point group of Gymnasium env plugins (name: the namespace)
# Namespaces whose package registers them on import (named in the error; never imported unasked).
KNOWN_NAMESPACE_MODULES = {"ALE": "ale_py"}


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


_PLUGINS_RUN: set[str] = set()  # entry points already run in this process ("name = value")


def _plugin_entry_points() -> list[Any]:
    from importlib import metadata

    return list(metadata.entry_points(group=PLUGIN_GROUP))


def _run_plugins(gymnasium: Any, namespace: str | None) -> list[str]:
    """Run the `gymnasium.envs` entry points for `namespace` (for the root namespace when None) that have
    not run yet, each inside `namespace(name)` as Gymnasium's plugin loader did; returns those run.

    Gymnasium before 1.0 runs every plugin when imported; 1.0 dropped that, so we do it on demand."""
    registration = gymnasium.envs.registration
    if hasattr(registration, "load_plugin_envs") or hasattr(registration, "load_env_plugins"):
        return []  # this Gymnasium ran them at import already
    wanted = {namespace} if namespace is not None else {"__root__", "__internal__"}
    ran = []
    for ep in _plugin_entry_points():
        key = f"{ep.name} = {ep.value}"
        if ep.name not in wanted or key in _PLUGINS_RUN:
            continue
        _PLUGINS_RUN.add(key)
        root = ep.name in ("__root__", "__internal__") or not hasattr(registration, "namespace")
        try:
            with contextlib.nullcontext() if root else registration.namespace(ep.name):
                fn = ep.load()
                if callable(fn):
                    fn()
        except Exception as e:  # a broken plugin must not break the others (Gymnasium only warned too)
            warnings.warn(f"Gymnasium plugin {key!r} failed: {type(e).__name__}: {e}", stacklevel=2)
            continue
        ran.append(key)
    return ran


def _split_env_id(arg: str) -> tuple[str | None, str]:
    """`module:EnvId` -> (module, EnvId); a plain `EnvId` -> (None, EnvId), as `gymnasium.make` splits it."""
    module, sep, env_id = arg.partition(":")
    if not sep:
        return None, arg
    if not module.strip() or not env_id.strip():
        raise ValueError(f"gym:{arg}: expected gym:<env-id> or gym:<module>:<env-id>, for example "
                         "gym:CartPole-v1 or gym:my_package.envs:MyEnv-v0")
    return module.strip(), env_id.strip()


def _import_env_module(arg: str, module: str, registry: Any) -> list[str]:
    """Import `module` (which registers envs when imported); returns the ids that importing it added."""
    before = set(registry)
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise ValueError(
                f"gym:{arg}: cannot import module {module!r} ({e}); install the package that provides it, or "
                "add the folder that holds it to PYTHONPATH") from e
        raise ValueError(f"gym:{arg}: importing module {module!r} failed: {e} (a module it needs is "
                         "missing)") from e
    except Exception as e:
        raise ValueError(f"gym:{arg}: importing module {module!r} failed: {type(e).__name__}: {e}") from e
    return sorted(set(registry) - before)


def resolve_env_id(arg: str) -> str:
    """The Gymnasium registry id that `gym:<arg>` names, after importing its module (`module:EnvId`)
    and running the plugins of its namespace where needed; an unknown id is a ValueError listing near ids."""
    gymnasium = _gymnasium()
    registry = gymnasium.registry
    module, env_id = _split_env_id(arg)
    added = _import_env_module(arg, module, registry) if module else []
    if env_id in registry:
        return env_id
    namespace = env_id.split("/", 1)[0] if "/" in env_id else None
    plugins = _run_plugins(gymnasium, namespace)
    if env_id in registry:
        return env_id
    ids = list(registry)
    msg = f"gym:{arg}: Gymnasium has no environment {env_id!r}"
    if module:
        msg += f" after importing module {module!r}"
        if added:
            msg += f" (which registered {', '.join(added[:8])}{', ...' if len(added) > 8 else ''})"
    close = difflib.get_close_matches(env_id, ids, n=5, cutoff=0.5)
    msg += f"; did you mean {', '.join(close)}?" if close else f"; for example {', '.join(ids[:5])}"
    namespaces = {spec.namespace for spec in registry.values() if getattr(spec, "namespace", None)}
    if namespace is not None and namespace not in namespaces:
        ran = f" (ran the plugins {', '.join(plugins)})" if plugins else ""
        example = KNOWN_NAMESPACE_MODULES.get(namespace, "<module>")
        msg += (f" No environment is registered in namespace {namespace!r} and no installed {PLUGIN_GROUP!r} "
                f"plugin registers it{ran}; if a package registers it when imported, name that module: "
                f"gym:{example}:{env_id}")
    elif not module and not close:
        msg += f". If a package registers it when imported, name that module: gym:<module>:{env_id}"
    raise ValueError(msg + " (list the ids with `python -c 'import gymnasium; print(list(gymnasium.registry))'`)")


def _make_env(cfg: GymConfig) -> tuple[Any, str]:
    """The env made with render_mode rgb_array, and its registry id (without the module)."""
    gymnasium = _gymnasium()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders offscreen; no display needed
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")  # SDL would swallow SIGTERM, so a worker pool could not stop
    env_id = resolve_env_id(cfg.env_id)
    creator = gymnasium.registry[env_id].entry_point
    try:
        if isinstance(creator, str):
            creator = gymnasium.envs.registration.load_env_creator(creator)
        declared = getattr(creator, "metadata", {}).get("render_modes")
        if declared is not None:
            _need_rgb(cfg.env_id, declared)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gymnasium.make(env_id, render_mode="rgb_array", **(cfg.make_kwargs or {}))
    except gymnasium.error.DependencyNotInstalled as e:
        raise MissingExtraError(f"gym:{cfg.env_id}: {e} (or pip install 'genworld[gym]')") from e
    try:
        _need_rgb(cfg.env_id, env.metadata.get("render_modes", []))
    except ValueError:
        env.close()
        raise
    return env, env_id


def _need_rgb(env_id: str, modes: list[str]) -> None:
    if "rgb_array" not in modes:
        raise ValueError(f"gym:{env_id}: the environment cannot render 'rgb_array' (its render modes: "
                         f"{list(modes)}); genworld needs frames, so pick an env that renders rgb_array")


class GymWorld:
    """A Gymnasium env behind the World protocol: frames, state vector, action, reward, done."""

    def __init__(self, cfg: GymConfig) -> None:
        self.cfg = cfg
        gymnasium = _gymnasium()
        self.env, self.env_id = _make_env(cfg)  # env_id: the registry id (cfg.env_id may name a module too)
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
            names = _action_names(self.env, self.env_id, self.n_actions)
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
    """Factory for `gym:<env-id>` and `gym:<module>:<env-id>`: `make_world("gym:Pendulum-v1", image_size=64)`,
    `make_world("gym:my_package.envs:MyEnv-v0")` (imports `my_package.envs` first, as `gymnasium.make` does)."""
    if not arg:
        raise ValueError("the gym world needs an env id: gym:<env-id> or gym:<module>:<env-id>, for example "
                         "gym:CartPole-v1 or gym:my_package.envs:MyEnv-v0")
    return GymWorld(config_from_overrides(GymConfig, {**overrides, "env_id": arg}, f"gym:{arg}"))


register_world("gym", make_gym_world, "any Gymnasium env that renders rgb_array (gym:<env-id>; "
               "gym:<module>:<env-id> imports the module that registers it first)",
               extra="gym", policies=("random", "sticky", "mixed"))
