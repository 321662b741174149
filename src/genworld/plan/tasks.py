"""Goal-reaching tasks with success judged from ground truth.

A task sets an episode up in a real world (which object, which target), turns the goal into a cost
on predicted steps (`genworld.plan.goals`), and judges success from the real world's `gt.*` columns,
which no planner ever sees. Bounce tasks read `gt.objects` (K, 10): x, y, vx, vy, radius, mass,
colour_id, visible, exists, material_id in pixels, row 0 the agent (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genworld.plan.goals import ObjectTracker, PushCost, TouchCost, palette_centroids, video_key
from genworld.plan.rollout import StepCost
from genworld.worlds.base import World

X, Y, R, COLOUR, VISIBLE, EXISTS = 0, 1, 4, 6, 7, 8


class TaskError(ValueError):
    """The task does not exist for this world, or the world lacks what the task needs."""


@dataclass
class Episode:
    """One set-up episode: the chosen object, the target and the first observation."""

    seed: int
    obj: int  # row of gt.objects
    target: np.ndarray  # (2,) pixels
    radius: float  # success radius around the target, pixels
    obs: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)
    contact_run: int = 0  # consecutive steps in contact (touch task)


@dataclass
class BounceTask:
    """`push`: push a given disc's centre into a circular target region.
    `touch`: bring the agent into contact with a given disc and keep it there for `hold` steps."""

    name: str = "push"
    steps: int = 60
    """control steps per episode"""
    hold: int = 5
    """touch: consecutive steps in contact that count as success"""
    min_dist: float = 0.2
    max_dist: float = 0.35
    """push: distance from the object to the target, as fractions of the image size"""
    region: float = 0.09
    """push: radius of the target region, as a fraction of the image size"""
    contact_tol: float = 1.0
    """touch: gap between the discs (pixels) still counted as contact"""
    tol: float = 40.0
    """RGB distance for palette extraction"""

    def check_world(self, world: World) -> None:
        spec = world.spec
        if "gt.objects" not in spec or "palette" not in spec.config:
            raise TaskError(f"task {self.name!r} needs a bounce-like world with gt.objects and a palette; "
                            f"{spec.name!r} has neither")
        video_key(spec.keys())

    def setup(self, world: World, seed: int) -> Episode:
        """Reset `world` with `seed` and choose the object (and target) of this episode."""
        self.check_world(world)
        palette = world.spec.config["palette"]
        rng = np.random.default_rng(seed + 7919)
        obs = world.reset(seed)
        gt = obs["gt.objects"]
        size = float(world.spec[video_key(world.spec.keys())].shape[0])
        rows = [k for k in range(1, len(gt)) if gt[k, EXISTS] > 0.5 and gt[k, VISIBLE] > 0.5]
        if not rows:
            raise TaskError(f"bounce episode seed {seed}: no visible object to act on")
        k = int(rng.choice(rows))
        info = {"colour": tuple(palette[int(gt[k, COLOUR])])}
        if self.name == "touch":
            return Episode(seed, k, gt[k, :2].copy(), 0.0, obs, info)
        occ = world.spec.config.get("occluder")
        margin = float(gt[k, R]) + 2.0
        for _ in range(200):
            ang = rng.uniform(0, 2 * np.pi)
            dist = rng.uniform(self.min_dist, self.max_dist) * size
            tgt = gt[k, :2] + dist * np.array([np.cos(ang), np.sin(ang)])
            inside = np.all(tgt >= margin) and np.all(tgt <= size - margin)
            if inside and not (occ and occ[0] - margin <= tgt[0] <= occ[2] + margin
                               and occ[1] - margin <= tgt[1] <= occ[3] + margin):
                break
        return Episode(seed, k, tgt.astype(np.float32), self.region * size, obs, info)

    def cost(self, world: World, ep: Episode, obs: dict[str, np.ndarray]) -> StepCost:
        """The planning cost from the current real observation `obs` (its frame, not its ground truth)."""
        spec = world.spec
        key = video_key(spec.keys())
        size = float(spec[key].shape[0])
        palette = np.asarray(spec.config["palette"], np.int32)
        g0 = ep.obs["gt.objects"]  # colours and radii are fixed at set-up: part of the goal's definition
        c_obj, c_agent = palette[int(g0[ep.obj, COLOUR])], palette[int(g0[0, COLOUR])]
        frame = obs[key][None]
        xy_obj, seen_obj = palette_centroids(frame, c_obj, self.tol)
        xy_agent, _ = palette_centroids(frame, c_agent, self.tol)
        start_obj = xy_obj[0] if seen_obj[0] else ep.info.get("last_obj", g0[ep.obj, :2])
        ep.info["last_obj"] = start_obj
        obj = ObjectTracker(key, c_obj, start_obj, self.tol)
        agent = ObjectTracker(key, c_agent, xy_agent[0], self.tol)
        reach = float(g0[0, R] + g0[ep.obj, R])
        if self.name == "touch":
            touch = [m.key for m in spec.of_kind("touch")]
            return TouchCost(obj, agent, reach, size, touch_key=touch[0] if touch else None)
        return PushCost(obj, agent, ep.target, reach, size)

    def success(self, ep: Episode, obs: dict[str, np.ndarray]) -> bool:
        """Judged from ground truth: the object's centre in the region (push), or contact held (touch)."""
        gt = obs["gt.objects"]
        if self.name == "touch":
            gap = np.linalg.norm(gt[0, :2] - gt[ep.obj, :2]) - gt[0, R] - gt[ep.obj, R]
            touching = gap <= self.contact_tol
            if "gt.contacts" in obs:
                touching = touching or obs["gt.contacts"][0, ep.obj] > 0
            ep.contact_run = ep.contact_run + 1 if touching else 0
            return ep.contact_run >= self.hold
        return bool(np.linalg.norm(gt[ep.obj, :2] - ep.target) <= ep.radius)

    def draw(self, ep: Episode, frame: np.ndarray) -> np.ndarray:
        """The frame with the goal drawn on it: a ring around the target region or the object to touch."""
        out = frame.copy()
        h, w = out.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w] + 0.5
        if self.name == "touch":
            centre = ep.obs["gt.objects"][ep.obj, :2]
            gt = ep.info.get("gt_now")
            if gt is not None:
                centre = gt[ep.obj, :2]
            rad = float(ep.obs["gt.objects"][ep.obj, R]) + 2.0
        else:
            centre, rad = ep.target, ep.radius
        d = np.hypot(xx - centre[0], yy - centre[1])
        colour = ep.info.get("colour", (255, 255, 255))  # the chosen object's colour: which goes where
        out[np.abs(d - rad) < 0.6] = colour
        return out


TASKS: dict[str, tuple[str, ...]] = {"bounce": ("push", "touch"), "bounce-gravity": ("touch",)}


def tasks_for(world_name: str) -> tuple[str, ...]:
    """The task names available for a world."""
    return TASKS.get(world_name.partition(":")[0], ())


def make_task(name: str, world_name: str, **overrides: Any) -> BounceTask:
    """Build task `name` for `world_name`, or raise TaskError naming the tasks it has."""
    have = tasks_for(world_name)
    if name not in have:
        listed = ", ".join(have) if have else "none"
        raise TaskError(f"task {name!r} does not exist for world {world_name!r}; its tasks: {listed} "
                        "(see `genworld plan --list`)")
    return BounceTask(name=name, **overrides)
