"""Planning tasks of the drive world, judged from its ground truth (`gt.vehicles`, `gt.success`).

- `cruise`: drive `steps` control steps without a collision, on the road, at a mean speed of at least
  `min_speed` (highway by default; any road scenario).
- `merge`: the same on the `merge` scenario, where a vehicle joins from the ramp on the right.
- `park`: bring the ego vehicle onto the parking goal (`drive:parking`; the simulator's own success test).

Costs read only what a model predicts: the ego's proprioception (speed, lane offset, position and heading
relative to the start) and the bumper taxels, so the same cost runs in a learned model and in the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genworld.plan.episode import Episode, TaskError
from genworld.worlds.base import World
from genworld.worlds.drive.world import VEHICLE_COLUMNS

STATE = "observation.state"
BUMPER = "observation.tactile.bumper"
_SCENARIO = {"cruise": None, "merge": "merge", "park": "parking"}
_VEHICLE_COLS = {c: VEHICLE_COLUMNS.index(c) for c in ("speed", "crashed", "on_road")}


def _col(world: World, key: str, name: str) -> int:
    names = tuple(world.spec[key].names or ())
    if name not in names:
        raise TaskError(f"drive task: {key!r} of {world.spec.name!r} has no column {name!r}")
    return names.index(name)


@dataclass
class DriveTask:
    """One of `cruise`, `merge`, `park` on a `drive:<scenario>` world."""

    name: str = "cruise"
    steps: int | None = None
    """control steps per episode (cruise/merge 50, i.e. 5 s at 10 fps; park 100)"""
    min_speed: float = 20.0
    """cruise/merge: mean speed to reach (m/s)"""
    lane_weight: float = 0.5
    """cruise/merge: cost per metre of lateral offset from the lane centre"""
    contact_weight: float = 5.0
    """cost of a bumper taxel in contact (a collision, or a road edge)"""
    goal_cost: str = "state"
    push_cost: str = "staged"  # accepted for `genworld plan`'s common options; drive tasks have no push

    def __post_init__(self) -> None:
        if self.name not in _SCENARIO:
            raise TaskError(f"drive: task {self.name!r} unknown; tasks: {', '.join(_SCENARIO)}")
        if self.steps is None:
            self.steps = 100 if self.name == "park" else 50
        if self.steps < 1:
            raise TaskError(f"drive task {self.name!r}: steps must be >= 1, got {self.steps}")

    def check_world(self, world: World) -> None:
        spec = world.spec
        scenario = spec.config.get("scenario")
        if not spec.name.startswith("drive") or STATE not in spec:
            raise TaskError(f"task {self.name!r} is a drive task; world {spec.name!r} is not a drive world")
        want = _SCENARIO[self.name]
        if want and scenario != want:
            raise TaskError(f"task {self.name!r} needs the world drive:{want}, not {spec.name!r}")
        if self.name != "park" and scenario == "parking":
            raise TaskError(f"task {self.name!r} drives on a road; drive:parking has the task park")
        if spec.config.get("actions") != "continuous":
            raise TaskError(f"task {self.name!r} plans continuous actions; {spec.name!r} has meta-actions "
                            "(collect with --set actions=continuous)")

    def setup(self, world: World, seed: int) -> Episode:
        self.check_world(world)
        obs = world.reset(seed)
        goal = obs["gt.goal"].copy()
        return Episode(seed, 0, goal[:2].copy(), 0.0, obs, {"goal": goal, "t": 0, "speed": 0.0, "failed": False})

    def cost(self, world: World, ep: Episode, obs: dict[str, np.ndarray]):
        """The cost of predicted steps (lower is better), from predicted proprio and touch only."""
        return _DriveCost(self.name, world, ep.info["goal"], self.min_speed, self.lane_weight, self.contact_weight)

    def success(self, ep: Episode, obs: dict[str, np.ndarray]) -> bool:
        """park: the simulator's success test; cruise/merge: no crash and on the road for every step, and the
        mean speed at least `min_speed` when the episode's steps are done."""
        if self.name == "park":
            return bool(obs["gt.success"] > 0.5)
        ego = obs["gt.vehicles"][0]
        cols = _VEHICLE_COLS
        ep.info["t"] += 1
        ep.info["speed"] += float(ego[cols["speed"]])
        if ego[cols["crashed"]] > 0.5 or ego[cols["on_road"]] < 0.5:
            ep.info["failed"] = True
        return (not ep.info["failed"] and ep.info["t"] >= self.steps
                and ep.info["speed"] / ep.info["t"] >= self.min_speed)

    def draw(self, ep: Episode, frame: np.ndarray) -> np.ndarray:
        """The frame with a red border once the episode has failed (crash or off the road)."""
        out = frame.copy()
        if ep.info.get("failed"):
            out[:1] = out[-1:] = out[:, :1] = out[:, -1:] = (255, 0, 0)
        return out


class _DriveCost:
    def __init__(self, name: str, world: World, goal: np.ndarray, min_speed: float, lane_weight: float,
                 contact_weight: float) -> None:
        self.name, self.goal, self.min_speed = name, np.asarray(goal, np.float32), min_speed
        self.lane_weight, self.contact_weight = lane_weight, contact_weight
        self.i = {c: _col(world, STATE, c) for c in ("x", "y", "cos_h", "sin_h", "speed", "lane_offset")}

    def __call__(self, step: dict[str, np.ndarray], t: int, session) -> np.ndarray:
        if STATE not in step:
            raise TaskError(f"drive cost: the predicted step has no {STATE!r}")
        s = np.asarray(step[STATE], np.float32)
        touch = np.asarray(step[BUMPER], np.float32).clip(0, 1).sum(1) if BUMPER in step else 0.0
        i = self.i
        if self.name == "park":
            d = np.abs(s[:, i["x"]] - self.goal[0]) + np.abs(s[:, i["y"]] - self.goal[1])
            h = np.abs(s[:, i["cos_h"]] - self.goal[2]) + np.abs(s[:, i["sin_h"]] - self.goal[3])
            return d + 2.0 * h + self.contact_weight * touch
        slow = np.maximum(self.min_speed + 5.0 - s[:, i["speed"]], 0.0) / 5.0
        return slow + self.lane_weight * np.abs(s[:, i["lane_offset"]]) + self.contact_weight * touch
