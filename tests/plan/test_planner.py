"""CEM and MPPI reach a target through a SimSession; budgets are checked; warm starts shift."""

from __future__ import annotations

import numpy as np
import pytest

from genworld.plan.planner import Planner, PlannerConfig, PlannerError, random_actions
from genworld.plan.rollout import BatchEvaluator
from genworld.rollout.sim import SimSession
from genworld.spec import Modality, WorldSpec


class Cart:
    """A 1-D cart with inertia: reaching a point needs braking ahead of time (continuous or 3 choices)."""

    def __init__(self, discrete: bool = False) -> None:
        act = (Modality("action", "action", (), 10, dtype="int64", discrete=True, names=("left", "stay", "right"))
               if discrete else Modality("action", "action", (1,), 10, low=-1, high=1))
        self.spec = WorldSpec("cart", 10, (Modality("observation.state", "proprio", (2,), 10), act))
        self.discrete = discrete
        self.s = np.zeros(2)

    def reset(self, seed=None):
        self.s = np.zeros(2)
        return {"observation.state": self.s.astype(np.float32)}

    def step(self, action):
        a = float(action) - 1.0 if self.discrete else float(np.asarray(action).reshape(-1)[0])
        v = 0.95 * self.s[1] + 0.05 * a
        self.s = np.array([self.s[0] + v, v])
        return {"observation.state": self.s.astype(np.float32)}, 0.0, False

    def get_state(self):
        return self.s.copy()

    def set_state(self, s):
        self.s = np.array(s, dtype=np.float64)

    def policy(self, name, rng):
        return lambda obs: random_actions(self.spec.action, rng)

    def close(self):
        pass


def _distance_cost(step, t, session):
    return np.abs(step["observation.state"][:, 0] - 1.0)


def _drive(method: str, discrete: bool = False, steps: int = 40, **kw) -> float:
    """Closed loop on the real cart with plans from a SimSession; returns the final distance to x = 1."""
    real = Cart(discrete)
    real.reset()
    session = SimSession(lambda: Cart(discrete), batch_size=1)
    cfg = PlannerConfig(method=method, samples=32, iterations=3, horizon=10, seed=1, **kw)
    planner = Planner(cfg, real.spec.action)
    for _ in range(steps):
        session.restore([real.get_state()])
        a = planner.act(BatchEvaluator(session, _distance_cost))
        real.step(a)
        assert session.batch_size == 1  # the evaluator restores the session after every plan
    return abs(real.s[0] - 1.0)


@pytest.mark.parametrize("method", ["cem", "mppi"])
def test_planners_reach_the_target_and_random_does_not(method: str) -> None:
    assert _drive(method) < 0.15
    misses = []
    for seed in range(10):
        real, rng = Cart(), np.random.default_rng(seed)
        real.reset()
        for _ in range(40):
            real.step(random_actions(real.spec.action, rng))
        misses.append(abs(real.s[0] - 1.0))
    assert np.mean(misses) > 0.5


def test_discrete_actions_plan_with_categoricals() -> None:
    assert _drive("cem", discrete=True) < 0.2


def test_replan_every_k_steps_uses_fewer_plans() -> None:
    real = Cart()
    session = SimSession(Cart, batch_size=1)
    planner = Planner(PlannerConfig(samples=8, iterations=1, horizon=6, replan_every=3), real.spec.action)
    ev = BatchEvaluator(session, _distance_cost)
    for _ in range(9):
        planner.act(ev)
    assert ev.calls == 3


def test_warm_start_shifts_the_mean() -> None:
    planner = Planner(PlannerConfig(samples=8, iterations=1, horizon=4), Cart().spec.action)
    planner.mean = np.arange(4.0).reshape(4, 1)
    planner._shift(1)
    np.testing.assert_array_equal(planner.mean[:, 0], [1, 2, 3, 0])


@pytest.mark.parametrize("field,value", [("samples", 0), ("iterations", 0), ("horizon", 0), ("method", "pso")])
def test_impossible_budgets_are_refused(field: str, value) -> None:
    with pytest.raises(PlannerError, match=field if field != "method" else "unknown"):
        PlannerConfig(**{field: value}).check()


def test_nan_costs_are_refused() -> None:
    planner = Planner(PlannerConfig(samples=4, iterations=1, horizon=2), Cart().spec.action)
    with pytest.raises(PlannerError, match="NaN"):
        planner.plan(lambda acts: np.full(len(acts), np.nan))
