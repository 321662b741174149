"""Goals as costs on predicted steps: goal images (pixels or latents), object positions read from
predicted frames by palette extraction, and touch (make and keep contact).

Every cost reads only what a session predicts (frames, touch, and `latent()` when the session has
one), never ground truth, so the same cost drives planning in the model and in the true simulator.
Object positions come from palette colours: the pixels within `tol` (RGB distance) of an object's
colour (per channel), their centroid in pixel coordinates (x right, y down, pixel centres at +0.5) and their count.
This is a small local extraction; the evaluation's palette segmentation (CIELAB, connected
components) is stricter but needs more time per frame than a planner can spend on N x H frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genworld.rollout.base import Session


class GoalError(ValueError):
    """A goal does not fit the world (wrong image shape, unknown colour, no video)."""


def palette_centroids(frames: np.ndarray, colour: np.ndarray, tol: float = 40.0,
                      min_pixels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Centroid `(N, 2)` (x, y pixels) and presence `(N,)` of the pixels of `colour` in `frames (N, H, W, 3)`.

    A pixel belongs to the colour when every channel is within `tol` of it (a box in RGB: six uint8
    comparisons per pixel, a few times cheaper than a Euclidean distance on N x H frames per plan).
    """
    c = np.asarray(colour, np.int32)
    lo, hi = np.clip(c - tol, 0, 255).astype(np.uint8), np.clip(c + tol, 0, 255).astype(np.uint8)
    r, g, b = frames[..., 0], frames[..., 1], frames[..., 2]
    mask = (r >= lo[0]) & (r <= hi[0]) & (g >= lo[1]) & (g <= hi[1]) & (b >= lo[2]) & (b <= hi[2])  # (N, H, W)
    rows, cols = mask.sum(2, dtype=np.float32), mask.sum(1, dtype=np.float32)  # (N, H), (N, W)
    count = rows.sum(1)  # (N,)
    h, w = mask.shape[1:]
    xs = cols @ (np.arange(w, dtype=np.float32) + 0.5)
    ys = rows @ (np.arange(h, dtype=np.float32) + 0.5)
    safe = np.maximum(count, 1.0)
    return np.stack([xs / safe, ys / safe], -1), count >= min_pixels


def video_key(spec_keys: list[str]) -> str:
    """The first camera key of a world (`observation.images.*`)."""
    keys = [k for k in spec_keys if k.startswith("observation.images.")]
    if not keys:
        raise GoalError("this world has no camera (observation.images.*): image and object goals need one")
    return keys[0]


class ObjectTracker:
    """Reads one palette object's position from predicted frames, keeping the last seen position per
    future when it is hidden (under an occluder, or blurred away by the model)."""

    def __init__(self, key: str, colour: np.ndarray, start_xy: np.ndarray, tol: float = 40.0,
                 max_jump: float | None = None) -> None:
        self.key, self.colour, self.tol = key, np.asarray(colour), tol
        self.start = np.asarray(start_xy, np.float32)  # (2,) position in the last real frame
        self.last = self.start[None]
        self.max_jump = max_jump
        """pixels per step: a predicted position farther than this from the last one is a stray blob of
        the colour (a model's smear), not the object, and counts as unseen"""

    def __call__(self, step: dict[str, np.ndarray], t: int) -> tuple[np.ndarray, np.ndarray]:
        """Position `(N, 2)` and whether it was seen `(N,)` in this predicted step."""
        xy, seen = palette_centroids(step[self.key], self.colour, self.tol)
        if t == 0:
            self.last = np.broadcast_to(self.start, xy.shape).copy()
        if self.max_jump is not None:
            seen = seen & (np.linalg.norm(xy - self.last, axis=1) <= self.max_jump)
        xy = np.where(seen[:, None], xy, self.last)
        self.last = xy
        return xy, seen


class ProprioTracker:
    """Reads the agent's position from a predicted proprioceptive vector (`observation.state`, x and y
    first, pixels), which a model predicts from the action far better than it draws the agent; falls
    back to a palette tracker on frames when a step has no proprio."""

    def __init__(self, key: str, frames: ObjectTracker | None = None) -> None:
        self.key, self.frames = key, frames

    def __call__(self, step: dict[str, np.ndarray], t: int) -> tuple[np.ndarray, np.ndarray]:
        if self.key in step:
            xy = np.asarray(step[self.key], np.float32).reshape(len(step[self.key]), -1)[:, :2]
            return xy, np.isfinite(xy).all(1)
        if self.frames is None:
            raise GoalError(f"agent position: the step has no {self.key!r} and no frame tracker was given")
        return self.frames(step, t)

    def velocity(self, step: dict[str, np.ndarray]) -> np.ndarray | None:
        """The agent's predicted velocity `(N, 2)` (proprio entries 2 and 3, pixels/step), or None."""
        if self.key not in step:
            return None
        x = np.asarray(step[self.key], np.float32).reshape(len(step[self.key]), -1)
        return x[:, 2:4] if x.shape[1] >= 4 else None


@dataclass
class PushCost:
    """Bring an object's centre into a target region: the object's (predicted) distance to the target,
    plus a staged approach term for the agent that does not need the model to predict the push.

    With `u` the unit vector from the target to the object, the agent is first led to a stand-off point
    behind the object (`obj + u * R * (1 + standoff)`, R = sum of the radii) while a penalty keeps it from
    brushing the object from the wrong side; once it is within `align_deg` of the line behind the
    object it is led to a push point inside contact (`obj + u * R * (1 - depth)`), so it drives through
    the object toward the target. The aligned stage always costs less than the approach stage, so the
    planner never gains by leaving the line. The object position is read per future from predicted
    frames; where the model does not draw it, the tracker holds the last observed position, and the
    closed loop (the real object seen every control step) moves the points as the object moves.
    """

    obj: ObjectTracker
    agent: ObjectTracker | ProprioTracker
    target: np.ndarray  # (2,) pixels
    reach_radius: float  # agent radius + object radius, pixels
    scale: float  # image size, pixels: costs are in fractions of it
    approach_weight: float = 0.5
    standoff: float = 0.25
    """stand-off point behind the object, beyond contact, as a fraction of the reach radius"""
    depth: float = 0.5
    """push point inside contact, as a fraction of the reach radius"""
    align_deg: float = 20.0
    """the agent counts as behind the object within this angle of the line from the target through it"""
    avoid_weight: float = 2.0
    """penalty per pixel of the agent inside `1 + standoff` reach radii while not behind the object"""
    anchor: str = "observed"
    """where the approach points are placed: `observed` (the object in the last real frame, the same for
    every future and step: robust to a model that draws passive objects poorly) or `predicted` (the
    object read from each predicted frame)"""
    speed_weight: float = 1.0
    """penalty per pixel/step of the agent's predicted speed above `1 + 0.3 * distance to its goal point`
    (arrive slowly, aim well); needs a predicted velocity (ProprioTracker)"""
    hidden_penalty: float = 0.0
    staged: bool = True
    """False: the plain cost of the first version (the agent pulled to the touching point behind the
    object, no push point, no wrong-side penalty), kept for comparison (`--push-cost behind`)"""

    def __call__(self, step: dict[str, np.ndarray], t: int, session: Session) -> np.ndarray:
        obj, seen = self.obj(step, t)
        agent, _ = self.agent(step, t)
        R = self.reach_radius
        d_obj = np.linalg.norm(obj - self.target[None], axis=1)  # (N,) the object's predicted distance
        if not self.staged:
            to_obj = obj - self.target[None]
            behind = obj + to_obj / np.maximum(d_obj, 1e-6)[:, None] * R
            d_agent = np.linalg.norm(agent - behind, axis=1)
            return (d_obj + self.approach_weight * d_agent) / self.scale + self.hidden_penalty * (~seen)
        if self.anchor == "observed":
            obj = np.broadcast_to(self.obj.start, obj.shape)
        to_obj = obj - self.target[None]  # (N, 2)
        u = to_obj / np.maximum(np.linalg.norm(to_obj, axis=1), 1e-6)[:, None]  # target -> object
        rel = agent - obj
        d_rel = np.linalg.norm(rel, axis=1)
        cos = (rel * u).sum(1) / np.maximum(d_rel, 1e-6)
        c_full, c_none = np.cos(np.radians(self.align_deg)), np.cos(np.radians(2 * self.align_deg))
        w = np.clip((cos - c_none) / (c_full - c_none), 0.0, 1.0)  # 1 behind the object, 0 off the line
        behind = obj + u * R * (1 + self.standoff)
        push = obj + u * R * (1 - self.depth)
        stage_gap = R * (self.standoff + self.depth)  # the approach stage costs at least this much more
        approach = np.linalg.norm(agent - behind, axis=1) + stage_gap
        pushing = np.linalg.norm(agent - push, axis=1)
        avoid = np.maximum(R * (1 + self.standoff) - d_rel, 0.0) * (1 - w)
        d_agent = (1 - w) * approach + w * pushing + self.avoid_weight * avoid
        vel = self.agent.velocity(step) if isinstance(self.agent, ProprioTracker) else None
        if vel is not None and self.speed_weight:
            to_goal = (1 - w) * (approach - stage_gap) + w * pushing  # distance to the current goal point
            allowed = 1.0 + 0.3 * to_goal
            d_agent = d_agent + self.speed_weight * np.maximum(np.linalg.norm(vel, axis=1) - allowed, 0.0)
        return (d_obj + self.approach_weight * d_agent) / self.scale + self.hidden_penalty * (~seen)


@dataclass
class ReachCost:
    """Bring the agent to a goal position (read from the goal image), as a fraction of the image size."""

    agent: ObjectTracker
    target: np.ndarray  # (2,) pixels
    scale: float

    def __call__(self, step: dict[str, np.ndarray], t: int, session: Session) -> np.ndarray:
        agent, _ = self.agent(step, t)
        return np.linalg.norm(agent - self.target[None], axis=1) / self.scale


@dataclass
class TouchCost:
    """Make and keep contact with an object: distance between the discs, minus felt touch."""

    obj: ObjectTracker
    agent: ObjectTracker
    reach_radius: float
    scale: float
    touch_key: str | None = None
    touch_weight: float = 0.2
    touch_full: float = 1.0  # a touch reading summed over taxels that counts as firm contact

    def __call__(self, step: dict[str, np.ndarray], t: int, session: Session) -> np.ndarray:
        obj, _ = self.obj(step, t)
        agent, _ = self.agent(step, t)
        gap = np.maximum(np.linalg.norm(agent - obj, axis=1) - self.reach_radius, 0.0)
        cost = gap / self.scale
        if self.touch_key and self.touch_key in step:
            felt = np.abs(step[self.touch_key]).reshape(len(cost), -1).sum(1)
            near = gap < 0.5 * self.reach_radius  # touch is only credited near the chosen object
            cost = cost - self.touch_weight * near * np.minimum(felt / self.touch_full, 1.0)
        return cost


@dataclass
class PixelGoalCost:
    """Mean squared pixel distance (in [0, 1]) between a predicted frame and a goal image."""

    key: str
    goal: np.ndarray  # (H, W, 3) uint8

    def __call__(self, step: dict[str, np.ndarray], t: int, session: Session) -> np.ndarray:
        d = step[self.key].astype(np.float32) / 255.0 - self.goal.astype(np.float32)[None] / 255.0
        return (d * d).mean((1, 2, 3))


@dataclass
class LatentGoalCost:
    """Mean squared distance between the session's `latent() -> (N, D)` and the goal's latent `(D,)`,
    encoded once by the session from the goal observation `{key: (1, *shape)}`."""

    goal_obs: dict[str, np.ndarray]
    goal: np.ndarray | None = None

    def __call__(self, step: dict[str, np.ndarray], t: int, session: Session) -> np.ndarray:
        if not callable(getattr(session, "latent", None)) or not callable(getattr(session, "encode_latent", None)):
            raise GoalError("a latent goal needs a model session with latent() and encode_latent(); "
                            "use --goal-cost state or pixel with the simulator")
        if self.goal is None:
            self.goal = np.asarray(session.encode_latent(self.goal_obs), np.float32)[0]  # (D,)
        z = np.asarray(session.latent(), np.float32)  # (N, D)
        return ((z - self.goal[None]) ** 2).mean(1)


def check_goal_image(image: np.ndarray, shape: tuple[int, ...], where: str = "goal image") -> np.ndarray:
    """Return `image` as uint8 `(H, W, 3)` of the world's camera shape, or raise GoalError."""
    img = np.asarray(image)
    if img.shape != tuple(shape):
        raise GoalError(f"{where}: shape {img.shape}, but the world's camera gives {tuple(shape)}; "
                        "resize it or render the goal in this world")
    if img.dtype != np.uint8:
        if img.dtype.kind == "f" and (not np.all(np.isfinite(img))):
            raise GoalError(f"{where}: contains NaN or inf")
        img = np.clip(img * (255.0 if img.dtype.kind == "f" and img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return img
