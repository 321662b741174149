"""`genworld imagine`: train a policy with stable-baselines3 purely inside a world model (`DreamEnv`), then
score it in the real world; `in_world=True` trains the same algorithm in the real world for the same number
of steps, the reference.

The policy sees the vector modalities both sides have (proprioception and touch, concatenated: what the
model predicts well and the real world gives exactly) and acts with the world's action space. The reward is
the world's own (`next.reward`: the model's prediction of it inside the model), episodes end where the world
(or the model's predicted `next.done`) ends them or after `max_steps`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ALGOS = ("ppo", "a2c", "sac")


class ImagineError(ValueError):
    """A bad request: an algorithm that is not installed, a world without a reward, no vector observation."""


@dataclass
class ImagineConfig:
    run: str
    out: str
    algo: str = "ppo"
    steps: int = 20000
    """environment steps of training (inside the model, or in the world with in_world)"""
    in_world: bool = False
    seeds: int = 3
    eval_episodes: int = 10
    max_steps: int = 200
    """steps per episode, in training and in the real-world evaluation"""
    context: int = 4
    obs_keys: tuple[str, ...] | None = None
    """observation modalities of the policy (default: every proprio and touch modality)"""
    data: str | None = None
    """a dataset of the world: imagined episodes start from random windows of all its episodes (default: the
    few real contexts stored in the run)"""
    dream_steps: int | None = None
    """steps per imagined episode (default: 8 with `data`, else max_steps): short imagined episodes from many
    real starts leave a policy less room to exploit the model's errors"""


def _sb3(algo: str) -> Any:
    if algo not in ALGOS:
        raise ImagineError(f"--algo {algo!r} unknown; choose one of {', '.join(ALGOS)}")
    try:
        import stable_baselines3 as sb3
    except ImportError as e:
        raise ImagineError("learning inside the model needs stable-baselines3: pip install 'genworld[rl]'") from e
    return getattr(sb3, algo.upper())


def policy_keys(spec: Any, keys: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The vector modalities a policy sees: `keys`, or every proprio and touch modality of the world."""
    if keys:
        missing = [k for k in keys if k not in spec]
        if missing:
            raise ImagineError(f"observation keys {missing} are not modalities of {spec.name!r}")
        return tuple(keys)
    out = tuple(m.key for m in spec.modalities if m.kind in ("proprio", "touch"))
    if not out:
        raise ImagineError(f"world {spec.name!r} has no proprioception or touch for a policy to see "
                           "(name --obs-keys)")
    return out


def _flat(obs: dict[str, np.ndarray], keys: tuple[str, ...]) -> np.ndarray:
    return np.concatenate([np.asarray(obs[k], np.float32).reshape(-1) for k in keys]).astype(np.float32)


def _spaces(spec: Any, keys: tuple[str, ...]) -> tuple[Any, Any]:
    from gymnasium import spaces

    n = sum(int(np.prod(spec[k].shape)) for k in keys)
    obs = spaces.Box(-np.inf, np.inf, (n,), np.float32)
    a = spec.action
    if a.discrete:
        return obs, spaces.Discrete(a.n_choices)
    return obs, spaces.Box(-1.0 if a.low is None else a.low, 1.0 if a.high is None else a.high, a.shape, np.float32)


def _env_class() -> type:
    import gymnasium as gym

    class VectorEnv(gym.Env):
        """A genworld World or DreamEnv behind a flat vector observation."""

        def __init__(self, spec: Any, keys: tuple[str, ...], reset_fn: Callable[[int | None], dict],
                     step_fn: Callable[[Any], tuple[dict, float, bool]], max_steps: int) -> None:
            self.keys, self.reset_fn, self.step_fn, self.max_steps = keys, reset_fn, step_fn, max_steps
            self.observation_space, self.action_space = _spaces(spec, keys)
            self.discrete = spec.action.discrete
            self.t = 0

        def reset(self, *, seed: int | None = None, options: dict | None = None):  # noqa: ANN201
            super().reset(seed=seed)
            self.t = 0
            s = int(self.np_random.integers(2**31)) if seed is None else seed
            return _flat(self.reset_fn(s), self.keys), {}

        def step(self, action: Any):  # noqa: ANN201
            a = np.int64(action) if self.discrete else np.asarray(action, np.float32)
            if not self.discrete:
                a = np.clip(a, self.action_space.low, self.action_space.high)
            obs, r, done = self.step_fn(a)
            self.t += 1
            return _flat(obs, self.keys), float(r), bool(done), self.t >= self.max_steps, {}

    return VectorEnv


def real_env(world: Any, keys: tuple[str, ...], max_steps: int) -> Any:
    """The real world as a vector env."""
    return _env_class()(world.spec, keys, lambda s: world.reset(s), world.step, max_steps)


def dream_env(session: Any, keys: tuple[str, ...], max_steps: int, context: int,
              starts: list[dict[str, np.ndarray]] | None = None) -> Any:
    """The world model as a vector env: each episode starts from a real context, a random window of one of
    `starts` (episodes `{key: (T, *shape)}`) or else one of the run's stored contexts."""
    from genworld.rollout.dream_env import DreamEnv

    dream = DreamEnv(session, context=context, max_steps=max_steps)
    rng = np.random.default_rng(0)
    long_enough = [e for e in (starts or []) if len(next(iter(e.values()))) >= context]

    def reset(seed: int | None) -> dict:
        options = None
        if long_enough:
            ep = long_enough[int(rng.integers(len(long_enough)))]
            T = len(next(iter(ep.values())))
            s0 = int(rng.integers(0, T - context + 1))
            options = {"context": {k: v[None, s0:s0 + context] for k, v in ep.items()}}
        obs, _ = dream.reset(seed=seed, options=options)
        return obs

    def step(a: Any) -> tuple[dict, float, bool]:
        obs, r, term, _, _ = dream.step(a)
        return obs, r, term

    return _env_class()(session.spec, keys, reset, step, max_steps)


def evaluate_policy(model: Any, env: Any, episodes: int, seed: int) -> list[float]:
    """Undiscounted returns of the deterministic policy over `episodes` real episodes (seeds seed, seed+1, ...)."""
    out = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            a, _ = model.predict(obs, deterministic=True)
            obs, r, term, trunc, _ = env.step(a)
            total += r
            done = term or trunc
        out.append(total)
    return out


def _interval(x: list[float]) -> list[float]:
    """95% normal interval of the mean over seeds (t-free; a few seeds: read it as a rough band)."""
    if len(x) < 2:
        return [float(x[0]), float(x[0])] if x else [0.0, 0.0]
    m, s = float(np.mean(x)), float(np.std(x, ddof=1)) / math.sqrt(len(x))
    return [m - 1.96 * s, m + 1.96 * s]


def imagine(cfg: ImagineConfig, progress: Callable[[str], None] | None = print) -> dict:
    """Train `cfg.seeds` policies (inside the model, or in the world), score each in the real world; writes
    OUT/imagine.json and OUT/policy_seed<k>.zip (stable-baselines3's own format: parameters, no pickle of
    user data is ever loaded by genworld)."""
    from genworld.plan.runner import world_like
    from genworld.rollout.session import WorldSession

    Algo = _sb3(cfg.algo)
    if cfg.steps < 1 or cfg.seeds < 1 or cfg.eval_episodes < 1 or cfg.max_steps < 1 or (cfg.dream_steps or 1) < 1:
        raise ImagineError("--steps, --seeds, --eval-episodes, --max-steps and --dream-steps must all be >= 1")
    if not Path(cfg.run).is_dir():
        raise FileNotFoundError(f"run directory {cfg.run!r} not found (train one with `genworld train`)")
    session = WorldSession.load(cfg.run)
    spec = session.spec
    if not spec.of_kind("reward"):
        raise ImagineError(f"world {spec.name!r} of run {cfg.run!r} records no reward (next.reward): nothing to learn")
    keys = policy_keys(spec, cfg.obs_keys)
    world = world_like(spec.name, spec.config)
    if cfg.algo == "sac" and spec.action.discrete:
        raise ImagineError("--algo sac needs continuous actions; this world's are discrete (use ppo or a2c)")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    where = "world" if cfg.in_world else "model"
    starts = None
    if cfg.data and not cfg.in_world:
        from genworld.data import Dataset
        from genworld.train.data import check_compatible, model_keys

        ds = Dataset(cfg.data)
        check_compatible(spec, ds.spec, f"imagine --run {cfg.run} --data {cfg.data}")
        starts = [ds.episode(i, keys=model_keys(ds.spec)) for i in range(ds.num_episodes)]
    dream_steps = cfg.dream_steps or (min(8, cfg.max_steps) if starts else cfg.max_steps)
    returns, seconds = [], []
    for k in range(cfg.seeds):
        t0 = time.perf_counter()
        train_env = (real_env(world_like(spec.name, spec.config), keys, cfg.max_steps) if cfg.in_world
                     else dream_env(session, keys, dream_steps, cfg.context, starts))
        model = Algo("MlpPolicy", train_env, seed=k, verbose=0, device="cpu")
        model.learn(total_timesteps=cfg.steps)
        seconds.append(time.perf_counter() - t0)
        model.save(str(out / f"policy_seed{k}.zip"))
        r = evaluate_policy(model, real_env(world, keys, cfg.max_steps), cfg.eval_episodes, seed=10_000 + 100 * k)
        returns.append(float(np.mean(r)))
        if progress:
            progress(f"seed {k + 1}/{cfg.seeds}: trained {cfg.steps} steps in the {where} ({seconds[-1]:.0f} s); "
                     f"real-world return {returns[-1]:.2f} over {cfg.eval_episodes} episodes")
    rand = evaluate_policy(_RandomPolicy(real_env(world, keys, cfg.max_steps).action_space), real_env(world, keys,
                           cfg.max_steps), cfg.eval_episodes, seed=10_000)
    report = {
        "world": spec.name, "run": cfg.run, "algo": cfg.algo, "trained_in": where, "steps": cfg.steps,
        "observation_keys": list(keys), "seeds": cfg.seeds,
        "imagined_episode_steps": None if cfg.in_world else dream_steps,
        "imagined_starts": None if cfg.in_world else (f"random windows of the {len(starts)} episodes of {cfg.data}"
                                                      if starts else "the run's stored contexts"),
        "real_return_mean": float(np.mean(returns)), "real_return_ci95": _interval(returns),
        "real_return_per_seed": returns, "random_return_mean": float(np.mean(rand)),
        "train_seconds_mean": float(np.mean(seconds)),
        "evaluated_on": f"{cfg.eval_episodes} real episodes per seed (seeds 10000 + 100 k + i), at most "
                        f"{cfg.max_steps} steps, deterministic policy",
        "machine": {"cpu_count": os.cpu_count()}, "config": asdict(cfg),
    }
    tmp = out / "imagine.json.tmp"
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, out / "imagine.json")
    world.close()
    return report


class _RandomPolicy:
    def __init__(self, space: Any) -> None:
        self.space = space
        self.space.seed(0)

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[Any, None]:
        return self.space.sample(), None
