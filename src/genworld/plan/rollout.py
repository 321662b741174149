"""Roll N candidate action sequences out as one batch through a Session and score them.

The session sits at the current state with batch size 1. `BatchEvaluator` snapshots it, expands it
to N futures, steps them H times with the candidates' actions, sums the cost of every predicted step
and restores the snapshot, so the session is unchanged when planning ends. The same evaluator runs
inside the learned model (`WorldSession`) and inside the true simulator (`SimSession`).
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np

from genworld.rollout.base import Session


class StepCost(Protocol):
    """The cost of one predicted step for each of N futures (lower is better)."""

    def __call__(self, step: dict[str, np.ndarray], t: int, session: Session) -> np.ndarray:
        """`step` is `{key: (N, *shape)}` returned by `session.step`; `t` counts from 0; returns `(N,)`."""
        ...


class BatchEvaluator:
    """`evaluate(actions (N, H, *a)) -> cost (N,)` through `session` (restored afterwards)."""

    def __init__(self, session: Session, cost: StepCost, discount: float = 1.0) -> None:
        self.session = session
        self.cost = cost
        self.discount = discount
        self.seconds = 0.0  # time spent rolling out, summed over calls
        self.calls = 0

    def __call__(self, actions: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        n, h = actions.shape[:2]
        if self.session.batch_size != 1:
            raise RuntimeError(f"BatchEvaluator: the session must hold 1 future, it holds {self.session.batch_size}")
        snap = self.session.snapshot()
        self.session.expand(n)
        total = np.zeros(n, np.float64)
        for t in range(h):
            step = self.session.step(actions[:, t])
            total += (self.discount**t) * np.asarray(self.cost(step, t, self.session), np.float64)
        self.session.restore(snap)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return total
