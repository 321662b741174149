"""Validation of the Atari object reader (`arcade_objects`) on ground-truth episodes, as METRICS.md asks.

Two checks, on episodes the thresholds were not calibrated on:

* false positives: the GT frames scored against themselves, and a flawless model's frames of them (the GT
  with Gaussian pixel noise of sigma 4 grey levels, and blurred with sigma 0.6 px: a decoder's error)
  raise violations on at most 1% of GT object-frames;
* detection: GT frames corrupted on purpose at one random frame — an object removed (its pixels and its
  faint edge painted with the background), recoloured (its offset from the background turned to another
  colour's direction, magnitude kept), teleported (moved 1.5-4 x `v_max` to a free spot of the frame) —
  are flagged (vanish, spawn, colour change or teleport at that frame) in at least 95% of cases.

`genworld eval` runs the same check on its calibration episodes and reports the object metrics of an
Atari world only when it passes (otherwise unavailable, with the figures).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from genworld.evaluate.arcade_objects import ArcadeReader, ArcadeThresholds, _components, _reach, flags, score

KINDS = ("remove", "recolour", "teleport")
FP_MAX, DETECT_MIN = 0.01, 0.95
OTHER_COLOURS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [-1, -1, -1]], np.float64) / np.sqrt(
    [[1], [1], [1], [3], [3]])


def flawless(frames: np.ndarray, rng: np.random.Generator, noise: float = 4.0, blur: float = 0.0) -> np.ndarray:
    """Frames (..., S, S, 3) uint8 as a flawless model might draw them: blurred by `blur` px, plus pixel noise."""
    f = np.asarray(frames, np.float64)
    if blur > 0:
        f = ndimage.gaussian_filter(f, (0,) * (f.ndim - 3) + (blur, blur, 0))
    return np.clip(np.round(f + rng.normal(0, noise, f.shape)), 0, 255).astype(np.uint8)


def corrupt(frame: np.ndarray, kind: str, k: int, th: ArcadeThresholds, rng: np.random.Generator
            ) -> np.ndarray | None:
    """One frame (S, S, 3) with its k-th object removed, recoloured or teleported (None: no room to move it)."""
    S = frame.shape[0]
    bg = np.asarray(th.background, np.float64)
    comps = _components(frame, bg, th.fg_dist, th.a_min, th.a_max)
    px, d = comps[k]
    fr = frame.reshape(-1, 3).astype(np.float64)
    ring = _reach(px, S, 1)
    px = np.union1d(px, ring[np.linalg.norm(fr[ring] - bg, axis=1) <= th.fg_dist])  # with its faint edge
    if kind == "remove":
        fr[px] = bg
    elif kind == "recolour":
        cands = np.vstack([np.asarray(th.colours).reshape(-1, 3), OTHER_COLOURS])
        cands = cands[cands @ d < 0.8]
        mag = np.linalg.norm(fr[px] - bg, axis=1, keepdims=True)
        fr[px] = bg + mag * cands[rng.integers(len(cands))]
    elif kind == "teleport":
        others = np.linalg.norm(fr - bg, axis=1) > th.fg_dist / 2
        others[px] = False
        busy = ndimage.binary_dilation(others.reshape(S, S), np.ones((5, 5), bool)).ravel()
        for _ in range(50):
            ang, r = rng.uniform(0, 2 * np.pi), rng.uniform(1.5, 4.0) * max(th.v_max, 2.0)
            x, y = px % S + int(round(r * np.cos(ang))), px // S + int(round(r * np.sin(ang)))
            if x.min() < 0 or y.min() < 0 or x.max() >= S or y.max() >= S or busy[y * S + x].any():
                continue
            vals = fr[px].copy()
            fr[px] = bg
            fr[y * S + x] = vals
            break
        else:
            return None
    else:
        raise ValueError(f"corruption kind {kind!r}: expected one of {KINDS}")
    return np.clip(np.round(fr), 0, 255).reshape(S, S, 3).astype(np.uint8)


def detection(frames: np.ndarray, th: ArcadeThresholds, rng: np.random.Generator, cases: int = 30
              ) -> dict[str, Any]:
    """Fraction of random corruptions of GT episodes (E, T, S, S, 3) flagged at the corrupted frame, per kind."""
    reader = ArcadeReader(th)
    spots = [(e, t) for e in range(len(frames)) for t in range(2, frames.shape[1])]
    gts: dict[int, list] = {}
    out: dict[str, Any] = {}
    for kind in KINDS:
        hit, n, tries = 0, 0, 0
        while spots and n < cases and tries < 20 * cases:
            tries += 1
            e, t = spots[rng.integers(len(spots))]
            if e not in gts:
                gts[e] = [reader.blobs(f) for f in frames[e]]
            g = gts[e]
            if not len(g[t]):
                continue
            bad = corrupt(frames[e, t], kind, int(rng.integers(len(g[t]))), th, rng)
            if bad is None:
                continue
            pred = [g[t - 1], reader.blobs(bad)]
            fl = flags(pred, [g[t - 1], g[t]], th)
            hit += int(any(fl[k][1] > 0 for k in ("vanish", "spawn", "colour", "teleport")))
            n += 1
        out[kind] = {"detected": hit / n if n else None, "cases": n}
    return out


def self_check(frames: np.ndarray, th: ArcadeThresholds, seed: int = 0, cases: int = 30) -> dict[str, Any]:
    """False-positive rates (GT, noisy GT, blurred GT) and corruption detection on GT episodes (E, T, S, S, 3);
    `passed` when every false-positive rate is <= 1% and every kind is detected in >= 95% of its cases."""
    rng = np.random.default_rng(seed)
    reader = ArcadeReader(th)
    gts = [[reader.blobs(f) for f in ep] for ep in frames]
    fp = {}
    for name, pred in (("exact", frames), ("noise_4", flawless(frames, rng)),
                       ("blur_0.6", flawless(frames, rng, noise=0.0, blur=0.6))):
        r = score(pred, frames, reader, gts)["physics"]
        fp[name] = max(r[k] for k in ("vanish_rate", "spawn_rate", "teleport_rate", "colour_change_rate"))
    det = detection(frames, th, rng, cases)
    objects = sum(len(b) for g in gts for b in g[1:])
    rates = [v["detected"] for v in det.values() if v["detected"] is not None]
    passed = objects > 0 and max(fp.values()) <= FP_MAX and len(rates) == len(KINDS) and min(rates) >= DETECT_MIN
    return {"passed": bool(passed), "false_positive": fp, "detection": det, "object_frames": objects}
