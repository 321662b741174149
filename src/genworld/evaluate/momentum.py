"""Momentum in free collisions (METRICS.md section 4.6): does a collision between two free bodies keep their
total momentum?

Collisions are found in ground truth: a disc-disc contact (`gt.contacts`) between two objects (the agent,
pushed by the action, never counts) that touch nothing else during that step, and nothing at all for
`w` steps before and after it. Velocities come from the predicted frames, as for the energy check: the
centroid displacement over the `w` frames before the collision step and over the `w` frames after it.
The relative momentum change is

    |sum m v_after - (1 - drag)^(w+1) sum m v_before - g (w+1) sum m y_hat| / sum m |v_before (GT)|

with masses from the GT table: drag and gravity are what the world itself does to a free pair between
the two windows' centres (w + 1 steps apart), so ground truth scores ~0 up to centroid noise. The
denominator is the pair's momentum scale from the GT positions (the sum of the bodies' momentum
magnitudes, not the magnitude of their sum, which is ~0 in a head-on collision of equal momenta).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genworld.evaluate.consistency import near_occluder

X, Y, MASS, EXISTS = 0, 1, 5, 8
MOMENTUM_WINDOW = 3  # frames over which each side's velocity is averaged
MIN_SPEED = 1.0  # px/step: pairs moving slower (momentum scale / total mass) are not checked: centroid noise
# of a few tenths of a pixel gives a slow pair relative changes of 0.3-0.5


def free_collisions(tables: np.ndarray, contacts: np.ndarray, w: int = MOMENTUM_WINDOW,
                    min_speed: float = MIN_SPEED) -> list[tuple[int, int, int]]:
    """GT collisions (t, i, j), i < j objects (not the agent), whose frames t-1-w .. t+w lie in the window,
    that touch only each other during step t and nothing in the w steps before and after, and move at
    least `min_speed` px/step (momentum-weighted) before it.

    tables (T, K, 10), contacts (T, K, K + 1): row t holds the impulses of the step from frame t-1 to t.
    """
    T, K = tables.shape[:2]
    if contacts.shape[:2] != (T, K) or contacts.shape[2] != K + 1:
        raise ValueError(f"free_collisions: contacts of shape {contacts.shape} do not fit tables {tables.shape}; "
                         "expected (T, K, K + 1)")
    touched = (contacts.sum(-1) > 0) | (contacts[..., :K].sum(-2) > 0)  # (T, K)
    out = []
    for t in range(w + 1, T - w):
        for i in range(1, K):
            for j in range(i + 1, K):
                if contacts[t, i, j] <= 0 or not (tables[t - 1 - w: t + w + 1, [i, j], EXISTS] > 0.5).all():
                    continue
                rest = contacts[t, [i, j]].copy()
                rest[:, [i, j]] = 0
                if rest.sum() > 0 or touched[t - w: t, [i, j]].any() or touched[t + 1: t + w + 1, [i, j]].any():
                    continue
                m = tables[t, [i, j], MASS]
                v = (tables[t - 1, [i, j], :2] - tables[t - 1 - w, [i, j], :2]) / w
                scale = (m * np.hypot(v[:, 0], v[:, 1])).sum()
                if scale > 0 and scale >= min_speed * m.sum():
                    out.append((t, i, j))
    return out


def momentum_changes(cx: np.ndarray, cy: np.ndarray, tables: np.ndarray, events: list[tuple[int, int, int]],
                     config: dict[str, Any], w: int = MOMENTUM_WINDOW) -> np.ndarray:
    """(n,) relative momentum change of each free collision (t, i, j) from centroids cx, cy (T, K); NaN where a
    body's centroid is missing (not seen) in a frame the estimate needs."""
    drag, g = float(config.get("drag", 0.0)), float(config.get("gravity", 0.0))
    out = np.full(len(events), np.nan)
    for n, (t, i, j) in enumerate(events):
        b = [i, j]
        p = np.stack([cx[:, b], cy[:, b]], -1)  # (T, 2, 2): frame, body, axis
        if not np.isfinite(p[t - 1 - w: t + w + 1]).all():
            continue
        m = tables[t, b, MASS]
        v_before = (p[t - 1] - p[t - 1 - w]) / w  # (2, 2)
        v_after = (p[t + w] - p[t]) / w
        expected = (1 - drag) ** (w + 1) * (m[:, None] * v_before).sum(0) + np.array([0.0, g * (w + 1) * m.sum()])
        gt_v = (tables[t - 1, b, :2] - tables[t - 1 - w, b, :2]) / w
        scale = (m * np.hypot(gt_v[:, 0], gt_v[:, 1])).sum()
        out[n] = np.linalg.norm((m[:, None] * v_after).sum(0) - expected) / scale
    return out


def seen_centroids(tr: dict[str, np.ndarray], tables: np.ndarray, config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted centroids (T, K) where the object is drawn, seen in GT and clear of the occluder; NaN elsewhere."""
    ok = (tr["present"] > 0) & (tr["gt_present"] > 0) & ~near_occluder(tables, config)
    return np.where(ok, tr["cx"], np.nan), np.where(ok, tr["cy"], np.nan)


def momentum_events(tr: dict[str, np.ndarray], tables: np.ndarray, contacts: np.ndarray,
                    config: dict[str, Any], w: int = MOMENTUM_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """(steps t (n,), relative momentum change (n,)) of the GT free collisions in a tracked window; the change
    is NaN where the prediction does not show both bodies throughout the estimate."""
    events = free_collisions(tables, contacts, w)
    cx, cy = seen_centroids(tr, tables, config)
    return np.array([e[0] for e in events], np.int64), momentum_changes(cx, cy, tables, events, config, w)
