"""Long free runs: the model and the true world stepped together with the same actions (`free_run` in report.json).

From the first C steps of a few scored episodes (batched), the model (temperature 0) and a twin of the world
are stepped N = `--free-steps` times with the same actions: each episode's own a_{C-1}, ... while the
shortest lasts, then uniform random actions in the world's action space. The twin is the world itself,
started where the context ends, by one of two routes:

* rebuilt from the ground truth of step C-1 (`SimSession.reset`: worlds with `state_from_gt`);
* replayed: reset with the episode's collect seed (`collect.episode_seed` of the recipe in meta/info.json)
  and stepped through the dataset's actions a_0 .. a_{C-2}; step C-1 must come out as recorded (frame and
  every gt.* column, exactly), or the twin is unavailable.

The evaluator's object reader (the one its identity block uses), behind an `ObjectCounter`, reads the
model's frames against the world's step by step; rates pool over runs and steps by the world's visible
object-frames, over the whole run and over each quarter of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

RATES = ("persistence", "spawn_rate", "colour_change_rate", "size_change_rate")
QUARTERS = 4
SCORED = 240  # steps read per run at most, evenly spaced


class ObjectCounter(Protocol):
    """An object reader scoring a system's frames against the world's, step by step."""

    method: str  # how it reads and what it counts, for the report
    unread: dict[str, str]  # rates it cannot measure, with why

    def counts(self, systems: dict[str, np.ndarray], truth: np.ndarray, steps: dict[str, np.ndarray]
               ) -> dict[str, dict[str, np.ndarray]]:
        """Per system, per-step counts (T,) of its frames (T, S, S, 3) against the world's frames (T, S, S, 3) and
        steps {key: (T, ...)}: `objects` (visible in the world), `present`, `spawn`, `colour`, `size`. Frame 0 is
        the real anchor and is not scored; a system whose frames are `truth` itself is the reader's floor (the
        world's frames are read once)."""
        ...


def free_actions(episodes: list[dict[str, np.ndarray]], C: int, steps: int, action: Any,
                 rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """(B, steps, *a) actions: each episode's own a_{C-1}, .. while the shortest lasts, then uniform random ones
    in the action space `action`; and how they were chosen."""
    from genworld.plan.planner import random_actions

    own = min(len(ep[action.key]) for ep in episodes) - (C - 1)
    acts = np.stack([ep[action.key][C - 1: C - 1 + min(own, steps)] for ep in episodes])  # (B, <=steps, *a)
    if own < steps:
        extra = random_actions(action, rng, (len(episodes), steps - own)).astype(acts.dtype)
        acts = np.concatenate([acts, extra], 1)
    how = (f"the dataset's own actions for all {steps} steps" if own >= steps else
           f"the dataset's own actions for the first {own} steps (the shortest episode's), then uniform random "
           "actions in the world's action space")
    return acts, how


def recipe_world(ds: Any) -> Callable[[], Any] | None:
    """A factory of the world `genworld collect` recorded the dataset with (meta/info.json), or None."""
    recipe = ds.info.get("genworld_collect")
    if not isinstance(recipe, dict) or "world" not in recipe:
        return None

    def make() -> Any:
        from genworld.worlds.base import make_world

        return make_world(str(recipe["world"]), **dict(recipe.get("overrides") or {}))

    return make


def twin_session(make: Callable[[], Any], ds: Any, ids: list[int], episodes: list[dict[str, np.ndarray]],
                 C: int) -> tuple[Any, str]:
    """(SimSession of the world placed at step C-1 of each episode, how) or (None, why it cannot be)."""
    from genworld.evaluate.rollout import context_of
    from genworld.rollout.sim import SimSession, SimSessionError

    try:
        sim = SimSession(make, len(episodes))
    except (SimSessionError, ValueError, ImportError, RuntimeError, KeyError) as e:
        return None, f"the world cannot be re-simulated here ({type(e).__name__}: {e})"
    spec = ds.spec
    mine, theirs = json.loads(json.dumps(sim.spec.config or {})), json.loads(json.dumps(spec.config or {}))
    if sim.spec.name != spec.name or mine != theirs:
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        sim.close()
        return None, (f"the world rebuilt for the dataset ({sim.spec.name!r}) differs from the dataset's "
                      f"({spec.name!r}) in config {diff}: it cannot stand in for it")
    if callable(getattr(sim.worlds[0], "state_from_gt", None)):
        try:
            sim.reset(context_of(episodes, 0, C, list(episodes[0])))
            return sim, f"the world rebuilt from the ground truth of step {C - 1} of each episode (state_from_gt)"
        except (SimSessionError, ValueError, KeyError):
            pass  # the dataset lacks the ground truth: replay instead
    recipe = ds.info.get("genworld_collect") or {}
    if "seed" not in recipe:
        sim.close()
        return None, (f"world {spec.name!r} cannot be rebuilt from this dataset's ground truth, and the dataset "
                      "records no collect seed (meta/info.json genworld_collect) to replay its episodes from")
    reason = _replay(sim, int(recipe["seed"]), ids, episodes, C)
    if reason:
        sim.close()
        return None, reason
    return sim, (f"the world reset with each episode's collect seed (collect seed {recipe['seed']}) and stepped "
                 f"through its recorded actions a_0 .. a_{C - 2}; step {C - 1} came out as recorded")


def _replay(sim: Any, seed: int, ids: list[int], episodes: list[dict[str, np.ndarray]], C: int) -> str:
    """Place every future of `sim` at step C-1 of its episode by replaying it from its seed; why not, or ""."""
    from genworld.worlds.collect import episode_seed

    world, akey, states = sim.worlds[0], sim.spec.action.key, []
    video = [m.key for m in sim.spec.of_kind("video")]
    for i, ep in zip(ids, episodes):
        obs = world.reset(seed=episode_seed(seed, int(i)))
        for a in ep[akey][: C - 1]:
            obs, _, _ = world.step(a)
        bad = [k for k in obs if (k in video or k.startswith("gt.")) and k in ep
               and not np.array_equal(np.asarray(obs[k]), ep[k][C - 1])]
        if bad:
            return (f"replaying episode {i} from its collect seed did not reproduce its step {C - 1} ({bad} "
                    "differ): the dataset is not this world's deterministic record")
        states.append(world.get_state())
    sim.restore(states)
    return ""


def step_together(sess: Any, twin: Any, episodes: list[dict[str, np.ndarray]], C: int, acts: np.ndarray,
                  keep: Callable[[str], bool]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Model steps {key: (B, N, ...)} and the twin's {key: (B, N, ...)} (the keys `keep` takes; None without a
    twin), both under actions (B, N, *a); the model starts from the episodes' first C steps."""
    from genworld.evaluate.rollout import context_of

    sess.reset(context_of(episodes, 0, C, list(episodes[0])))
    model: list[dict[str, np.ndarray]] = []
    world: list[dict[str, np.ndarray]] = []
    for t in range(acts.shape[1]):
        model.append(sess.step(acts[:, t]))
        if twin is not None:
            world.append({k: v for k, v in twin.step(acts[:, t]).items() if keep(k)})
    stack = lambda rows: {k: np.stack([r[k] for r in rows], 1) for k in rows[0]}  # noqa: E731
    return stack(model), stack(world) if twin is not None else None


def _pooled(counter: ObjectCounter, systems: dict[str, np.ndarray], truth: np.ndarray, steps: dict[str, np.ndarray]
            ) -> dict[str, dict[str, np.ndarray]]:
    """Per system, per-step counts (N,) summed over runs, of frames (B, N+1, ...) against the world's (frame 0 the
    anchor); a system given as `truth` itself is the world read against itself."""
    tot: dict[str, dict[str, np.ndarray]] = {n: {} for n in systems}
    for b in range(len(truth)):
        run = {n: truth[b] if f is truth else f[b] for n, f in systems.items()}
        for n, c in counter.counts(run, truth[b], {k: v[b] for k, v in steps.items()}).items():
            for k, v in c.items():
                tot[n][k] = tot[n].get(k, 0.0) + np.asarray(v, np.float64)[1:]
    return tot


def rates(c: dict[str, np.ndarray], sel: Any = slice(None)) -> dict[str, Any]:
    """Persistence and spawn, colour-change and size-change rates per visible world object-frame of counts `c`
    (the steps `sel` picks)."""
    n = float(c["objects"][sel].sum())
    key = {"persistence": "present", "spawn_rate": "spawn", "colour_change_rate": "colour", "size_change_rate": "size"}
    out: dict[str, Any] = {r: (float(c[k][sel].sum()) / n if n and k in c else None) for r, k in key.items()}
    return out | {"object_frames": int(n)}


def score(c: dict[str, np.ndarray], at: np.ndarray, N: int) -> dict[str, Any]:
    """Rates of counts (M,) at steps `at` (M,) (1 .. N) over the whole run and per quarter of its N steps."""
    quarters = []
    for part in np.array_split(np.arange(1, N + 1), QUARTERS):
        sel = (at >= part[0]) & (at <= part[-1]) if len(part) else np.zeros(len(at), bool)
        quarters.append({"steps": [int(part[0]), int(part[-1])] if len(part) else [], **rates(c, sel)})
    return {**rates(c), "quarters": quarters}


def free_run_block(counter: ObjectCounter, model: np.ndarray, truth: np.ndarray, steps: dict[str, np.ndarray],
                   ids: list[int], how: str, world: str, C: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(report, reference) of the model's frames (B, N+1, S, S, 3) against the world's and of the world's against
    themselves (the reader's floor), frame 0 the real step C-1; `how` the actions, `world` how the twin began.

    At most `SCORED` steps of each run are read, evenly spaced (every ceil(N / SCORED)-th): reading costs more
    than stepping, and neighbouring steps show nearly the same objects."""
    N = model.shape[1] - 1
    every = -(-N // SCORED)
    at = np.arange(every, N + 1, every)  # (M,) scored steps
    idx = np.concatenate([[0], at])  # with the anchor
    sub, seen = {k: v[:, idx] for k, v in steps.items()}, truth[:, idx]
    c = _pooled(counter, {"model": model[:, idx], "world": seen}, seen, sub)
    out = {"available": True, **score(c["model"], at, N), "steps": N, "scored_every": int(every),
           "contexts": len(model), "episodes": list(ids), "actions": how, "world": world, "temperature": 0.0,
           "method": (f"the model (temperature 0) and the world stepped together {N} times from step C-1 = {C - 1} "
                      f"of {len(model)} episodes with the same actions; {counter.method}; scored at {len(at)} evenly "
                      f"spaced steps of each run (every {every}); rates per visible world object-frame, pooled over "
                      "runs and steps, over the whole run and each quarter")}
    for k, why in counter.unread.items():
        out.setdefault("unread", {})[k] = why
    return out, {"available": True, **score(c["world"], at, N),
                 "note": "the world's frames read by the same reader against themselves: the reader's floor"}
