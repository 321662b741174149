"""Tabletop `push`: push a block into a circular target region on the MuJoCo table.

The target lies on the table in metres; success is judged from the real world's `gt.bodies` (the
block's centre within `region` of the target). The planning cost is the staged `PushCost` of the
bounce tasks, in table metres: from predicted frames (the block's colour, back-projected through the
fixed camera onto the plane of its top face) and the predicted fingertip state (`observation.state`,
metres) when planning in a model (`cost_from="frames"`), or from true positions when planning in
`TabletopPhysics` (`cost_from="gt"`): the world's own MuJoCo model stepped without rendering, touch or
sound, about ten times faster than the full world step, which makes the simulator ceiling affordable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genworld.plan.episode import Episode, TaskError
from genworld.plan.goals import GoalError, ObjectTracker, PushCost, palette_centroids, video_key
from genworld.rollout.sim import SimSessionError
from genworld.worlds.base import World
from genworld.worlds.tabletop.scene import SHAPE_IDS
from genworld.worlds.tabletop.spec import BODY_COLUMNS

STATE_KEY = "observation.state"  # fingertip x, y (m), vx, vy (m/s)
POSITIONS = "gt.positions"  # (N, K + 1, 3): what TabletopPhysics returns instead of frames
_EXISTS, _COLOUR, _SHAPE, _SIZE = (BODY_COLUMNS.index(c) for c in ("exists", "colour_id", "shape_id", "size"))
_BLOCK = SHAPE_IDS.index("block")


class TableCamera:
    """The world's fixed pinhole camera (from `spec.config`): world points <-> pixels (x right, y down)."""

    def __init__(self, config: dict[str, Any]) -> None:
        cam = config["camera"]
        x_ax, y_ax = np.asarray(cam["x_axis"], np.float64), np.asarray(cam["y_axis"], np.float64)
        self.axes = np.stack([x_ax, y_ax, np.cross(x_ax, y_ax)])  # rows: camera x, y, z in world frame
        self.pos = np.asarray(cam["pos"], np.float64)
        self.half = 0.5 * float(config["image_size"])
        self.focal = self.half / np.tan(np.radians(float(cam["fovy"])) / 2)

    def project(self, p: np.ndarray) -> np.ndarray:
        """Pixels `(..., 2)` of world points `(..., 3)`."""
        c = (np.asarray(p, np.float64) - self.pos) @ self.axes.T  # camera frame; it looks along -z
        return np.stack([self.half + self.focal * c[..., 0] / -c[..., 2],
                         self.half - self.focal * c[..., 1] / -c[..., 2]], -1)

    def unproject(self, uv: np.ndarray, z: float) -> np.ndarray:
        """Table x, y `(..., 2)` where the rays through pixels `uv (..., 2)` meet the plane at height `z`."""
        uv = np.asarray(uv, np.float64)
        ray_c = np.stack([(uv[..., 0] - self.half) / self.focal, -(uv[..., 1] - self.half) / self.focal,
                          -np.ones(uv.shape[:-1])], -1)
        ray = ray_c @ self.axes  # world frame
        s = (z - self.pos[2]) / ray[..., 2]
        return (self.pos[:2] + s[..., None] * ray[..., :2]).astype(np.float32)


class GtTracker:
    """A body's true table position `(N, 2)` from `gt.positions` (TabletopPhysics) or `gt.bodies`."""

    def __init__(self, row: int, start_xy: np.ndarray) -> None:
        self.row, self.start = row, np.asarray(start_xy, np.float32)

    def __call__(self, step: dict[str, np.ndarray], t: int) -> tuple[np.ndarray, np.ndarray]:
        src = step.get(POSITIONS, step.get("gt.bodies"))
        if src is None:
            raise GoalError(f"cost from ground truth: the step has neither {POSITIONS!r} nor 'gt.bodies' "
                            "(a model predicts no ground truth; use cost_from='frames')")
        xy = np.asarray(src[:, self.row, :2], np.float32)
        return xy, np.ones(len(xy), bool)


class FrameTracker:
    """A palette object read from predicted frames (`ObjectTracker`, pixels), back-projected onto the
    plane of its top face: table metres."""

    def __init__(self, frames: ObjectTracker, camera: TableCamera, z: float) -> None:
        self.frames, self.camera, self.z = frames, camera, z
        self.start = camera.unproject(frames.start, z)

    def __call__(self, step: dict[str, np.ndarray], t: int) -> tuple[np.ndarray, np.ndarray]:
        if self.frames.key not in step:
            raise GoalError(f"cost from frames: the step has no {self.frames.key!r} (TabletopPhysics renders "
                            "nothing; plan in it with cost_from='gt')")
        xy, seen = self.frames(step, t)
        return self.camera.unproject(xy, self.z), seen


class FingerTracker:
    """The fingertip's predicted table position `(N, 2)` from `observation.state` (x, y in metres)."""

    def __init__(self, start_xy: np.ndarray, key: str = STATE_KEY) -> None:
        self.key, self.start = key, np.asarray(start_xy, np.float32)

    def __call__(self, step: dict[str, np.ndarray], t: int) -> tuple[np.ndarray, np.ndarray]:
        if self.key not in step:
            raise GoalError(f"cost from frames: the step has no {self.key!r} (the fingertip's state)")
        xy = np.asarray(step[self.key], np.float32)[:, :2]
        return xy, np.isfinite(xy).all(1)


@dataclass
class TabletopPushTask:
    """`push`: push a block (a ball when the episode has no block) so that its centre comes within
    `region` metres of a target on the table."""

    name: str = "push"
    steps: int = 80
    """control steps per episode (16 per second)"""
    min_dist: float = 0.08
    max_dist: float = 0.15
    """distance from the block to the target (m)"""
    region: float = 0.03
    """radius of the target region (m)"""
    cost_from: str = "frames"
    """`frames` (predicted frames and fingertip state: a model) or `gt` (true positions: TabletopPhysics)"""
    push_cost: str = "staged"
    """`staged` (behind the block, then through it) or `behind` (the plain first version)"""
    goal_cost: str = "state"
    """accepted for the CLI's sake; reach-only"""
    tol: float = 40.0
    """per-channel RGB tolerance for palette extraction"""
    max_jump: float | None = 8.0
    """pixels per predicted step beyond which a blob of the block's colour is not the block"""
    approach_weight: float = 0.5

    def check_world(self, world: World) -> None:
        spec = world.spec
        need = ("gt.bodies", STATE_KEY)
        if spec.name != "tabletop" or any(k not in spec for k in need) or "camera" not in spec.config:
            raise TaskError(f"task {self.name!r} (tabletop) needs the tabletop world with gt.bodies, "
                            f"observation.state and a camera; got {spec.name!r}")
        if self.cost_from not in ("frames", "gt"):
            raise TaskError(f"tabletop push: cost_from {self.cost_from!r} unknown; use frames or gt")
        if self.push_cost not in ("staged", "behind"):
            raise TaskError(f"push cost {self.push_cost!r} unknown; use staged or behind")
        if not 0 < self.min_dist <= self.max_dist or self.region <= 0:
            raise TaskError(f"tabletop push: need 0 < min_dist <= max_dist and region > 0, got min_dist "
                            f"{self.min_dist}, max_dist {self.max_dist}, region {self.region}")

    def setup(self, world: World, seed: int) -> Episode:
        """Reset `world` with `seed`; choose a block and a target the fingertip can push it to."""
        self.check_world(world)
        obs = world.reset(seed)
        g = obs["gt.bodies"]
        rng = np.random.default_rng(seed + 7919)
        present = [k for k in range(1, len(g)) if g[k, _EXISTS] > 0.5]
        blocks = [k for k in present if int(g[k, _SHAPE]) == _BLOCK]
        if not present:
            raise TaskError(f"tabletop episode seed {seed}: no object on the table to push")
        k = int(rng.choice(blocks or present))
        half = float(world.spec.config["table_half"])
        finger = float(g[0, _SIZE])
        reach = half - finger - 0.012  # the fingertip's joint range (scene.build_mjcf)
        size, xy = float(g[k, _SIZE]), g[k, :2].astype(np.float64)
        stand = (finger + size) * 1.25  # PushCost's stand-off point behind the block
        best, best_slack = None, -np.inf
        for _ in range(300):
            ang = rng.uniform(0, 2 * np.pi)
            u = np.array([np.cos(ang), np.sin(ang)])
            tgt = xy + rng.uniform(self.min_dist, self.max_dist) * u
            # slack: how far inside the table the target is and inside its range the pushing fingertip is
            slack = min(half - size - 0.01 - np.abs(tgt).max(), reach - 0.005 - np.abs(xy - stand * u).max())
            if slack >= 0:
                best = tgt
                break
            if slack > best_slack:
                best, best_slack = tgt, slack
        colour = tuple(world.spec.config["palette"][int(g[k, _COLOUR])])
        info = {"colour": colour, "shape": "block" if int(g[k, _SHAPE]) == _BLOCK else "ball",
                "camera": TableCamera(world.spec.config)}
        return Episode(seed, k, np.asarray(best, np.float32), self.region, obs, info)

    def cost(self, world: World, ep: Episode, obs: dict[str, np.ndarray]) -> PushCost:
        """The planning cost from the current real observation `obs`: its frame and fingertip state
        (`cost_from="frames"`), or its ground truth (`cost_from="gt"`)."""
        self.check_world(world)
        g0 = ep.obs["gt.bodies"]
        size = float(g0[ep.obj, _SIZE])
        if self.cost_from == "gt":
            g = obs["gt.bodies"]
            obj, agent = GtTracker(ep.obj, g[ep.obj, :2]), GtTracker(0, g[0, :2])
        else:
            key = video_key(world.spec.keys())
            cam: TableCamera = ep.info["camera"]
            z_top = 2 * size  # the top face (a ball's top cap): lit from above, it shows the palette colour
            colour = np.asarray(ep.info["colour"], np.int32)
            xy, seen = palette_centroids(obs[key][None], colour, self.tol)
            last = ep.info.get("last_obj_px")
            start = xy[0] if seen[0] else (last if last is not None else cam.project(g0[ep.obj, :3]))
            ep.info["last_obj_px"] = start
            frames = ObjectTracker(key, colour, start, self.tol, max_jump=self.max_jump)
            obj = FrameTracker(frames, cam, z_top)
            agent = FingerTracker(obs[STATE_KEY][:2])
        reach = float(g0[0, _SIZE]) + size
        scale = 2 * float(world.spec.config["table_half"])
        if self.push_cost == "behind":
            return PushCost(obj, agent, ep.target, reach, scale, approach_weight=0.3, anchor="predicted",
                            staged=False, speed_weight=0.0)
        return PushCost(obj, agent, ep.target, reach, scale, approach_weight=self.approach_weight,
                        speed_weight=0.0)

    def success(self, ep: Episode, obs: dict[str, np.ndarray]) -> bool:
        """Judged from ground truth: the block's centre within `region` of the target."""
        g = obs["gt.bodies"]
        return bool(np.linalg.norm(g[ep.obj, :2] - ep.target) <= ep.radius)

    def draw(self, ep: Episode, frame: np.ndarray) -> np.ndarray:
        """The frame with the target region drawn on the table, in the block's colour."""
        out = frame.copy()
        h, w = out.shape[:2]
        ang = np.linspace(0, 2 * np.pi, 4 * max(h, w), endpoint=False)
        ring = np.stack([ep.target[0] + ep.radius * np.cos(ang), ep.target[1] + ep.radius * np.sin(ang),
                         np.zeros_like(ang)], -1)
        uv = np.floor(ep.info["camera"].project(ring)).astype(int)
        ok = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        out[uv[ok, 1], uv[ok, 0]] = ep.info.get("colour", (255, 255, 255))
        return out


class TabletopPhysics:
    """The tabletop world's true physics behind the Session protocol, without rendering, touch or sound.

    It steps B copies of the world's MuJoCo state (`MjData` on the world's own model) exactly as
    `TabletopWorld.step` does and returns `gt.positions (B, K + 1, 3)` (fingertip and objects, the
    positions `gt.bodies` reports) and `observation.state (B, 4)`. Snapshots are lists of MuJoCo
    integration states; `restore` also takes `TabletopWorld.get_state()` dicts, so
    `restore([world.get_state()])` puts a session exactly where the real world is.
    """

    def __init__(self, world: World) -> None:
        if world.spec.name != "tabletop" or not hasattr(world, "model"):
            raise SimSessionError(f"TabletopPhysics needs a TabletopWorld, got {world.spec.name!r}")
        import mujoco

        self.mj, self.model, self.spec = mujoco, world.model, world.spec
        self.substeps = int(world.spec.config["substeps"])
        self.max_speed = float(world.spec.config["max_speed"])
        m = self.model
        self.bodies = [m.body("finger").id] + [m.body(n).id for n in world.spec.config["objects"]]
        self._kind = mujoco.mjtState.mjSTATE_INTEGRATION
        self._size = mujoco.mj_stateSize(m, self._kind)
        self._pool: list[Any] = []
        self._b = 0
        self.restore([world.get_state()])

    @property
    def batch_size(self) -> int:
        return self._b

    def _set_states(self, states: list[np.ndarray]) -> None:
        while len(self._pool) < len(states):
            self._pool.append(self.mj.MjData(self.model))
        for d, s in zip(self._pool, states):
            self.mj.mj_setState(self.model, d, s, self._kind)
            self.mj.mj_forward(self.model, d)
        self._b = len(states)

    def snapshot(self) -> list[np.ndarray]:
        """The B MuJoCo integration states (copies)."""
        out = []
        for d in self._pool[: self._b]:
            s = np.empty(self._size)
            self.mj.mj_getState(self.model, d, s, self._kind)
            out.append(s)
        return out

    def restore(self, snap: list[Any]) -> None:
        """Return to a snapshot, or to `TabletopWorld.get_state()` dicts; its length sets the batch size."""
        if not isinstance(snap, list | tuple) or not snap:
            raise SimSessionError("TabletopPhysics.restore: expected a non-empty list of states")
        states = []
        for i, s in enumerate(snap):
            arr = np.asarray(s["mjstate"] if isinstance(s, dict) else s, np.float64)
            if arr.shape != (self._size,):
                raise SimSessionError(f"TabletopPhysics.restore: state {i} has shape {arr.shape}, expected "
                                      f"({self._size},) (a MuJoCo integration state or a world state dict)")
            states.append(arr)
        self._set_states(states)

    def expand(self, n: int) -> None:
        """Repeat each future n times in place (B -> B*n)."""
        if n < 1:
            raise SimSessionError(f"TabletopPhysics.expand: n must be >= 1, got {n}")
        self._set_states([s for s in self.snapshot() for _ in range(n)])

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]:
        """Hold `action (B, 2)` for the world's sub-steps in every copy; returns positions and state."""
        act = np.asarray(action, np.float64)
        if act.shape != (self._b, 2) or not np.all(np.isfinite(act)):
            raise SimSessionError(f"TabletopPhysics.step: action must be {(self._b, 2)} finite numbers, "
                                  f"got shape {act.shape}")
        ctrl = np.clip(act, -1.0, 1.0) * self.max_speed
        pos = np.empty((self._b, len(self.bodies), 3), np.float32)
        state = np.empty((self._b, 4), np.float32)
        for i, d in enumerate(self._pool[: self._b]):
            d.ctrl[:] = ctrl[i]
            self.mj.mj_step(self.model, d, nstep=self.substeps)
            pos[i] = d.xpos[self.bodies]
            state[i] = d.qpos[0], d.qpos[1], d.qvel[0], d.qvel[1]
        return {POSITIONS: pos, STATE_KEY: state,
                "next.reward": np.zeros(self._b, np.float32), "next.done": np.zeros(self._b, bool)}

    def reset(self, context: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise SimSessionError("TabletopPhysics starts from world states: restore([world.get_state()]); "
                              "to start from recorded ground truth use SimSession (it renders)")

    def observe(self, obs: dict[str, np.ndarray]) -> None:
        raise SimSessionError("TabletopPhysics follows the real world by restore([world.get_state()]), "
                              "not by observe()")

    def close(self) -> None:
        self._pool, self._b = [], 0
