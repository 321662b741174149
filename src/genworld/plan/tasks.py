"""Goal-reaching tasks with success judged from ground truth.

A task sets an episode up in a real world (which object, which target), turns the goal into a cost
on predicted steps (`genworld.plan.goals`), and judges success from the real world's `gt.*` columns,
which no planner ever sees. Bounce tasks read `gt.objects` (K, 10): x, y, vx, vy, radius, mass,
colour_id, visible, exists, material_id in pixels, row 0 the agent (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genworld.plan.episode import Episode, TaskError
from genworld.plan.goals import (
    GoalError,
    LatentGoalCost,
    ObjectTracker,
    PixelGoalCost,
    ProprioTracker,
    PushCost,
    ReachCost,
    TouchCost,
    check_goal_image,
    palette_centroids,
    video_key,
)
from genworld.plan.rollout import StepCost
from genworld.worlds.base import World

X, Y, R, COLOUR, VISIBLE, EXISTS = 0, 1, 4, 6, 7, 8


@dataclass
class BounceTask:
    """`push`: push a given disc's centre into a circular target region.
    `touch`: bring the agent into contact with a given disc and keep it there for `hold` steps.
    `reach`: bring the agent to where a goal image shows it (goal rendered by the world, or given)."""

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
    """per-channel RGB tolerance for palette extraction"""
    goal_cost: str = "state"
    """reach: `state` (agent position read from frames), `pixel` (frame vs goal image) or `latent`
    (model latent vs the goal's latent; model sessions only)"""
    goal_image: np.ndarray | None = None
    """reach: a fixed goal image (H, W, 3) uint8; None renders one per episode"""
    push_cost: str = "staged"
    """push: `staged` (agent from proprio, approach points at the observed object, behind then through it)
    or `behind` (the first version: agent and object from predicted frames, agent pulled behind the
    object; strong in the simulator, weak with a model that cannot draw pushes)"""
    max_jump: float | None = 8.0
    """pixels per predicted step beyond which a blob of the object's colour is not the object"""
    agent_from: str = "proprio"
    """where costs read the agent's position: `proprio` (predicted `observation.state` x, y, when the world
    has it) or `frames` (palette extraction from predicted frames)"""

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
        if self.name == "reach":
            return self._setup_reach(world, seed, obs, rng, size)
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

    def _setup_reach(self, world: World, seed: int, obs: dict, rng: np.random.Generator, size: float) -> Episode:
        """The agent's goal position, and the goal image showing the agent there."""
        gt, key = obs["gt.objects"], video_key(world.spec.keys())
        agent_rgb = np.asarray(world.spec.config["palette"][int(gt[0, COLOUR])])
        if self.goal_image is not None:
            goal = check_goal_image(self.goal_image, world.spec[key].shape)
            xy, seen = palette_centroids(goal[None], agent_rgb, self.tol)
            if not seen[0]:
                raise GoalError(f"goal image: no pixels of the agent's colour {agent_rgb.tolist()} found; "
                                "the goal must show the agent where it should go")
            return Episode(seed, 0, xy[0], self.region * size, obs, {"goal_image": goal})
        margin = float(gt[0, R]) + 2.0
        for _ in range(200):
            tgt = rng.uniform(margin, size - margin, 2)
            if np.linalg.norm(tgt - gt[0, :2]) >= self.min_dist * size:
                break
        goal = render_goal(world, gt, tgt)
        # The planner's target is read off the goal image (where it shows the agent), as for a given image;
        # success is judged against the true target.
        xy, seen = palette_centroids(goal[None], agent_rgb, self.tol)
        read = xy[0] if seen[0] else tgt
        return Episode(seed, 0, tgt.astype(np.float32), self.region * size, obs,
                       {"goal_image": goal, "goal_read": np.asarray(read, np.float32)})

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
        if self.push_cost not in ("staged", "behind"):
            raise TaskError(f"push cost {self.push_cost!r} unknown; use staged or behind")
        plain = self.name == "push" and self.push_cost == "behind"
        obj = ObjectTracker(key, c_obj, start_obj, self.tol, max_jump=None if plain else self.max_jump)
        agent = ObjectTracker(key, c_agent, xy_agent[0], self.tol)
        pkey = agent_position_key(world)
        reach = float(g0[0, R] + g0[ep.obj, R])
        if plain:
            return PushCost(obj, agent, ep.target, reach, size, approach_weight=0.3, anchor="predicted",
                            hidden_penalty=0.05, staged=False)
        if self.agent_from == "proprio" and pkey:
            agent = ProprioTracker(pkey, agent)  # the model predicts the agent's own state well
        if self.name == "reach":
            if self.goal_cost == "pixel":
                return PixelGoalCost(key, ep.info["goal_image"])
            if self.goal_cost == "latent":
                return LatentGoalCost(goal_obs=reach_goal_obs(world, ep))
            return ReachCost(agent, ep.info.get("goal_read", ep.target), size)
        if self.name == "touch":
            touch = [m.key for m in spec.of_kind("touch")]
            return TouchCost(obj, agent, reach, size, touch_key=touch[0] if touch else None)
        return PushCost(obj, agent, ep.target, reach, size)

    def success(self, ep: Episode, obs: dict[str, np.ndarray]) -> bool:
        """Judged from ground truth: the object's centre in the region (push), or contact held (touch)."""
        gt = obs["gt.objects"]
        if self.name == "reach":
            return bool(np.linalg.norm(gt[0, :2] - ep.target) <= ep.radius)
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


def agent_position_key(world: World) -> str | None:
    """The proprio key whose first two entries are the agent's x, y in pixels, or None."""
    for m in world.spec.of_kind("proprio"):
        names = tuple(m.names or ())
        if len(names) >= 2 and names[:2] == ("x", "y") and m.units and m.units.startswith("px"):
            return m.key
    return None


def render_goal(world: World, gt: np.ndarray, agent_xy: np.ndarray) -> np.ndarray:
    """The frame the world shows with the agent at `agent_xy` at rest and the rest as in `gt` (state restored)."""
    if not callable(getattr(world, "render", None)) or not callable(getattr(world, "state_from_gt", None)):
        raise TaskError(f"world {world.spec.name!r} cannot render a goal (needs render() and state_from_gt)")
    saved = world.get_state()
    table = np.array(gt, copy=True)
    table[0, :2], table[0, 2:4] = agent_xy, 0.0
    world.set_state(world.state_from_gt({"gt.objects": table}))
    goal = world.render()
    world.set_state(saved)
    return goal


def reach_goal_obs(world: World, ep: Episode) -> dict[str, np.ndarray]:
    """The goal as an observation `{key: (1, *shape)}`: the goal image, the agent at rest at the target,
    silence and no touch (what a model encodes to a goal latent)."""
    obs = {}
    for m in world.spec.modalities:
        if m.kind in ("video", "audio", "touch", "proprio"):
            obs[m.key] = np.zeros((1, *m.shape), m.dtype)
    obs[video_key(world.spec.keys())][0] = ep.info["goal_image"]
    if "observation.state" in obs and obs["observation.state"].shape[1] >= 2:
        obs["observation.state"][0, :2] = ep.target
    return obs


TASKS: dict[str, tuple[str, ...]] = {"bounce": ("push", "touch", "reach"), "bounce-gravity": ("touch", "reach"),
                                     "tabletop": ("push",)}


def _entry_tasks(world_name: str) -> dict[str, str]:
    """The planning tasks a world's registry entry names ("name" -> "module:Class")."""
    from genworld.worlds.base import registered_worlds

    entry = registered_worlds().get(world_name.partition(":")[0])
    return dict(entry.tasks) if entry is not None else {}


def tasks_for(world_name: str) -> tuple[str, ...]:
    """The task names available for a world: the built-in tasks, then those of its registry entry."""
    return TASKS.get(world_name.partition(":")[0], ()) + tuple(_entry_tasks(world_name))


def make_task(name: str, world_name: str, **overrides: Any):  # -> a Task (BounceTask, TabletopPushTask, ...)
    """Build task `name` for `world_name`, or raise TaskError naming the tasks it has."""
    have = tasks_for(world_name)
    if name not in have:
        listed = ", ".join(have) if have else "none"
        raise TaskError(f"task {name!r} does not exist for world {world_name!r}; its tasks: {listed} "
                        "(see `genworld plan --list`)")
    where = _entry_tasks(world_name).get(name)
    if where is not None:
        import importlib

        module, _, cls = where.partition(":")
        return getattr(importlib.import_module(module), cls)(name=name, **overrides)
    if world_name.partition(":")[0] == "tabletop":
        from genworld.plan.tabletop import TabletopPushTask

        return TabletopPushTask(name=name, **overrides)
    return BounceTask(name=name, **overrides)
