"""Tabletop (MuJoCo) parts of the report that re-simulate or edit ground truth.

* `world_for`: a TabletopWorld matching a dataset's spec config (its camera, image size, sub-steps...),
  without sound or segmentation (nothing here needs them); a mismatch raises ValueError.
* `sim_rollouts`: controllability's ground truth: the world rebuilt from the GT bodies of step C-1
  (`TabletopWorld.state_from_gt`) and stepped with the true and the alternative actions.
* `ConstantVelocitySession`: every GT body moved on with its last GT linear velocity (no contacts, no
  friction, pose otherwise kept), placed in the world and rendered.
* `make_pairs` / `sim_errors`: surprise pairs made by editing GT frames with `gt.segmentation` from the
  event step on (a body erased, recoloured or moved), or, for `wall`, by rendering a body that keeps its
  pre-contact velocity through the rim (both clips rendered from the event on), and the simulator's own
  errors on them.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from scipy import ndimage

from genworld.evaluate.baselines import GroundTruthStateSession
from genworld.evaluate.config import EvalConfig
from genworld.evaluate.surprise import EVENT, Pair

SEG, BODIES = "gt.segmentation", "gt.bodies"
B_X, B_Y, B_Z, B_VX, B_VY, B_VZ, B_EXISTS, B_COLOUR = 0, 1, 2, 7, 8, 9, 16, 19  # spec.BODY_COLUMNS
KINDS = ("vanish", "wall", "recolour", "teleport")
MIN_AREA = 8  # pixels: a body edited in a surprise clip shows at least this many in every edited frame


def world_for(spec: Any) -> Any:
    """A TabletopWorld (no sound, no segmentation) whose spec config equals the dataset's; ValueError if none."""
    from genworld.worlds import make_world

    config = spec.config or {}
    keys = ("image_size", "substeps", "max_speed", "touch_rows", "table_half")
    world = make_world("tabletop", fps=spec.fps, sound=False, segmentation=False,
                       **{k: config[k] for k in keys if k in config})
    mine = json.loads(json.dumps(world.spec.config))
    theirs = json.loads(json.dumps(config))
    if mine != theirs:
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        world.close()
        raise ValueError(f"the dataset's tabletop config differs from a default world's in {diff}: it cannot be "
                         "re-simulated")
    return world


def _state(world: Any, bodies: np.ndarray) -> dict[str, Any]:
    return world.state_from_gt({BODIES: bodies})


def sim_rollouts(world: Any, episodes: list[dict[str, np.ndarray]], context: int, steps: int, alt: np.ndarray,
                 video_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Simulator frames (N, steps, ...) under the true and the alternative actions, from each GT state at C-1."""
    akey = world.spec.action.key
    runs: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for ep, a in zip(episodes, alt):
        start = _state(world, ep[BODIES][context - 1])
        for j, acts in enumerate((ep[akey][context - 1: context - 1 + steps], a)):
            world.set_state(start)
            runs[j].append(np.stack([world.step(x)[0][video_key] for x in acts]))
    return np.stack(runs[0]), np.stack(runs[1])


class ConstantVelocitySession(GroundTruthStateSession):
    """Moves every GT body on with its last GT linear velocity (no contacts) and renders it in the tabletop world."""

    state_key = BODIES

    def __init__(self, spec: Any, world: Any | None = None) -> None:
        super().__init__(spec)
        self.world = world if world is not None else world_for(spec)
        self.dt = 1.0 / spec.fps

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]:
        out = super().step(action)
        self.state[..., B_X:B_Z + 1] += self.state[..., B_VX:B_VZ + 1] * self.dt
        out[self.video] = np.stack([_state(self.world, b)["obs"][self.video] for b in self.state])
        for m in self.spec.of_kind("proprio"):
            if m.names[:4] == ("x", "y", "vx", "vy"):
                out[m.key] = self.state[:, 0, [B_X, B_Y, B_VX, B_VY]].astype(np.float32)
        return out


# ---- surprise: impossible clips edited from GT frames ---------------------------------------------------


def clean_plate(frames: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """(S, S, 3) the scene without bodies: per pixel the median over the frames where it shows scene; pixels a
    body covers in every frame, and the 2-pixel fringe around them, take the nearest other pixel's value."""
    f, s = frames.astype(np.float64), seg == 0
    seen = ~ndimage.binary_dilation(~s.any(0), iterations=2)
    plate = np.where(s[..., None], f, np.nan)
    plate = np.nanmedian(np.where(seen[None, ..., None], plate, 0.0), 0)
    idx = ndimage.distance_transform_edt(~seen, return_distances=False, return_indices=True)
    return plate[idx[0], idx[1]]


def body_mask(seg: np.ndarray, label: int) -> np.ndarray:
    """The body's pixels and a two-pixel rim of scene around them (its blurred edge)."""
    return ndimage.binary_dilation(seg == label, iterations=2) & ((seg == label) | (seg == 0))


def erase_body(frame: np.ndarray, seg: np.ndarray, label: int, plate: np.ndarray) -> np.ndarray:
    out = frame.copy()
    m = body_mask(seg, label)
    out[m] = plate[m].round().astype(np.uint8)
    return out


def table_pixels(plate: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """(S, S) bool: the plate shows the table top there (not rim or floor)."""
    return np.abs(plate - np.asarray(config["background"], np.float64)).max(-1) < 30


def edit_clip(kind: str, frames: np.ndarray, seg: np.ndarray, row: int, colour: int, config: dict[str, Any],
              plate: np.ndarray, e: int, rng: np.random.Generator, used: set[int]) -> np.ndarray | None:
    """Frames (L, S, S, 3) with body `row` (gt.bodies row, label row + 1) edited from clip index e on, or None
    when this body cannot be edited cleanly here."""
    label = row + 1
    out = frames.copy()
    if kind == "vanish":
        for t in range(e, len(frames)):
            out[t] = erase_body(frames[t], seg[t], label, plate)
        return out
    if kind == "recolour":
        pal = np.asarray(config["palette"], np.float64)
        free = [c for c in range(len(pal) - 1) if c not in used] or [c for c in range(len(pal) - 1) if c != colour]
        ratio = pal[int(rng.choice(free))] / np.maximum(pal[colour], 1.0)
        for t in range(e, len(frames)):
            m = seg[t] == label
            out[t][m] = np.clip(frames[t][m] * ratio, 0, 255).round().astype(np.uint8)
        return out
    # teleport: the body's pixels moved 14-22 px onto bare table, clear of the others, for every frame from e on
    table = table_pixels(plate, config)
    S = table.shape[0]
    for _ in range(12):
        ang, d = rng.uniform(0, 2 * np.pi), rng.uniform(14, 22)
        dx, dy = int(round(d * np.cos(ang))), int(round(d * np.sin(ang)))
        ok = True
        for t in range(e, len(frames)):
            ys, xs = np.nonzero(body_mask(seg[t], label))
            ty, tx = ys + dy, xs + dx
            near = ndimage.binary_dilation(seg[t] > 0, iterations=2) & (seg[t] != label)
            if not (((0 <= tx) & (tx < S) & (0 <= ty) & (ty < S)).all() and table[ty, tx].all()
                    and not near[ty, tx].any()):
                ok = False
                break
            src = frames[t][ys, xs].copy()
            out[t] = erase_body(frames[t], seg[t], label, plate)
            out[t][ty, tx] = src
        if ok:
            return out
        out = frames.copy()
    return None


def rim_hits(contacts: np.ndarray, e: int, L: int) -> list[tuple[int, int]]:
    """(clip start, gt.bodies row) of every object that meets the rim at clip index e after two steps touching
    nothing but the table (gt.contacts rows: fingertip, objects; columns: fingertip, objects, table, rim)."""
    K = contacts.shape[1] - 1
    out = []
    for t in range(e + 1, len(contacts) - (L - e) + 1):
        for k in range(1, K + 1):
            free = all(contacts[u, k, :K + 1].sum() == 0 and contacts[u, k, K + 2] == 0 and contacts[u, :, k].sum() == 0
                       for u in (t - 1, t - 2))
            if contacts[t, k, K + 2] > 0 and free:
                out.append((t - e, k))
    return out


def through_wall(world: Any, bodies: np.ndarray, row: int, e: int, video_key: str, fps: int) -> tuple[np.ndarray,
                                                                                                         np.ndarray]:
    """Frames (L - e, ...) from clip index e on, rendered from the GT bodies (L, K+1, columns) and from the same
    bodies with `row` moved on with its velocity at e - 1 (pose otherwise kept): it passes through the rim."""
    edited = bodies[e:].astype(np.float64).copy()
    steps = np.arange(1, len(edited) + 1)[:, None]
    edited[:, row, B_X:B_Y + 1] = bodies[e - 1, row, B_X:B_Y + 1] + bodies[e - 1, row, B_VX:B_VY + 1] * steps / fps
    edited[:, row, B_Z] = bodies[e - 1, row, B_Z]
    edited[:, row, 3:7] = bodies[e - 1, row, 3:7]  # orientation
    real = np.stack([_state(world, b)["obs"][video_key] for b in bodies[e:]])
    return real, np.stack([_state(world, b)["obs"][video_key] for b in edited])


def make_pairs(episodes: list[dict[str, np.ndarray]], config: dict[str, Any], cfg: EvalConfig, video_key: str,
               rng: np.random.Generator, world: Any = None) -> tuple[list[Pair], dict[str, str]]:
    """Up to cfg.surprise_pairs pairs per kind: `possible` = the GT frames (L, S, S, 3) of a clip, `impossible`
    = the same frames with one object edited from the event on; a reason for each kind that found none.

    `wall` needs `world` (a TabletopWorld for the spec): from the event on both clips are rendered from
    gt.bodies, the impossible one with the object that meets the rim moving on with its earlier velocity."""
    C, L = cfg.context, cfg.context + cfg.surprise_steps
    e = C + EVENT
    pairs: list[Pair] = []
    missing: dict[str, str] = {}
    plates: dict[int, np.ndarray] = {}
    hits = {i: rim_hits(ep["gt.contacts"], e, L) for i, ep in enumerate(episodes)} if world is not None else {}
    for kind in KINDS:
        found = 0
        if kind == "wall":
            found = _wall_pairs(episodes, hits, cfg, video_key, rng, world, e, pairs)
            if not found:
                missing[kind] = ("no object meets the rim after moving freely in the evaluated episodes" if world
                                 is not None else "needs the tabletop world to render a pass-through")
            continue
        order = rng.permutation(len(episodes))
        for rep in range(4 * cfg.surprise_pairs):
            if found >= cfg.surprise_pairs:
                break
            i = int(order[rep % len(order)])
            ep = episodes[i]
            T = len(ep[video_key])
            if T < L:
                continue
            s = int(rng.integers(0, T - L + 1))
            seg = ep[SEG][s: s + L]
            bodies = ep[BODIES][s]
            area = (seg[e:, None] == (np.arange(2, bodies.shape[0] + 1)[:, None, None])).sum((2, 3)).min(0)
            cands = [int(r) + 1 for r in np.flatnonzero(area >= MIN_AREA)]  # object rows, fully in view
            if not cands:
                continue
            row = int(rng.choice(cands))
            if i not in plates:
                plates[i] = clean_plate(ep[video_key], ep[SEG])
            used = {int(c) for c, x in zip(bodies[1:, B_COLOUR], bodies[1:, B_EXISTS]) if x > 0.5}
            frames = ep[video_key][s: s + L]
            imp = edit_clip(kind, frames, seg, row, int(bodies[row, B_COLOUR]), config, plates[i], e, rng, used)
            if imp is None:
                continue
            pairs.append(Pair(kind, i, s, row, frames.copy(), imp))
            found += 1
        if not found:
            missing[kind] = f"no clip of {L} steps with an object in view that could be edited cleanly"
    return pairs, missing


def _wall_pairs(episodes: list[dict[str, np.ndarray]], hits: dict[int, list[tuple[int, int]]], cfg: EvalConfig,
                video_key: str, rng: np.random.Generator, world: Any, e: int, pairs: list[Pair]) -> int:
    """Append up to cfg.surprise_pairs pass-through pairs (clips of visible objects meeting the rim); how many."""
    L = cfg.context + cfg.surprise_steps
    cands = [(i, s, k) for i in sorted(hits) for s, k in hits[i]]
    found = 0
    for j in rng.permutation(len(cands)):
        if found >= cfg.surprise_pairs:
            break
        i, s, k = cands[int(j)]
        ep = episodes[i]
        if (ep[SEG][s + e - 1: s + L] == k + 1).sum((1, 2)).min() < MIN_AREA:
            continue  # the object must be in view from the step before the event on
        real, imp = through_wall(world, ep[BODIES][s: s + L], k, e, video_key, world.cfg.fps)
        if np.array_equal(real, imp):
            continue
        frames = ep[video_key][s: s + L]
        pairs.append(Pair("wall", i, s, k, np.concatenate([frames[:e], real]), np.concatenate([frames[:e], imp])))
        found += 1
    return found


def clip_steps(frames: np.ndarray, episode: dict[str, np.ndarray], start: int, video_key: str) -> dict[str, np.ndarray]:
    """The clip {key: (L, ...)}: `frames` as video, the other keys (ground truth included) from the episode."""
    out = {k: v[start: start + len(frames)] for k, v in episode.items()}
    out[video_key] = frames
    return out


def sim_errors(clips: list[dict[str, np.ndarray]], context: int, video_key: str, world: Any) -> np.ndarray:
    """(N, L - C) errors of the simulator stepped from the clip's previous GT bodies (the real state, which is
    the same in both clips of a pair) with the real action; clips 2j and 2j+1 share each simulated frame."""
    akey = world.spec.action.key
    out = []
    for j in range(0, len(clips), 2):
        c = clips[j]
        L = len(c[video_key])
        rows: tuple[list[float], list[float]] = ([], [])
        for t in range(context, L):
            world.set_state(_state(world, c[BODIES][t - 1]))
            sim = world.step(c[akey][t - 1])[0][video_key].astype(np.float32)
            for r, other in enumerate(clips[j: j + 2]):
                rows[r].append(float((((sim - other[video_key][t]) / 255.0) ** 2).mean()))
        out.extend(rows)
    return np.asarray(out)
