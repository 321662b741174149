"""The world protocol, the policy protocol and the registry of worlds.

A world is a simulator or game behind `reset(seed)` and `step(action)`. Step t of an episode, as
recorded by `genworld collect`, holds the observation o_t (every non-action modality, ground truth
included), the action a_t chosen after seeing o_t, and `next.reward` / `next.done` returned by
`step(a_t)`. Sound and touch in o_{t+1} are what happened during the transition t -> t+1, so a model
that sees o_t and a_t is asked to predict exactly the consequences of a_t.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from genworld.spec import WorldSpec


class UnknownWorldError(KeyError):
    """The world name is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; a person should read plain text
        return str(self.args[0])


class MissingExtraError(ImportError):
    """A world needs an optional dependency that is not installed."""


@runtime_checkable
class World(Protocol):
    """A steppable world that produces every modality of its spec."""

    spec: WorldSpec

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start an episode; returns o_0: every non-action, non-reward/done key of the spec."""
        ...

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool]:
        """Apply a_t; returns (o_{t+1}, reward, done)."""
        ...

    def policy(self, name: str, rng: np.random.Generator) -> Policy:
        """An exploration policy by name (every world has at least `random`)."""
        ...

    def close(self) -> None: ...


class Policy(Protocol):
    """Chooses a_t from o_t (which may include ground truth: exploration may cheat, models may not)."""

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class WorldEntry:
    """A registered world: a factory taking the name's suffix (after ':') and keyword overrides."""

    name: str
    factory: Callable[..., World]
    description: str
    extra: str = ""  # the pip extra it needs, named in errors
    policies: tuple[str, ...] = ("random",)
    tasks: tuple[tuple[str, str], ...] = ()  # (task name, "module:Class") for `genworld plan`, imported lazily


_REGISTRY: dict[str, WorldEntry] = {}


def register_world(
    name: str,
    factory: Callable[..., World],
    description: str,
    extra: str = "",
    policies: tuple[str, ...] = ("random",),
    tasks: dict[str, str] | None = None,
) -> None:
    """Register a world. `factory(arg, **overrides)` gets the part after ':' (or None) in `arg`.

    Example (a user's own world, in a few lines):

        from genworld.worlds import register_world
        register_world("myworld", lambda arg, **kw: MyWorld(**kw), "my robot in my lab")

    `tasks` names the world's planning tasks, each as "module:Class" (imported when used): the class takes
    the task's name and keyword overrides, and implements `genworld.plan.episode.Task`.
    """
    _REGISTRY[name] = WorldEntry(name, factory, description, extra, tuple(policies), tuple((tasks or {}).items()))


def _load_builtins() -> None:
    # Importing the modules registers them; each imports its simulator lazily inside its factory.
    import genworld.worlds.builtin  # noqa: F401


def registered_worlds() -> dict[str, WorldEntry]:
    """All registered worlds by name (built-ins included)."""
    _load_builtins()
    return dict(_REGISTRY)


def make_world(name: str, **overrides: Any) -> World:
    """Build a world from its name: `bounce`, `bounce-gravity`, `tabletop`, `arcade:Breakout`, `gym:CartPole-v1`."""
    _load_builtins()
    base, _, arg = name.partition(":")
    entry = _REGISTRY.get(base)
    if entry is None:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownWorldError(f"unknown world {name!r}; known worlds: {known} (see `genworld worlds`)")
    try:
        return entry.factory(arg or None, **overrides)
    except ImportError as e:
        if entry.extra and not isinstance(e, MissingExtraError):
            raise MissingExtraError(
                f"world {name!r} needs the optional dependency {e.name or e}: pip install 'genworld[{entry.extra}]'"
            ) from e
        raise
