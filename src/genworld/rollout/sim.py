"""`SimSession`: the true simulator behind the `Session` protocol.

It holds B copies of a world that can be rewound (`get_state()` / `set_state(state)`) and steps
them in lockstep, so a planner, the play page or the evaluation can use the real physics through
the same door as the learned model. It is the ceiling a model-based planner is measured against.

Snapshots are lists of world states, one per future, so `restore([world.get_state()])` puts a
session exactly where a real world is.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from genworld.spec import WorldSpec
from genworld.worlds.base import World

WorldSource = World | Callable[[], World] | str


class SimSessionError(ValueError):
    """The world cannot do what the session was asked (rewind, rebuild from ground truth)."""


def _factory(source: WorldSource) -> tuple[World, Callable[[], World]]:
    """The first world and a way to make more copies of it."""
    if isinstance(source, str):
        from genworld.worlds.base import make_world

        return make_world(source), lambda: make_world(source)
    if isinstance(source, type) or (callable(source) and not hasattr(source, "step")):
        return source(), source
    first = source

    def clone() -> World:
        try:
            return copy.deepcopy(first)
        except Exception as e:  # a renderer or native handle that cannot be copied
            raise SimSessionError(
                f"SimSession: cannot copy world {first.spec.name!r} ({type(e).__name__}: {e}); "
                "pass a factory instead, e.g. SimSession(lambda: make_world(name), batch_size)"
            ) from e

    return first, clone


class SimSession:
    """B copies of a rewindable world, stepped in lockstep (implements `genworld.rollout.base.Session`)."""

    def __init__(self, world: WorldSource, batch_size: int = 1, seed: int | None = 0) -> None:
        """Build `batch_size` copies of `world` (a World, a factory returning one, or a registered name).

        A world passed in keeps its current state (it is reset with `seed` only if it has none yet); a
        world built here is reset with `seed`. Every future starts from that same state.
        """
        if batch_size < 1:
            raise SimSessionError(f"SimSession: batch_size must be >= 1, got {batch_size}")
        first, self._make = _factory(world)
        for name in ("get_state", "set_state"):
            if not callable(getattr(first, name, None)):
                raise SimSessionError(
                    f"SimSession: world {first.spec.name!r} has no {name}(); only rewindable worlds "
                    "(bounce, tabletop) can back a SimSession"
                )
        self.spec: WorldSpec = first.spec
        self._pool: list[World] = [first]
        self._b = 0
        state = None
        if first is world:
            try:
                state = first.get_state()
            except Exception:  # never reset: it has no state yet
                state = None
        if state is None:
            first.reset(seed)
            state = first.get_state()
        self._set_states([state] * batch_size)

    @classmethod
    def from_state(cls, world: WorldSource, state: Any, batch_size: int = 1) -> SimSession:
        """A session whose `batch_size` futures all start from the world state `state`."""
        session = cls(world, batch_size)
        session.restore([state] * batch_size)
        return session

    @property
    def batch_size(self) -> int:
        return self._b

    @property
    def worlds(self) -> list[World]:
        """The B live world copies (the rest of the pool is idle)."""
        return self._pool[: self._b]

    def _set_states(self, states: list[Any]) -> None:
        while len(self._pool) < len(states):
            self._pool.append(self._make())
        for w, s in zip(self._pool, states):
            w.set_state(copy.deepcopy(s))
        self._b = len(states)

    def reset(self, context: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Rebuild each future's state from the last context step's ground truth; returns that step.

        Needs a world with `state_from_gt(step) -> state` (bounce) and the `gt.*` keys in `context`.
        """
        state_from_gt = getattr(self._pool[0], "state_from_gt", None)
        if not callable(state_from_gt):
            raise SimSessionError(
                f"SimSession.reset: world {self.spec.name!r} cannot rebuild its state from observations "
                "(no state_from_gt); start with SimSession.from_state(world, world.get_state()) instead"
            )
        obs_keys = [k for k in context if k != self.spec.action.key]
        if not obs_keys:
            raise SimSessionError("SimSession.reset: context has no observation keys")
        b = int(np.asarray(context[obs_keys[0]]).shape[0])
        last = {k: np.asarray(context[k])[:, -1] for k in obs_keys}  # {key: (B, *shape)}
        states = []
        for i in range(b):
            try:
                states.append(state_from_gt({k: v[i] for k, v in last.items()}))
            except KeyError as e:
                raise SimSessionError(
                    f"SimSession.reset: context lacks ground truth {e} needed to rebuild the "
                    f"{self.spec.name!r} state; collect data with its gt.* columns"
                ) from e
        self._set_states(states)
        return last

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]:
        """Apply `action (B, *a)` to every copy; returns `{key: (B, *shape)}` with `next.reward`/`next.done`."""
        act = np.asarray(action)
        a_shape = self.spec.action.shape
        if act.shape != (self._b, *a_shape):
            raise SimSessionError(
                f"SimSession.step: action shape {act.shape}, expected {(self._b, *a_shape)} (batch, *action)"
            )
        outs, rewards, dones = [], [], []
        for w, a in zip(self.worlds, act):
            obs, r, d = w.step(a)
            outs.append(obs)
            rewards.append(r)
            dones.append(d)
        step = {k: np.stack([o[k] for o in outs]) for k in outs[0]}
        step["next.reward"] = np.asarray(rewards, dtype=np.float32)
        step["next.done"] = np.asarray(dones, dtype=bool)
        return step

    def observe(self, obs: dict[str, np.ndarray]) -> None:
        """Move each future to the real step `{key: (B, *shape)}`, rebuilt from its ground truth."""
        self.reset({k: np.asarray(v)[:, None] for k, v in obs.items()})

    def snapshot(self) -> list[Any]:
        """The B world states (deep copies), one per future."""
        return [copy.deepcopy(w.get_state()) for w in self.worlds]

    def restore(self, snap: list[Any]) -> None:
        """Return to a snapshot; its length sets the batch size."""
        if not isinstance(snap, list | tuple) or not snap:
            raise SimSessionError("SimSession.restore: expected a non-empty list of world states from snapshot()")
        self._set_states(list(snap))

    def expand(self, n: int) -> None:
        """Repeat each future n times in place (B -> B*n; future b becomes rows b*n .. b*n+n-1)."""
        if n < 1:
            raise SimSessionError(f"SimSession.expand: n must be >= 1, got {n}")
        self._set_states([s for s in self.snapshot() for _ in range(n)])

    def close(self) -> None:
        """Close every world copy."""
        for w in self._pool:
            w.close()
        self._pool = []
        self._b = 0
