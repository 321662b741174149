"""Objects of Atari frames (`arcade:<Game>`) by palette segmentation learned from ground-truth frames.

Atari screens are flat colours on a flat background, but `genworld collect` area-resizes them (210x160 to
64x64), so a small sprite (Pong's ball: 0.8 x 1.2 output pixels) is never drawn in its own colour: every
one of its pixels is a blend p = a c + (1 - a) bg with the background. The reader therefore works with
each pixel's offset from the background, p - bg, whose direction is that of c - bg whatever the blend:

* palette, learned from GT frames of unscored episodes: background = the most common colour; object
  colours = the directions (p* - bg) / |p* - bg| of the strongest pixel p* of every GT component,
  merged greedily where their cosine exceeds `MERGE_COS`;
* blobs: pixels with |p - bg| > `fg_dist` form 8-connected components (a blended sprite touches
  diagonally); those with `a_min` <= area <= `a_max` are objects (walls, brick rows and the like are
  larger and never scored); identity = the palette colour nearest in direction to the blob's strongest
  pixel, or -1 (off-palette) when no cosine reaches `ID_COS`.

Per frame a system's frame is compared with the GT frame read the same way (an object the game hides,
such as Pong's ball between points, is absent from both), per GT object k with pixels P_k:

* persistence / vanish: the prediction draws k when, within `reach` px of P_k (GT pixels of other
  objects and of walls left out: drawing those is no evidence for k), the contrast |p - bg| of its pixels
  whose colour direction is within `SAME_COS` of one of k's own GT pixels sums to at least `cover` of k's
  GT contrast; otherwise k vanished;
* colour change: k vanished, but something is drawn there (the same sum over pixels of any colour
  reaches `cover`);
* spawn: a predicted object with no GT contrast of `cover` of its own within `reach` px (per GT object);
* teleport: a predicted object that jumps more than 1.2 x `v_max` + `teleport_tol` from its same-identity
  predecessor (Hungarian on distance) while every GT object of that identity moves continuously (its
  GT predecessor is at most `track` px away); `v_max` = the fastest continuous GT motion of the
  calibration episodes.

Thresholds are calibrated on GT frames of unscored episodes, with a noisy copy of them as the frames
of a flawless model; `arcade_check.self_check` validates them (false positives, detection of objects
removed, recoloured, teleported). See docs/evaluation.md "Atari objects".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

MERGE_COS = 0.97  # object colours whose directions are this close are one colour
SAME_COS = 0.97  # a predicted pixel this close in direction to one of a GT object's pixels draws its colour
ID_COS = 0.9  # a blob whose direction is farther than this from every palette colour is off-palette
EIGHT = np.ones((3, 3), bool)


@dataclass
class ArcadeThresholds:
    """Learned palette and thresholds of the Atari object reader (stored with every report)."""

    background: list[float]
    colours: list[list[float]]  # unit directions (c - bg) / |c - bg|
    fg_dist: float = 40.0  # RGB distance from the background of an object pixel
    a_min: int = 1
    a_max: int = 48
    reach: int = 2  # px: the prediction must draw an object within this distance of its GT pixels
    cover: float = 0.5  # ... with at least this fraction of its GT contrast (sum of |p - bg|)
    track: float = 12.0  # px: a GT blob whose previous-frame partner is this close moves continuously
    v_max: float = 0.0  # px/step: fastest continuous GT motion of the calibration set
    teleport_tol: float = 2.0
    episodes: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FrameBlobs:
    """Objects of one frame: identity (palette index, -1 off-palette), centroid, area."""

    ident: np.ndarray  # (n,)
    xy: np.ndarray  # (n, 2)
    area: np.ndarray  # (n,)
    pixels: list[np.ndarray] = field(default_factory=list)  # n arrays of flat pixel indices
    dirs: np.ndarray | None = None  # (n, 3) unit offset from the background of each blob's strongest pixel
    off: np.ndarray | None = None  # (S*S, 3) the frame's offset from the background

    def __len__(self) -> int:
        return len(self.ident)


def background_colour(frames: np.ndarray) -> np.ndarray:
    """The most common colour of frames (..., 3) uint8."""
    f = np.asarray(frames).reshape(-1, 3)[::7]
    key = (f[:, 0].astype(np.int64) << 16) | (f[:, 1].astype(np.int64) << 8) | f[:, 2]
    uniq, counts = np.unique(key, return_counts=True)
    k = int(uniq[counts.argmax()])
    return np.array([k >> 16, (k >> 8) & 255, k & 255], np.float64)


def _components(frame: np.ndarray, bg: np.ndarray, fg_dist: float, a_min: int, a_max: int
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pixel indices, direction of the strongest pixel) of each object-sized component of a frame."""
    off = np.asarray(frame, np.float64) - bg  # (S, S, 3)
    mag = np.sqrt((off**2).sum(-1))
    lab, n = ndimage.label(mag > fg_dist, EIGHT)
    if n == 0:
        return []
    S = lab.shape[1]
    mflat, oflat = mag.ravel(), off.reshape(-1, 3)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    out = []
    for j, sl in enumerate(ndimage.find_objects(lab), 1):
        if not a_min <= sizes[j] <= a_max:
            continue
        yy, xx = np.nonzero(lab[sl] == j)  # within the component's bounding box
        p = (yy + sl[0].start) * S + xx + sl[1].start
        s = p[mflat[p].argmax()]
        out.append((p, oflat[s] / mflat[s]))
    return out


def learn_palette(frames: np.ndarray, fg_dist: float = 40.0, a_min: int = 1, a_max: int = 48) -> ArcadeThresholds:
    """Background and object colours of GT frames (N, S, S, 3) uint8."""
    bg = background_colour(frames)
    colours: list[np.ndarray] = []
    for f in frames:
        for _, d in _components(f, bg, fg_dist, a_min, a_max):
            if not colours or max(float(c @ d) for c in colours) < MERGE_COS:
                colours.append(d)
    return ArcadeThresholds(bg.tolist(), [c.tolist() for c in colours], fg_dist, a_min, a_max)


class ArcadeReader:
    """Reads the objects of Atari frames with a learned palette."""

    def __init__(self, th: ArcadeThresholds) -> None:
        self.th = th
        self.bg = np.asarray(th.background, np.float64)
        self.colours = np.asarray(th.colours, np.float64).reshape(-1, 3)

    def blobs(self, frame: np.ndarray) -> FrameBlobs:
        """The objects of one frame (S, S, 3)."""
        S = frame.shape[1]
        comps = _components(frame, self.bg, self.th.fg_dist, self.th.a_min, self.th.a_max)
        if not comps:
            return FrameBlobs(np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros(0), [], np.zeros((0, 3)),
                              self.offset(frame))
        dirs = np.stack([d for _, d in comps])
        cos = dirs @ self.colours.T if len(self.colours) else np.zeros((len(comps), 0))
        ident = np.where(cos.max(1, initial=-1) >= ID_COS, cos.argmax(1) if cos.size else -1, -1)
        xy = np.array([[(p % S).mean() + 0.5, (p // S).mean() + 0.5] for p, _ in comps])
        return FrameBlobs(ident.astype(np.int64), xy, np.array([len(p) for p, _ in comps], np.float64),
                          [p for p, _ in comps], dirs, self.offset(frame))

    def offset(self, frame: np.ndarray) -> np.ndarray:
        """(S*S, 3) each pixel's offset from the background."""
        return np.asarray(frame, np.float64).reshape(-1, 3) - self.bg


def match(a: FrameBlobs, b: FrameBlobs, gate: float, same_identity: bool = True) -> np.ndarray:
    """(len(a),) index of each blob of `a`'s partner in `b` (-1: none within `gate`), Hungarian on distance."""
    out = -np.ones(len(a), np.int64)
    if not len(a) or not len(b):
        return out
    d = np.linalg.norm(a.xy[:, None] - b.xy[None], axis=-1)
    if same_identity:
        d = np.where(a.ident[:, None] == b.ident[None], d, np.inf)
    cost = np.where(np.isfinite(d), d, 1e6)
    r, c = linear_sum_assignment(cost)
    keep = d[r, c] <= gate
    out[r[keep]] = c[keep]
    return out


def gt_motion(gt: list[FrameBlobs], track: float) -> list[float]:
    """Per-step displacements of continuously moving GT blobs (same identity, partner within `track`)."""
    steps = []
    for prev, cur in zip(gt[:-1], gt[1:]):
        m = match(cur, prev, track)
        steps += [float(np.linalg.norm(cur.xy[i] - prev.xy[j])) for i, j in enumerate(m) if j >= 0]
    return steps


def teleports(p: FrameBlobs, p_prev: FrameBlobs, g: FrameBlobs, g_prev: FrameBlobs, track: float,
              bound: float) -> float:
    """Predicted blobs that jump more than `bound` px from their same-identity predecessor, counted in the
    identities whose GT blobs all move continuously between the two frames (none appears or leaps)."""
    n = 0.0
    for c in np.unique(g.ident):
        gc, gp = g.ident == c, g_prev.ident == c
        if gc.sum() != gp.sum() or (match(_sub(g, gc), _sub(g_prev, gp), track) < 0).any():
            continue
        pc, pp = _sub(p, p.ident == c), _sub(p_prev, p_prev.ident == c)
        m = match(pc, pp, np.inf)
        n += float(sum(np.linalg.norm(pc.xy[i] - pp.xy[j]) > bound for i, j in enumerate(m) if j >= 0))
    return n


def _sub(b: FrameBlobs, keep: np.ndarray) -> FrameBlobs:
    return FrameBlobs(b.ident[keep], b.xy[keep], b.area[keep], [q for q, k in zip(b.pixels, keep) if k],
                      None if b.dirs is None else b.dirs[keep], b.off)


def _reach(pixels: np.ndarray, S: int, r: int) -> np.ndarray:
    """Flat indices of the pixels within r px (square) of a pixel set of an (S, S) frame."""
    d = np.arange(-r, r + 1)
    y = (pixels // S)[:, None, None] + d[None, :, None]
    x = (pixels % S)[:, None, None] + d[None, None, :]
    ok = (y >= 0) & (y < S) & (x >= 0) & (x < S)
    return np.unique((y * S + x)[ok])


def coverage(g: FrameBlobs, p: FrameBlobs, th: ArcadeThresholds) -> tuple[np.ndarray, np.ndarray, int]:
    """Per GT blob: does the prediction draw it (same colour, near its pixels) and does it draw anything
    there at all; and the number of predicted blobs drawn where the GT frame shows nothing."""
    S = int(round(np.sqrt(len(g.off))))
    gmag, pmag = np.linalg.norm(g.off, axis=1), np.linalg.norm(p.off, axis=1)
    same, anyc = np.zeros(len(g), bool), np.zeros(len(g), bool)
    fg = gmag > th.fg_dist / 2
    taken = np.zeros(len(gmag), bool)  # GT pixels of other objects and of walls: their drawing is no evidence
    taken[fg] = True
    for k, px in enumerate(g.pixels):
        mine = np.union1d(px, (r1 := _reach(px, S, 1))[gmag[r1] <= th.fg_dist])  # the object and its faint edge
        near = _reach(px, S, th.reach)
        near = near[~taken[near] | np.isin(near, mine)]
        need = th.cover * gmag[px].sum()
        on = pmag[near] > th.fg_dist / 2
        strong = px[gmag[px] > th.fg_dist / 2]
        own = g.off[strong] / gmag[strong, None]  # (m, 3) the colours the GT draws the object in
        cos = ((p.off[near] @ own.T) / np.maximum(pmag[near], 1e-9)[:, None]).max(1)
        same[k] = pmag[near][on & (cos >= SAME_COS)].sum() >= need
        anyc[k] = pmag[near][on].sum() >= need
    spawn = 0
    for px in p.pixels:
        near = _reach(px, S, th.reach)
        spawn += int(gmag[near][gmag[near] > th.fg_dist / 2].sum() < th.cover * pmag[px].sum())
    return same, anyc, spawn


def flags(pred: list[FrameBlobs], gt: list[FrameBlobs], th: ArcadeThresholds) -> dict[str, np.ndarray]:
    """Per-frame counts (T,) of GT blobs, vanished, spawned, recoloured and teleported ones; frame 0 is the
    real anchor (only the teleport check of frame 1 reads it) and is not counted."""
    T = len(gt)
    out = {k: np.zeros(T) for k in ("objects", "vanish", "spawn", "colour", "teleport", "present")}
    bound = 1.2 * th.v_max + th.teleport_tol
    for t in range(1, T):
        g, p = gt[t], pred[t]
        same, anyc, spawn = coverage(g, p, th)
        out["objects"][t] = len(g)
        out["present"][t] = float(same.sum())
        out["vanish"][t] = float((~same).sum())
        out["colour"][t] = float((~same & anyc).sum())
        out["spawn"][t] = float(spawn)
        out["teleport"][t] = teleports(p, pred[t - 1], g, gt[t - 1], th.track, bound)
    return out


def calibrate(frames: list[np.ndarray], flawless: list[np.ndarray], episodes: list[int] | None = None
              ) -> ArcadeThresholds:
    """Palette and thresholds from GT episodes [(T, S, S, 3)] and a flawless model's frames of them (a
    perturbed copy): `v_max` = fastest continuous GT motion; `teleport_tol` so that the flawless frames'
    blobs never jump beyond 1.2 v_max + tol while the GT moves continuously."""
    th = learn_palette(np.concatenate([np.asarray(f) for f in frames]))
    th.episodes = list(episodes or [])
    reader = ArcadeReader(th)
    gts = [[reader.blobs(f) for f in ep] for ep in frames]
    th.v_max = max([0.0] + [s for g in gts for s in gt_motion(g, th.track)])
    preds = [[reader.blobs(f) for f in ep] for ep in flawless]
    for tol in (2.0, 3.0, 4.0, 6.0, 8.0):
        th.teleport_tol = tol
        if all(flags(p, g, th)["teleport"].sum() == 0 for g, p in zip(gts, preds)):
            break
    return th


def score(pred: np.ndarray, gt: np.ndarray, reader: ArcadeReader, gt_cache: list[list[FrameBlobs]] | None = None
          ) -> dict[str, Any]:
    """Identity and physics rates of predicted frames (E, H+1, S, S, 3) against GT frames of the same shape
    (frame 0 the real anchor), pooled over episodes by GT object-frames."""
    tot = {k: 0.0 for k in ("objects", "vanish", "spawn", "colour", "teleport", "present")}
    per_h = np.zeros((2, pred.shape[1] - 1))
    for e in range(len(pred)):
        g = gt_cache[e] if gt_cache is not None else [reader.blobs(f) for f in gt[e]]
        fl = flags([reader.blobs(f) for f in pred[e]], g, reader.th)
        for k in tot:
            tot[k] += float(fl[k].sum())
        per_h += np.stack([fl["present"][1:], fl["objects"][1:]])
    n = max(tot["objects"], 1.0)
    return {"identity": {"persistence": tot["present"] / n if tot["objects"] else None},
            "physics": {"vanish_rate": tot["vanish"] / n, "spawn_rate": tot["spawn"] / n,
                        "teleport_rate": tot["teleport"] / n, "colour_change_rate": tot["colour"] / n,
                        "object_frames": tot["objects"]},
            "persistence_per_h": [float(a / b) if b else None for a, b in zip(*per_h)]}
