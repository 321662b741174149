"""Cross-modal contact causality: sound and touch onsets must coincide (±1 step) with a visible contact.

Visual contact at step t: two predicted discs whose centroids are closer than r_i + r_j + contact_eps, or a
disc within contact_eps of a wall (radii from ground truth; objects hidden by the occluder in the GT frame
count as possibly touching, since nobody can see them). Sound onset: audio RMS of the step above
`sound_rms` and 1.5 x the previous step's. Touch onset: total touch rises above `touch_min`.
"""

from __future__ import annotations

import numpy as np

from genworld.evaluate.config import Thresholds

X, Y, RADIUS, EXISTS = 0, 1, 4, 8


def visual_contacts(tr: dict[str, np.ndarray], tables: np.ndarray, size: float, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(any contact (T,), agent contact (T,)) seen in the predicted frames."""
    pres = tr["present"] > 0
    r = tables[..., RADIUS]
    d = np.hypot(tr["cx"][:, :, None] - tr["cx"][:, None, :], tr["cy"][:, :, None] - tr["cy"][:, None, :])
    K = r.shape[1]
    pair = pres[:, :, None] & pres[:, None, :] & (d <= r[:, :, None] + r[:, None, :] + eps)
    pair[:, np.arange(K), np.arange(K)] = False
    x, y = tr["cx"], tr["cy"]
    wall = pres & ((x - r <= eps) | (y - r <= eps) | (x + r >= size - eps) | (y + r >= size - eps))
    hidden = ((tables[..., EXISTS] > 0.5) & (tr["gt_present"] < 1)).any(-1)
    return pair.any((1, 2)) | wall.any(1) | hidden, pair[:, 0].any(1) | wall[:, 0] | hidden


def sound_onsets(audio: np.ndarray, th: Thresholds) -> np.ndarray:
    """(T,) bool sound onsets of per-step audio chunks (T, samples)."""
    rms = np.sqrt((np.asarray(audio, np.float64) ** 2).mean(-1))
    on = np.zeros(len(rms), bool)
    on[1:] = (rms[1:] > th.sound_rms) & (rms[1:] > 1.5 * rms[:-1])
    return on


def touch_onsets(touch: np.ndarray, th: Thresholds) -> np.ndarray:
    """(T,) bool: total touch rises above touch_min."""
    s = np.asarray(touch, np.float64).reshape(len(touch), -1).sum(-1)
    on = np.zeros(len(s), bool)
    on[1:] = (s[1:] > th.touch_min) & (s[:-1] <= th.touch_min)
    return on


def _near(events: np.ndarray, other: np.ndarray) -> np.ndarray:
    """(T,) bool: `other` holds within ±1 step of each step."""
    o = other.copy()
    o[1:] |= other[:-1]
    o[:-1] |= other[1:]
    return o


def onset_f1(pred: np.ndarray, true: np.ndarray) -> tuple[int, int, int]:
    """(matched, n_pred, n_true) with greedy one-to-one matching within ±1 step."""
    used = np.zeros(len(true), bool)
    hits = 0
    for t in np.flatnonzero(pred):
        for u in (t, t - 1, t + 1):
            if 0 <= u < len(true) and true[u] and not used[u]:
                used[u] = True
                hits += 1
                break
    return hits, int(pred.sum()), int(true.sum())


def causality_counts(tr: dict[str, np.ndarray], tables: np.ndarray, size: float, th: Thresholds,
                     audio: np.ndarray | None, touch: np.ndarray | None, gt_audio: np.ndarray | None,
                     gt_touch: np.ndarray | None) -> dict[str, np.ndarray | int]:
    """Unmatched onsets and onset matches for one episode (steps 1..T-1; step 0 is the real last context step)."""
    contact, agent = visual_contacts(tr, tables, size, th.contact_eps)
    out: dict[str, np.ndarray | int] = {"steps": len(contact) - 1}
    contact_on = contact.copy()
    contact_on[1:] = contact[1:] & ~contact[:-1]
    if audio is not None:
        s = sound_onsets(audio, th)
        out["sound_flags"] = s & ~_near(s, contact)
        out["contact_without_sound"] = int((contact_on & ~_near(contact_on, s))[1:].sum())
        if gt_audio is not None:
            out["sound_f1"] = onset_f1(s[1:], sound_onsets(gt_audio, th)[1:])
    if touch is not None:
        o = touch_onsets(touch, th)
        out["touch_flags"] = o & ~_near(o, agent)
        if gt_touch is not None:
            out["touch_f1"] = onset_f1(o[1:], touch_onsets(gt_touch, th)[1:])
    return out
