"""Where a play session comes from: the model (or the true world), its starting contexts, and reality.

`Source` answers three questions for the server: which `Session` a new client plays in
(`new_session()`), which real steps it starts from (`context(i)`), and whether the true world can be
stepped beside it for the "reality check" (`new_reality(ctx)`). Contexts come from a dataset
(`--data`), or from the run's stored contexts (`contexts.safetensors` in the run dir), or, when
playing the simulator itself (`--world`), from resetting the world.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genworld.rollout.base import Session
from genworld.spec import WorldSpec

DEFAULT_CONTEXT = 4


@dataclass
class SourceConfig:
    """What to play: a run (`run`, optionally `data`) or the true simulator of a world (`world`)."""

    run: str | None = None
    data: str | None = None
    world: str | None = None
    context: int | None = None  # real steps to start from (default: the model's own, else 4)
    seed: int = 0
    map_actions: bool = False  # a latent-action run: bind the true actions' keys to the latents they map to


@dataclass
class Context:
    """One starting point: `{key: (1, C, *shape)}` real steps, a label, and the true world's state if known."""

    steps: dict[str, np.ndarray]
    label: str
    world_state: Any = None


def rebuild_world(spec: WorldSpec) -> Any:
    """A fresh true world matching `spec` (built from `spec.name` and `spec.config`), or raise ValueError."""
    from genworld.worlds.base import make_world

    scalar = {k: v for k, v in spec.config.items() if isinstance(v, str | int | float | bool) or v is None}
    errors = []
    for overrides in (spec.config, scalar, {}):
        try:
            world = make_world(spec.name, **overrides)
        except (ValueError, TypeError, KeyError) as e:
            errors.append(str(e))
            continue
        ok = all(k in world.spec and world.spec[k].shape == spec[k].shape for k in spec.keys())
        if ok and world.spec.action.discrete == spec.action.discrete:
            return world
        world.close()
        errors.append(f"world {spec.name!r} built with {sorted(overrides)} has different modalities")
    raise ValueError(f"cannot rebuild the true world {spec.name!r} for the reality check: {errors[-1]}")


def dataset_context(ds: Any, c: int, i: int) -> Context:
    """The first `c` steps of dataset episode `i` as a context."""
    ep = ds.episode(i)
    n = len(next(iter(ep.values())))
    if n < c:
        raise ValueError(f"dataset episode {i} has {n} steps, fewer than the context of {c}")
    steps = {k: np.asarray(v[:c])[None] for k, v in ep.items()}  # {key: (1, C, *shape)}
    return Context(steps, f"dataset episode {i}, first {c} steps")


def latent_dataset_context(ds: Any, c: int, lam: Any, video_key: str, spec: WorldSpec, i: int) -> Context:
    """The first `c` steps of dataset episode `i`, its actions the latent ones inferred from its frames."""
    keys = [k for k in ds.spec.keys() if k in spec and spec[k].kind != "action"]
    ep = ds.episode(i, keys=keys)
    n = len(ep[video_key])
    if n < c:
        raise ValueError(f"dataset episode {i} has {n} steps, fewer than the context of {c}")
    steps = {k: np.asarray(v[:c])[None] for k, v in ep.items()}
    steps["action"] = lam.infer(ep[video_key][: c + 1])[:c][None]
    return Context(steps, f"dataset episode {i}, first {c} steps, latent actions inferred")


def load_stored_contexts(path: Path, spec: WorldSpec) -> list[dict[str, np.ndarray]]:
    """Contexts saved beside a run: safetensors `{key: (N, C, *shape)}` -> N contexts `{key: (1, C, *shape)}`."""
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(path))
    except Exception as e:
        raise ValueError(f"{path}: cannot read stored contexts ({e}); pass --data DIR instead") from e
    arrays = {k: v for k, v in arrays.items() if k in spec}
    if not arrays:
        raise ValueError(f"{path}: holds no key of world {spec.name!r} ({spec.keys()}); pass --data DIR instead")
    n = {v.shape[0] for v in arrays.values()}
    for k, v in arrays.items():
        if v.ndim < 2 or tuple(v.shape[2:]) != spec[k].shape:
            raise ValueError(f"{path}: {k} has shape {v.shape}, expected (N, C, *{spec[k].shape})")
    if len(n) != 1:
        raise ValueError(f"{path}: keys disagree on the number of contexts: {sorted(n)}")
    return [{k: v[i : i + 1] for k, v in arrays.items()} for i in range(n.pop())]


class Source:
    """Makes sessions, starting contexts and reality sessions for the server (see module docstring).

    Build it from a config with `Source.open(cfg)`, or directly around any `Session` factory:
    `Source(spec, make_session, contexts)` with `contexts` a list of `Context`s (or a function of the
    index), and `true_world` a factory of the true world for the reality check (None: no check).
    """

    def __init__(self, spec: WorldSpec, make_session: Callable[[], Session],
                 contexts: list[Context] | Callable[[int], Context], num_contexts: int | None = None,
                 context_length: int = DEFAULT_CONTEXT, true_world: Callable[[], Any] | None = None,
                 reality_reason: str = "") -> None:
        self.spec = spec
        self._make_session = make_session
        self._contexts = contexts
        self.num_contexts = len(contexts) if isinstance(contexts, list) else int(num_contexts or 1)
        if self.num_contexts < 1:
            raise ValueError(f"world {spec.name!r}: no starting contexts to play from")
        self.context_length = int(context_length)
        self._true_world = true_world
        self.reality_reason = reality_reason or ("" if true_world else "no true world to compare with")
        self.latent_of_true: dict[str, int] = {}  # play --map-actions: true action name -> latent action
        self._lock = threading.Lock()
        self._closers: list[Callable[[], None]] = []

    def action_map(self) -> Any:
        """The key bindings of this source's action (`protocol.ActionMap`); with `latent_of_true`, the arrow keys
        press the latent action each true direction maps to (digits still press latents 1..K)."""
        from genworld.serve.protocol import ActionMap, _direction_of_name

        amap = ActionMap.from_spec(self.spec)
        for name, latent in self.latent_of_true.items():
            d = _direction_of_name(name)
            if d is not None:
                amap.direction_choice[d] = int(latent)
        return amap

    @classmethod
    def open(cls, cfg: SourceConfig) -> Source:
        """A source from `--run` (with `--data` or the run's stored contexts) or `--world`."""
        if bool(cfg.run) == bool(cfg.world):
            raise ValueError("play: give either --run RUN (a trained model) or --world NAME (the true simulator)")
        if cfg.world:
            return cls._open_world(cfg)
        return cls._open_run(cfg)

    @classmethod
    def _open_world(cls, cfg: SourceConfig) -> Source:
        from genworld.rollout.sim import SimSession
        from genworld.worlds.base import make_world

        name = str(cfg.world)
        world = make_world(name)
        if not callable(getattr(world, "get_state", None)):
            world.close()
            raise ValueError(f"--world {name}: this world cannot be rewound, so it cannot be played here")
        c = int(cfg.context or 1)
        src = cls(world.spec, lambda: SimSession(lambda: make_world(name), 1),
                  lambda i: world_context(world, cfg.seed + i, c), num_contexts=1 << 16, context_length=c,
                  reality_reason="you are playing the true world itself")
        src._closers.append(world.close)
        return src

    @classmethod
    def _open_run(cls, cfg: SourceConfig) -> Source:
        from genworld.rollout.session import WorldSession

        run = Path(str(cfg.run))
        if not run.is_dir():
            raise FileNotFoundError(f"--run {run}: no such run directory (train one with `genworld train`)")
        first = WorldSession.load(run)
        spec: WorldSpec = first.spec

        def make() -> Session:  # sessions share the model (read-only at inference); each has its own cache
            return WorldSession(first.model, first.device, first.temperature, first.top_k)

        c = int(cfg.context or _config_context(run) or min(DEFAULT_CONTEXT, first.window))
        has_gt = True
        from genworld.train.latent import read_actions

        actions = read_actions(run)
        if cfg.data:
            from genworld.data import Dataset

            ds = Dataset(cfg.data)
            if actions["kind"] == "latent":  # the dataset's frames name their own latent actions
                from genworld.models.latent_actions import load_latent_actions

                lam, _ = load_latent_actions(str(run / actions["model"]))
                contexts: Any = functools.partial(latent_dataset_context, ds, c, lam, actions["video_key"], spec)
            else:
                if ds.spec.action.shape != spec.action.shape:
                    raise ValueError(f"--data {cfg.data}: its action {ds.spec.action.shape} does not match "
                                     f"the model's {spec.action.shape}")
                contexts = functools.partial(dataset_context, ds, c)
            n = int(ds.num_episodes)
        else:
            path = run / "contexts.safetensors"
            if not path.exists():
                raise FileNotFoundError(f"{run}: no stored contexts ({path.name}); pass --data DIR")
            stored = load_stored_contexts(path, spec)
            c = min(c, min(next(iter(s.values())).shape[1] for s in stored))
            contexts = [Context({k: v[:, :c] for k, v in s.items()}, f"stored context {i}, first {c} steps")
                        for i, s in enumerate(stored)]
            n = len(contexts)
            has_gt = any(k.startswith("gt.") for k in contexts[0].steps)
        reason = ""
        if actions["kind"] == "latent":
            reason = "the model's actions are latent ones learned from video: they cannot drive the real world"
        else:
            try:
                rebuild_world(spec).close()
            except Exception as e:  # an unknown world, a missing extra, a world that cannot rewind
                reason = str(e)
        if not reason and not has_gt:
            reason = "the stored contexts have no ground truth (gt.*) to rebuild the true world; pass --data DIR"
        src = cls(spec, make, contexts, num_contexts=n, context_length=c,
                   true_world=None if reason else (lambda: rebuild_world(spec)), reality_reason=reason)
        if cfg.map_actions:
            if actions["kind"] != "latent":
                raise ValueError(f"--map-actions: run {run} takes the dataset's own actions; nothing to map")
            if not actions.get("latent_of_true"):
                raise ValueError(f"--map-actions: run {run} was trained on a dataset without discrete true actions, "
                                 "so no key maps to a latent action (keys 1..K press them)")
            src.latent_of_true = dict(actions["latent_of_true"])
        return src

    def new_session(self) -> Session:
        """A fresh session (batch size 1) for one client."""
        return self._make_session()

    def context(self, i: int) -> Context:
        """Starting point number `i` (wrapped around the available ones)."""
        i = int(i) % self.num_contexts
        with self._lock:  # a world-backed context provider steps one shared world
            if isinstance(self._contexts, list):
                return self._contexts[i]
            return self._contexts(i)

    def start(self, session: Session, ctx: Context) -> dict[str, np.ndarray]:
        """Put `session` at the end of `ctx`; returns that step `{key: (1, *shape)}`."""
        from genworld.rollout.sim import SimSession

        if ctx.world_state is not None and isinstance(session, SimSession):
            session.restore([ctx.world_state])
            return {k: v[:, -1] for k, v in ctx.steps.items() if k != self.spec.action.key}
        return session.reset(ctx.steps)

    def new_reality(self, ctx: Context) -> Session | None:
        """The true world started from the same context, or None when the reality check is unavailable."""
        if self._true_world is None or self.reality_reason:
            return None
        from genworld.rollout.sim import SimSession

        sim = SimSession(self._true_world, 1)
        if ctx.world_state is not None:
            sim.restore([ctx.world_state])
        else:
            sim.reset(ctx.steps)
        return sim

    def close(self) -> None:
        for close in self._closers:
            close()


def world_context(world: Any, seed: int, c: int) -> Context:
    """C real steps from resetting `world` with `seed` and holding the idle action, with its final state."""
    act = world.spec.action
    idle = np.zeros(act.shape, dtype=act.dtype)
    steps = [world.reset(seed)]
    for _ in range(c - 1):
        obs, _, _ = world.step(idle)
        steps.append(obs)
    ctx = {k: np.stack([s[k] for s in steps])[None] for k in steps[0]}  # {key: (1, C, *shape)}
    ctx[act.key] = np.stack([idle] * c)[None]
    return Context(ctx, f"world {world.spec.name} seed {seed}", world.get_state())


def _config_context(run: Path) -> int | None:
    """The context length written in a run's config.json, if any (keys `context` or `context_length`)."""
    try:
        cfg = json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        return None
    stack = [cfg]
    while stack:
        d = stack.pop()
        if isinstance(d, dict):
            for k in ("context_length", "context"):
                if isinstance(d.get(k), int):
                    return int(d[k])
            stack.extend(d.values())
    return None
