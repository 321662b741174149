"""Cross-modal contact causality: sound and touch onsets must coincide (±1 step) with a visible contact.

Visual contact during step t (the move from frame t-1 to frame t, the step whose sound is chunk t): the
smallest gap between two predicted discs, or a disc and a wall, along three straight paths of their
relative position: the chord from frame t-1 to frame t, the extrapolation of frame t-1 by the previous
step's motion, and the back-extrapolation of frame t by the next step's motion. A fast collision in the
middle of a step leaves the discs apart in both frames; one of the extrapolations runs into the contact,
while discs that only pass each other move on straight lines (gravity pulls both alike), so a near miss
stays a miss. Gap <= `contact_eps` is a contact (radii from ground truth). Objects that exist but are
absent from the GT frame (under the occluder) count as possibly touching, since nobody can see them.
Sound onset: a sub-frame's RMS jumps above `sound_rms` and 1.5 x the recent loudest (`sound_onsets`).
Touch onset: total touch rises above `touch_min`.
"""

from __future__ import annotations

import numpy as np

from genworld.evaluate.config import Thresholds

X, Y, RADIUS, EXISTS = 0, 1, 4, 8


def _segment_min_norm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest |p| on the segments p = a + s (b - a), s in [0, 1]; a, b (..., 2)."""
    d = b - a
    dd = (d**2).sum(-1)
    s = np.clip(-(a * d).sum(-1) / np.where(dd > 0, dd, 1.0), 0.0, 1.0)
    q = a + s[..., None] * d
    return np.hypot(q[..., 0], q[..., 1])


def border_walls(size: float) -> np.ndarray:
    """(4, 3) the image borders as walls: rows (nx, ny, c), inside where nx x + ny y + c >= 0 (|n| = 1)."""
    return np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, size], [0.0, 1.0, 0.0], [0.0, -1.0, size]])


def step_gaps(tr: dict[str, np.ndarray], tables: np.ndarray, size: float,
              walls: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Smallest gap (pixels) during each step t (frame t-1 to t): (pairs (T, K, K), walls (T, K)); NaN unseen.

    Step 0 uses frame 0 alone. Gaps are negative when discs (or a disc and a wall) interpenetrate. `walls`
    (W, 3) straight walls in the image (`border_walls`); default the image borders.
    """
    walls = border_walls(size) if walls is None else np.asarray(walls, np.float64).reshape(-1, 3)
    pres = tr["present"] > 0
    p = np.stack([np.where(pres, tr["cx"], np.nan), np.where(pres, tr["cy"], np.nan)], -1)  # (T, K, 2)
    T, K = pres.shape
    r = tables[..., RADIUS]  # (T, K)
    rel = p[:, :, None, :] - p[:, None, :, :]  # (T, K, K, 2) position of i relative to j
    prev = np.concatenate([rel[:1], rel[:-1]])  # frame t-1 (frame 0 for t = 0)
    paths = [(prev, rel)]  # chord t-1 -> t
    fwd = np.full_like(rel, np.nan)
    fwd[2:] = 2 * rel[1:-1] - rel[:-2]  # frame t-1 moved on by the step t-2 -> t-1
    back = np.full_like(rel, np.nan)
    back[:-1] = 2 * rel[:-1] - rel[1:]  # frame t moved back by the step t -> t+1
    paths += [(prev, fwd), (rel, back)]
    reach = r[:, :, None] + r[:, None, :]
    pair = np.full((T, K, K), np.inf)
    for a, b in paths:
        m = _segment_min_norm(a, np.where(np.isnan(b), a, b))
        pair = np.fmin(pair, m - reach)
    pair[~(pres[:, :, None] & pres[:, None, :])] = np.nan
    pair[:, np.arange(K), np.arange(K)] = np.nan
    # Walls: the gap is linear along a path, so its smallest value is at an end of the path.
    ends = [p, np.concatenate([p[:1], p[:-1]])]
    f = np.full_like(p, np.nan)
    f[2:] = 2 * p[1:-1] - p[:-2]
    bk = np.full_like(p, np.nan)
    bk[:-1] = 2 * p[:-1] - p[1:]
    wall = np.full((T, K), np.inf)
    for q in ends + [f, bk] if len(walls) else []:  # no walls (a camera following the agent): never near one
        g = (q @ walls[:, :2].T + walls[:, 2] - r[..., None]).min(-1)  # (T, K)
        wall = np.fmin(wall, g)
    wall[~pres] = np.nan
    return pair, wall


def visual_contacts(tr: dict[str, np.ndarray], tables: np.ndarray, size: float, eps: float,
                    walls: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(any contact (T,), agent contact (T,)) during each step, seen in the predicted frames."""
    pair, wall = step_gaps(tr, tables, size, walls)
    with np.errstate(invalid="ignore"):
        pc, wc = pair <= eps, wall <= eps
    hidden = ((tables[..., EXISTS] > 0.5) & (tr["gt_present"] < 1)).any(-1)
    return pc.any((1, 2)) | wc.any(1) | hidden, pc[:, 0].any(1) | wc[:, 0] | hidden


SUB = 4  # sub-frames per step for sound onsets (250 samples at 16 kHz / 16 fps: 1.5 periods of the lowest mode)


def sound_onsets(audio: np.ndarray, th: Thresholds) -> np.ndarray:
    """(T,) bool sound onsets of per-step audio chunks (T, samples).

    Step t holds an onset when one of its SUB sub-frames has an RMS above `sound_rms` and 1.5 x the loudest
    of the SUB sub-frames before it: a ringing sound only decays, so a jump is a new hit, even while an
    earlier one still rings (a whole-step RMS ratio missed hits over a loud tail). Comparing with the
    loudest recent sub-frame, not the last one, keeps the ripple of a low mode from looking like a hit.
    """
    a = np.asarray(audio, np.float64)
    T, n = a.shape
    m = n // SUB
    rms = np.sqrt((a[:, : m * SUB].reshape(T * SUB, m) ** 2).mean(-1))  # (T * SUB,)
    prev = np.zeros_like(rms)
    for j in range(1, SUB + 1):
        prev[j:] = np.maximum(prev[j:], rms[:-j])
    jump = (rms > th.sound_rms) & (rms > 1.5 * prev)
    jump[:SUB] = False  # step 0 has no past to compare with
    return jump.reshape(T, SUB).any(-1)


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
                     gt_touch: np.ndarray | None, walls: np.ndarray | None = None) -> dict[str, np.ndarray | int]:
    """Unmatched onsets and onset matches for one episode (steps 1..T-1; step 0 is the real last context step).

    `walls` (W, 3): the world's walls in the image (`border_walls`, the default, for bounce)."""
    contact, agent = visual_contacts(tr, tables, size, th.contact_eps, walls)
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
