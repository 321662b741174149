"""Physics-IQ-style motion-mask score on the simulator (METRICS.md section 4.9), `physics_iq_local`.

Physics-IQ (Motamed et al. 2025) compares where things move in a generated video with where they move in
the real one. Here, per episode, over the last real context frame (index 0) and the H predicted frames:

* motion mask of frame t >= 1: |grey(x_t) - mean(grey(x_0 .. x_{t-1}))| > 10 grey levels (ITU-R 601 luma,
  0..255), then a binary opening and closing with a 3x3 square (scipy.ndimage);
* spatial IoU: IoU of the masks' union over time (where anything moved at all);
* spatiotemporal IoU: IoU of the (H, S, S) masks;
* weighted spatial IoU: sum_px min(n_pred, n_gt) / sum_px max(n_pred, n_gt), n = frames a pixel moved in;
* MSE: mean squared error of the frames on [0, 1] (Physics-IQ's MSE is on frames, not masks).

An IoU whose union is empty (nothing moves in either) is 1. Each quantity is averaged over episodes and
normalised by its physical variance (PV): the same quantity between two runs of the simulator from the
GT state of the last context step with every position moved by uniform noise of ±0.5 px (each run its
own), stepped with the true actions. Score = 100 x [(sIoU/PV_s + stIoU/PV_st + wIoU/PV_w) / 3 - (MSE -
PV_MSE)], clipped to [0, 100]. It is not the official Physics-IQ benchmark (other scenes, our PV), hence
`-local`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

THRESHOLD = 10.0  # grey levels (0..255) of a moving pixel
LUMA = np.array([0.299, 0.587, 0.114])
KEYS = ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou", "mse")
PERTURB = 0.5  # px: uniform noise on every GT position for the physical-variance runs


def motion_masks(frames: np.ndarray) -> np.ndarray:
    """(T-1, S, S) bool motion masks of frames (T, S, S, 3) uint8, frame 0 the real anchor (T >= 2)."""
    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[-1] != 3 or len(f) < 2:
        raise ValueError(f"motion masks: frames of shape (T >= 2, S, S, 3) expected, got {f.shape}")
    g = f.astype(np.float64) @ LUMA  # (T, S, S)
    mean = np.cumsum(g, 0)[:-1] / np.arange(1, len(g))[:, None, None]  # mean of frames 0 .. t-1, for t = 1 ..
    raw = np.abs(g[1:] - mean) > THRESHOLD
    box = np.ones((1, 3, 3), bool)  # per frame, never across time
    return ndimage.binary_closing(ndimage.binary_opening(raw, box), box)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def clip_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Mask scores of one clip: frames (T, S, S, 3) of a system and of the GT (frame 0 the shared anchor)."""
    if pred.shape != truth.shape:
        raise ValueError(f"motion masks: predicted frames {pred.shape} and GT frames {truth.shape} differ in shape")
    mp, mt = motion_masks(pred), motion_masks(truth)
    n_p, n_t = mp.sum(0), mt.sum(0)
    wsum = np.maximum(n_p, n_t).sum()
    mse = float((((pred[1:].astype(np.float64) - truth[1:].astype(np.float64)) / 255.0) ** 2).mean())
    return {"spatial_iou": _iou(n_p > 0, n_t > 0), "spatiotemporal_iou": _iou(mp, mt),
            "weighted_spatial_iou": float(np.minimum(n_p, n_t).sum() / wsum) if wsum else 1.0, "mse": mse,
            "iou_per_h": [_iou(a, b) for a, b in zip(mp, mt)]}


def mean_scores(preds: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Episode means of `clip_scores` over frames (E, T, S, S, 3); `iou_per_h` is a list of length T-1."""
    per = [clip_scores(p, t) for p, t in zip(preds, truth)]
    out: dict[str, Any] = {k: float(np.mean([c[k] for c in per])) for k in KEYS}
    out["iou_per_h"] = np.mean([c["iou_per_h"] for c in per], 0).tolist()
    return out


def score(m: dict[str, float], pv: dict[str, float]) -> float:
    """Physics-IQ-style score in [0, 100] of mean scores `m` against the physical variance `pv`."""
    ratio = np.mean([m[k] / pv[k] if pv[k] > 0 else 1.0 for k in KEYS[:3]])
    return float(np.clip(100.0 * (ratio - (m["mse"] - pv["mse"])), 0.0, 100.0))


def variance_runs(world: Any, episodes: list[dict[str, np.ndarray]], context: int, horizon: int, video_key: str,
                  rng: np.random.Generator, amount: float = PERTURB) -> tuple[np.ndarray, np.ndarray]:
    """Two simulator runs (E, H+1, S, S, 3) per episode from its GT state at C-1, every existing body's position
    moved by uniform ±amount px (independently per run), with the true actions; frame 0 is the real one."""
    from genworld.worlds.bounce import state_from_gt

    akey = world.spec.action.key
    runs: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for ep in episodes:
        table = np.asarray(ep["gt.objects"][context - 1], np.float64)
        for run in runs:
            t = table.copy()
            ex = t[:, 8] > 0.5
            t[ex, :2] += rng.uniform(-amount, amount, (int(ex.sum()), 2))
            world.set_state(state_from_gt(t, world.k, world.synth.n_modes))
            acts = ep[akey][context - 1: context - 1 + horizon]
            run.append(np.concatenate([ep[video_key][context - 1: context], [world.step(a)[0][video_key] for a in acts]]))
    return np.stack(runs[0]), np.stack(runs[1])


def motion_report(preds: dict[str, np.ndarray], truth: np.ndarray, pv: dict[str, Any] | None,
                  pv_method: str = "") -> dict[str, Any]:
    """`physics_iq_local` of every system {name: (E, H+1, S, S, 3)} against GT (E, H+1, S, S, 3), frame 0 the
    real anchor; `pv`: mean scores between two perturbed simulator runs (None: no score, the raw metrics only)."""
    out: dict[str, Any] = {"systems": {n: mean_scores(p, truth) for n, p in preds.items()},
                           "threshold_grey": THRESHOLD}
    if pv is None:
        out["score"] = None
        out["pv"] = {"available": False, "reason": pv_method or "no simulator to re-run perturbed initial conditions"}
    else:
        out["score"] = {n: score(m, pv) for n, m in out["systems"].items()}
        out["pv"] = {**{k: pv[k] for k in KEYS}, "method": pv_method}
    return out
