"""CEM and MPPI over action sequences, with receding-horizon control and warm starts.

A planner knows nothing of worlds or models: it is handed `evaluate(actions (N, H, *a)) -> cost (N,)`,
which rolls all N candidate sequences out as one batch (see `genworld.plan.rollout.BatchEvaluator`)
and returns their costs (lower is better). It keeps a Gaussian over continuous sequences (mean and
std per step and dimension) or categorical probabilities over discrete ones, refines it for a few
iterations, executes the first action, and shifts the distribution one step for the next call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from genworld.spec import Modality

Evaluate = Callable[[np.ndarray], np.ndarray]


class PlannerError(ValueError):
    """A planner was configured with an impossible budget or method."""


@dataclass
class PlannerConfig:
    """Budget and shape of the search."""

    method: str = "cem"
    """cem (keep the elites) or mppi (weight every sample by exp(-cost / temperature))"""
    samples: int = 64
    """candidate action sequences per iteration, rolled out as one batch"""
    iterations: int = 3
    """refinements of the sampling distribution per plan"""
    horizon: int = 8
    """steps of each candidate sequence"""
    elite_frac: float = 0.125
    """CEM: fraction of samples kept as elites"""
    temperature: float = 0.5
    """MPPI: temperature in units of the candidates' cost spread (scale-free)"""
    init_std: float = 0.6
    """initial std of the action Gaussian, as a fraction of the action range"""
    min_std: float = 0.05
    """floor on the std, as a fraction of the action range"""
    replan_every: int = 1
    """control steps executed from one plan before planning again"""
    seed: int = 0

    def check(self) -> PlannerConfig:
        """Raise PlannerError on a budget that cannot run; returns self."""
        if self.method not in ("cem", "mppi"):
            raise PlannerError(f"planner method {self.method!r} unknown; use cem or mppi")
        for name in ("samples", "iterations", "horizon", "replan_every"):
            if int(getattr(self, name)) < 1:
                raise PlannerError(f"planner budget: {name} must be >= 1, got {getattr(self, name)}")
        if self.replan_every > self.horizon:
            raise PlannerError(f"replan_every {self.replan_every} exceeds the horizon {self.horizon}")
        if self.method == "cem" and self.samples < 2:
            raise PlannerError("CEM needs at least 2 samples")
        return self

    @property
    def budget(self) -> str:
        """samples x iterations x horizon, as written on the command line."""
        return f"{self.samples},{self.iterations},{self.horizon}"


class Planner:
    """Receding-horizon CEM / MPPI for one action modality (continuous, or discrete via categoricals)."""

    def __init__(self, cfg: PlannerConfig, action: Modality) -> None:
        self.cfg = cfg.check()
        self.action = action
        self.discrete = action.discrete
        lo = -1.0 if action.low is None else float(action.low)
        hi = 1.0 if action.high is None else float(action.high)
        self.low, self.high, self.span = lo, hi, (hi - lo) / 2
        self.rng = np.random.default_rng(cfg.seed)
        self.reset()

    def reset(self) -> None:
        """Forget the warm start (call at the start of an episode)."""
        h = self.cfg.horizon
        if self.discrete:
            self.probs = np.full((h, self.action.n_choices), 1.0 / self.action.n_choices)  # (H, n)
        else:
            self.mean = np.full((h, *self.action.shape), (self.low + self.high) / 2)  # (H, *a)
        self._queue: list[np.ndarray] = []

    def act(self, evaluate: Evaluate) -> np.ndarray:
        """The next action `(*a)`: replans when the last plan's first `replan_every` actions are used."""
        if not self._queue:
            plan = self.plan(evaluate)
            self._queue = list(plan[: self.cfg.replan_every])
            self._shift(self.cfg.replan_every)
        return self._queue.pop(0)

    def plan(self, evaluate: Evaluate) -> np.ndarray:
        """Refine the sampling distribution `iterations` times; returns the planned sequence `(H, *a)`."""
        if self.discrete:
            return self._plan_discrete(evaluate)
        cfg, n = self.cfg, self.cfg.samples
        mean, std = self.mean, np.full_like(self.mean, cfg.init_std * self.span)
        for _ in range(cfg.iterations):
            noise = self.rng.standard_normal((n, *mean.shape))
            acts = np.clip(mean + std * noise, self.low, self.high)  # (N, H, *a)
            acts[0] = np.clip(mean, self.low, self.high)  # the warm-started mean is always a candidate
            cost = np.asarray(evaluate(acts.astype(np.float32)), np.float64)  # (N,)
            w = self._weights(cost)  # (N,), sums to 1
            mean = np.einsum("n,n...->...", w, acts)
            var = np.einsum("n,n...->...", w, (acts - mean) ** 2)
            std = np.maximum(np.sqrt(var), cfg.min_std * self.span)
        self.mean = mean
        return mean.astype(np.float32)

    def _weights(self, cost: np.ndarray) -> np.ndarray:
        """CEM: uniform over the elites. MPPI: softmax of -cost over all samples."""
        if not np.all(np.isfinite(cost)):
            raise PlannerError("planner: the cost of some candidates is NaN or inf; check the goal and the model")
        if self.cfg.method == "cem":
            k = max(2, int(round(self.cfg.elite_frac * len(cost))))
            w = np.zeros_like(cost)
            w[np.argsort(cost, kind="stable")[:k]] = 1.0 / k
            return w
        scale = self.cfg.temperature * (cost.std() + 1e-8)
        w = np.exp(-(cost - cost.min()) / scale)
        return w / w.sum()

    def _plan_discrete(self, evaluate: Evaluate) -> np.ndarray:
        """The categorical version: sample choices per step, re-estimate their probabilities."""
        cfg, n = self.cfg, self.cfg.samples
        probs = self.probs
        h, k = probs.shape
        floor = cfg.min_std / k
        for _ in range(cfg.iterations):
            u = self.rng.random((n, h, 1))
            acts = (u > np.cumsum(probs, axis=1)[None]).sum(-1).clip(0, k - 1)  # (N, H) ints
            acts[0] = probs.argmax(1)
            w = self._weights(np.asarray(evaluate(acts.astype(np.int64)), np.float64))
            probs = np.einsum("n,nhk->hk", w, np.eye(k)[acts]) + floor
            probs /= probs.sum(1, keepdims=True)
        self.probs = probs
        return probs.argmax(1).astype(np.int64)

    def _shift(self, k: int) -> None:
        """Warm start: drop the k executed steps and pad the end with the neutral distribution."""
        if self.discrete:
            pad = np.full((k, self.probs.shape[1]), 1.0 / self.probs.shape[1])
            self.probs = np.concatenate([self.probs[k:], pad])
        else:
            pad = np.full((k, *self.mean.shape[1:]), (self.low + self.high) / 2)
            self.mean = np.concatenate([self.mean[k:], pad])


def random_actions(action: Modality, rng: np.random.Generator, lead: tuple[int, ...] = ()) -> np.ndarray:
    """Uniformly random actions `(*lead, *a)` in the action's range ([-1, 1] where it declares none): the floor
    every planner is compared with, and the actions of free runs."""
    if action.discrete:
        return np.asarray(rng.integers(0, action.n_choices, lead), np.int64)
    lo = -1.0 if action.low is None else float(action.low)
    hi = 1.0 if action.high is None else float(action.high)
    return rng.uniform(lo, hi, size=(*lead, *action.shape)).astype(np.float32)
