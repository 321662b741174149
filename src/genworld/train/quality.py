"""Open-loop quality of a session on held-out episodes, against the copy-last-frame baseline.

From C real steps, the session is stepped H times with the true actions. Per horizon h: frame PSNR
(model and copy-last), proprio RMSE normalised by the ground truth's per-dimension std (model and
copy-last), and touch contact F1 per taxel with a threshold from the ground truth.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genworld.plan.planner import random_actions
from genworld.train.data import EpisodeStore


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame PSNR of uint8 frames (N, H, W, C) -> (N,) in dB (capped at 60)."""
    mse = ((a.astype(np.float32) - b.astype(np.float32)) / 255) ** 2
    return np.minimum(-10 * np.log10(mse.reshape(len(a), -1).mean(1) + 1e-10), 60.0)


def f1(pred: np.ndarray, true: np.ndarray) -> float:
    tp = float((pred & true).sum())
    fp, fn = float((pred & ~true).sum()), float((~pred & true).sum())
    return 2 * tp / max(2 * tp + fp + fn, 1e-9)


def _nrmse(pred: np.ndarray, gt: np.ndarray, std: np.ndarray) -> list[float]:
    """Per-horizon RMSE of (N, H, d) predictions, each dimension divided by its std."""
    return [float(np.sqrt((((pred[:, h] - gt[:, h]) / std) ** 2).mean())) for h in range(gt.shape[1])]


def open_loop(session: Any, store: EpisodeStore, episodes: list[int], context: int = 4, horizon: int = 16,
              stride: int = 16, touch_threshold: dict[str, float] | None = None, batch: int = 32) -> dict[str, Any]:
    """Per-horizon metrics over every window (stride apart) of `episodes`; lists indexed by h-1."""
    spec = store.spec
    akey = spec.action.key
    wins = [(e, s) for e in episodes for s in range(0, store.length(e) - context - horizon + 1, stride)]
    if not wins:
        raise ValueError(f"no episode has {context + horizon} steps for context {context} + horizon {horizon}")
    preds: dict[str, list[np.ndarray]] = {}
    truth: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(wins), batch):
        chunk = wins[i: i + batch]
        win = [store.window(e, s, context + horizon) for e, s in chunk]
        full = {k: np.stack([w[k] for w in win]) for k in win[0]}  # (B, C+H, ...)
        session.reset({k: v[:, :context] for k, v in full.items()})
        out = [session.step(full[akey][:, context - 1 + h]) for h in range(horizon)]
        for k in session.obs_keys:
            preds.setdefault(k, []).append(np.stack([o[k] for o in out], 1))  # (B, H, ...)
            truth.setdefault(k, []).append(full[k])  # (B, C+H, ...)
    res: dict[str, Any] = {"windows": len(wins), "context": context, "horizon": horizon}
    for m in spec.modalities:
        if m.key not in preds:
            continue
        p, t = np.concatenate(preds[m.key]), np.concatenate(truth[m.key])
        gt, last = t[:, context:], np.repeat(t[:, context - 1: context], horizon, 1)
        if m.kind == "video":
            res[f"{m.key}/psnr"] = [float(psnr(p[:, h], gt[:, h]).mean()) for h in range(horizon)]
            res[f"{m.key}/psnr_copy_last"] = [float(psnr(last[:, h], gt[:, h]).mean()) for h in range(horizon)]
        elif m.kind == "proprio":
            std = np.maximum(t.reshape(-1, *m.shape).std(0), 1e-6)
            res[f"{m.key}/nrmse"] = _nrmse(p, gt, std)
            res[f"{m.key}/nrmse_copy_last"] = _nrmse(last, gt, std)
        elif m.kind == "touch":
            thr = (touch_threshold or {}).get(m.key, 0.0)
            on_p, on_t = p > thr, gt > thr
            res[f"{m.key}/contact_f1"] = [f1(on_p[:, h], on_t[:, h]) for h in range(horizon)]
            res[f"{m.key}/contact_f1_h1_4"] = f1(on_p[:, :4], on_t[:, :4])
            res[f"{m.key}/threshold"] = thr
        elif m.kind == "audio":
            res[f"{m.key}/rms"] = float(np.sqrt((p ** 2).mean()))
            res[f"{m.key}/rms_true"] = float(np.sqrt((gt ** 2).mean()))
    return res


def free_run(session: Any, context: dict[str, np.ndarray], steps: int = 500, seed: int = 0) -> dict[str, float]:
    """Step a session `steps` times from `context` with random actions in range; summarise how far its
    outputs wander: {key/max_abs, key/finite} per float modality, and frame mean brightness drift."""
    spec = session.spec
    a = spec.action
    rng = np.random.default_rng(seed)
    session.reset(context)
    B = session.batch_size
    peaks: dict[str, float] = {}
    finite = True
    bright = []
    for _ in range(steps):
        out = session.step(random_actions(a, rng, (B,)))
        for k, v in out.items():
            if v.dtype.kind == "f":
                finite &= bool(np.isfinite(v).all())
                peaks[k] = max(peaks.get(k, 0.0), float(np.abs(v).max()))
        for m in spec.of_kind("video"):
            bright.append(float(out[m.key].mean()))
    res: dict[str, Any] = {"steps": steps, "finite": finite, **{f"{k}/max_abs": v for k, v in peaks.items()}}
    if bright:
        n = max(len(bright) // 10, 1)
        res["video/brightness_first_10pct"] = float(np.mean(bright[:n]))
        res["video/brightness_last_10pct"] = float(np.mean(bright[-n:]))
    return res


def _best_threshold(model: Any, name: str, keys: list[str], grid: tuple[float, ...], score: Any, metric: str,
                    meta: dict[str, Any]) -> dict[str, Any]:
    """For each threshold t of `grid`, the model's thresholds `name` ({key: t}) are set and score() -> ({key: value},
    windows); per key, the threshold with the best value (ties: the one nearest 0.5) is kept on the model and
    returned as {key: {name, metric, metric_at_0.5, windows, **meta}}."""
    scores: dict[str, dict[float, float]] = {k: {} for k in keys}
    windows = 0
    for t in grid:
        setattr(model, name, {k: t for k in keys})
        values, windows = score()
        for k in keys:
            scores[k][t] = values[k]
    out = {}
    for k in keys:
        best = max(grid, key=lambda t: (scores[k][t], -abs(t - 0.5)))
        out[k] = {name: best, metric: scores[k][best], f"{metric}_at_0.5": scores[k].get(0.5), "windows": windows,
                  **meta}
    setattr(model, name, {k: out[k][name] for k in keys})
    return out


def calibrate_contact(session: Any, store: EpisodeStore, episodes: list[int], stats: dict[str, Any],
                      context: int = 4, horizon: int = 4, stride: int = 8,
                      grid: tuple[float, ...] = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5),
                      batch: int = 96) -> dict[str, Any]:
    """Choose, per touch key, the contact probability above which a predicted taxel is on.

    A model trained on rare contacts is under-confident, so 0.5 misses most of them. On `episodes` (training
    episodes: the held-out ones stay untouched) the session is rolled out open loop for `horizon` steps at every
    threshold of `grid`, and the one with the best per-taxel contact F1 (ground truth above the stats threshold)
    wins. Each rollout steps `batch` windows at once, which uses the cores better than small batches.
    Returns {key: {"contact_p", "f1", "f1_at_0.5", "windows"}}; the session keeps the chosen thresholds."""
    model = session.model
    keys = [m.key for m in model.touches]
    if not keys:
        return {}
    thr = {k: float(stats[k]["threshold"]) for k in keys}

    def score() -> tuple[dict[str, float], int]:
        q = open_loop(session, store, episodes, context, horizon, stride, touch_threshold=thr, batch=batch)
        return {k: q[f"{k}/contact_f1_h1_4"] if horizon >= 4 else float(np.mean(q[f"{k}/contact_f1"]))
                for k in keys}, q["windows"]

    return _best_threshold(model, "contact_p", keys, grid, score, "f1",
                           {"horizon": horizon, "context": context, "episodes": len(episodes)})


def calibrate_change(session: Any, store: EpisodeStore, episodes: list[int], context: int = 4, horizon: int = 8,
                     stride: int = 8, grid: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9),
                     batch: int = 96) -> dict[str, Any]:
    """Choose, per camera with a change gate (`video_copy`), the change probability above which a code is redrawn.

    Redrawing a code the model is unsure of costs more where it was right to stay than it gains where it was right
    to change, by how much depends on the world; on `episodes` (training episodes) the session is rolled out open
    loop for `horizon` steps at every threshold of `grid`, and the one with the best mean frame PSNR over
    h = 1..horizon wins. Returns {key: {"change_p", "psnr", "psnr_at_0.5", "windows"}}; the session keeps them."""
    model = session.model
    keys = [m.key for m in model.videos if m.key.replace(".", "__") in model.change]
    episodes = [e for e in episodes if store.length(e) >= context + horizon]
    if not keys or not episodes:
        return {}

    def score() -> tuple[dict[str, float], int]:
        q = open_loop(session, store, episodes, context, horizon, stride, batch=batch)
        return {k: float(np.mean(q[f"{k}/psnr"])) for k in keys}, q["windows"]

    return _best_threshold(model, "change_p", keys, grid, score, "psnr",
                           {"horizon": horizon, "context": context, "episodes": len(episodes)})
