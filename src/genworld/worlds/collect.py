"""`genworld collect`: run a world under an exploration policy and record episodes as a dataset.

Episode i is seeded by (seed, i) alone, so the data do not depend on the number of workers or on
where an interrupted collect resumed. Workers (processes) simulate; the main process writes episodes
in index order, committing a file every `episodes_per_file` episodes. Ctrl-C or SIGTERM commits the
finished episodes and exits; running the same command again continues where it stopped.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from genworld.spec import WorldSpec
from genworld.worlds.base import make_world, registered_worlds

NEXT_KEYS = ("next.reward", "next.done")


@dataclass
class CollectConfig:
    """One `genworld collect` job."""

    world: str
    episodes: int
    steps: int
    out: str
    seed: int = 0
    workers: int = 1
    policy: str | None = None
    """exploration policy (default: `mixed` where the world has it, else `random`)"""
    overrides: dict[str, Any] = field(default_factory=dict)
    """world config overrides, as from `--set key=value`"""
    episodes_per_file: int = 8
    progress: bool = True


def episode_seed(seed: int, index: int) -> int:
    """The world seed of episode `index` of a collect with `seed` (a pure function of both)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint32)[0])


def record_episode(world: Any, policy_name: str, seed: int, index: int, steps: int) -> dict[str, np.ndarray]:
    """Run one episode: step t holds o_t, a_t, and next.reward/next.done from step(a_t). {key: (T, *shape)}."""
    spec: WorldSpec = world.spec
    s = episode_seed(seed, index)
    obs = world.reset(seed=s)
    policy = world.policy(policy_name, np.random.default_rng([seed, index, 1]))
    act_key = spec.action.key
    obs_keys = [m.key for m in spec.modalities if m.key != act_key and m.key not in NEXT_KEYS]
    rows: dict[str, list[np.ndarray]] = {k: [] for k in spec.keys()}
    for _ in range(steps):
        action = np.asarray(policy(obs), dtype=spec.action.dtype)
        nobs, reward, done = world.step(action)
        for k in obs_keys:
            rows[k].append(np.asarray(obs[k]))
        rows[act_key].append(action)
        if "next.reward" in rows:
            rows["next.reward"].append(np.asarray(reward, np.float32))
        if "next.done" in rows:
            rows["next.done"].append(np.asarray(bool(done)))
        obs = nobs
        if done:
            break
    return {k: np.stack(v) for k, v in rows.items()}


# -- worker processes ----------------------------------------------------------------------------
_WORLD: Any = None
_JOB: tuple[str, int, int] = ("", 0, 0)


def _init_worker(world: str, overrides: dict[str, Any], policy: str, seed: int, steps: int) -> None:
    global _WORLD, _JOB
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORLD = make_world(world, **overrides)
    _JOB = (policy, seed, steps)


def _work(index: int) -> tuple[int, dict[str, np.ndarray]]:
    policy, seed, steps = _JOB
    return index, record_episode(_WORLD, policy, seed, index, steps)


def default_policy(world: str) -> str:
    entry = registered_worlds().get(world.partition(":")[0])
    return "mixed" if entry is not None and "mixed" in entry.policies else "random"


class _Stop(Exception):
    pass


def _stop_pool(pool: Any, finished: bool) -> None:
    """Let idle workers exit on their own after a finished job; otherwise terminate, and kill any that linger."""
    if finished:
        pool.close()
    else:
        pool.terminate()
    workers = list(getattr(pool, "_pool", []))
    for p in workers:
        p.join(timeout=10)
        if p.is_alive():  # a library in the worker (SDL, for one) may ignore SIGTERM
            p.kill()
    pool.join()


def collect(cfg: CollectConfig) -> dict[str, Any]:
    """Run the job; returns a summary. Raises ValueError/DatasetError on bad input."""
    from tqdm import tqdm

    from genworld.data import DatasetWriter

    if cfg.episodes < 1 or cfg.steps < 1 or cfg.workers < 1:
        raise ValueError(f"--episodes, --steps and --workers must be >= 1 (got {cfg.episodes}, {cfg.steps}, "
                         f"{cfg.workers})")
    policy = cfg.policy or default_policy(cfg.world)
    world = make_world(cfg.world, **cfg.overrides)
    try:
        entry = registered_worlds()[cfg.world.partition(":")[0]]
        if policy not in entry.policies:
            raise ValueError(f"world {cfg.world!r} has no policy {policy!r}; it has {list(entry.policies)}")
        spec = world.spec
        recipe = {"world": cfg.world, "seed": cfg.seed, "policy": policy, "steps": cfg.steps,
                  "overrides": {k: str(v) for k, v in sorted(cfg.overrides.items())}}
        writer = DatasetWriter(cfg.out, spec, episodes_per_file=cfg.episodes_per_file,
                               extra_info={"genworld_collect": recipe})
        first = writer.num_episodes
        summary: dict[str, Any] = {"out": cfg.out, "world": cfg.world, "policy": policy, "resumed_at": first}
        if first >= cfg.episodes:
            writer.close()
            return {**summary, "episodes": first, "new_episodes": 0, "complete": True, "already_complete": True}
        todo = range(first, cfg.episodes)
        old_term = signal.getsignal(signal.SIGTERM)

        def on_term(*_: Any) -> None:
            raise _Stop()

        signal.signal(signal.SIGTERM, on_term)
        pool = None
        steps_done, t0, stopped, finished = 0, time.perf_counter(), False, False
        bar = tqdm(total=len(todo), desc=f"collect {cfg.world}", unit="ep", disable=not cfg.progress,
                   initial=0, dynamic_ncols=True)
        try:
            task = spec.config.get("description") or cfg.world  # a language instruction where the world has one
            if cfg.workers == 1:
                results: Any = ((i, record_episode(world, policy, cfg.seed, i, cfg.steps)) for i in todo)
            else:
                ctx = mp.get_context("spawn")  # no simulator or GL state is inherited
                pool = ctx.Pool(cfg.workers, _init_worker, (cfg.world, cfg.overrides, policy, cfg.seed, cfg.steps))
                results = pool.imap(_work, todo, chunksize=1)
            for i, ep in results:
                got = writer.add_episode(ep, task=task)
                assert got == i, (got, i)
                steps_done += len(ep[spec.action.key])
                bar.update(1)
                bar.set_postfix(steps_per_s=f"{steps_done / (time.perf_counter() - t0):.0f}")
            finished = True
        except (KeyboardInterrupt, _Stop):
            stopped = True
        finally:
            bar.close()
            if pool is not None:
                _stop_pool(pool, finished)
            signal.signal(signal.SIGTERM, old_term)
            writer.close()  # commits every finished episode
        seconds = time.perf_counter() - t0
        return {**summary, "episodes": writer.num_episodes, "new_episodes": writer.num_episodes - first,
                "complete": writer.num_episodes >= cfg.episodes and not stopped, "interrupted": stopped,
                "steps": steps_done, "seconds": round(seconds, 2),
                "steps_per_s": round(steps_done / max(seconds, 1e-9), 1), "config": asdict(cfg)}
    finally:
        world.close()


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """['key=value', ...] -> {key: 'value'} (the world converts the strings by field type)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected key=value, e.g. --set n_objects=3")
        out[key.strip()] = value.strip()
    return out

