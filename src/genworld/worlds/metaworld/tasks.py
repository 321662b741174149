"""`genworld plan --task solve` on `metaworld:<task>`: do what the Meta-World task asks.

Success is Meta-World's own `success` flag (`gt.success`), which no planner sees. The planning cost is the
negated dense reward Meta-World defines for the task (`next.reward`, 0..10): a learned model predicts it
(the world's reward stream), the simulator returns it, so the same cost runs in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genworld.plan.episode import Episode, TaskError
from genworld.worlds.base import World

REWARD = "next.reward"


@dataclass
class MetaWorldTask:
    """`solve`: reach Meta-World's success within `steps` control steps."""

    name: str = "solve"
    steps: int = 50
    """control steps per episode (20 per second at the default repeat)"""
    goal_cost: str = "state"
    push_cost: str = "staged"  # accepted for `genworld plan`'s common options

    def __post_init__(self) -> None:
        if self.name != "solve":
            raise TaskError(f"metaworld: task {self.name!r} unknown; the task is solve")
        if self.steps < 1:
            raise TaskError(f"metaworld task: steps must be >= 1, got {self.steps}")

    def check_world(self, world: World) -> None:
        if not world.spec.name.startswith("metaworld:") or "gt.success" not in world.spec:
            raise TaskError(f"task {self.name!r} is a Meta-World task; world {world.spec.name!r} is not one")

    def setup(self, world: World, seed: int) -> Episode:
        self.check_world(world)
        obs = world.reset(seed)
        return Episode(seed, 0, np.zeros(2, np.float32), 0.0, obs, {"description": world.spec.config["description"]})

    def cost(self, world: World, ep: Episode, obs: dict[str, np.ndarray]):
        return _RewardCost()

    def success(self, ep: Episode, obs: dict[str, np.ndarray]) -> bool:
        return bool(obs["gt.success"] > 0.5)

    def draw(self, ep: Episode, frame: np.ndarray) -> np.ndarray:
        return frame.copy()


class _RewardCost:
    def __call__(self, step: dict[str, np.ndarray], t: int, session) -> np.ndarray:
        if REWARD not in step:
            raise TaskError(f"metaworld cost: the predicted step has no {REWARD!r} (train with the reward stream)")
        return -np.asarray(step[REWARD], np.float32).reshape(len(step[REWARD]))
