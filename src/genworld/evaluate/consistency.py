"""Identity and physics-violation detectors over object tracks (see `objects.track_episode`).

Every function is pure: tracks `{field: (T, K)}` from predicted frames, the GT tables `(T, K, 10)` and
contacts `(T, K, K + 1)` of the same steps, the world's `spec.config` and the calibrated `Thresholds`.
Rates are violations per visible GT object-frame (visible = at least `a_vis` pixels of its blob show in
the GT frame).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genworld.evaluate.config import Thresholds

X, Y, RADIUS, MASS, COLOUR, EXISTS = 0, 1, 4, 5, 6, 8


def near_occluder(tables: np.ndarray, config: dict[str, Any], margin: float = 1.0) -> np.ndarray:
    """(T, K) bool: the GT disc touches the occluder rectangle (its blob may be cut)."""
    occ = config.get("occluder")
    if not occ:
        return np.zeros(tables.shape[:2], bool)
    x0, y0, x1, y1 = occ
    x, y, r = tables[..., X], tables[..., Y], tables[..., RADIUS] + margin
    return (x + r > x0) & (x - r < x1) & (y + r > y0) & (y - r < y1)


def teleport_threshold(tables: np.ndarray, th: Thresholds) -> float:
    """Jump (pixels/step) above which a move is a teleport: 1.2 x the fastest real motion + tolerance.

    The fastest real motion is the larger of the calibration set's (`th.v_max`) and this window's own GT
    motion: in an elastic world the agent pumps energy in, so one episode can move faster than any seen
    in calibration, and the reference says so.
    """
    both = (tables[1:, :, EXISTS] > 0.5) & (tables[:-1, :, EXISTS] > 0.5)
    step = np.hypot(np.diff(tables[..., X], axis=0), np.diff(tables[..., Y], axis=0))
    v_ep = float(step[both].max()) if both.any() else 0.0
    return 1.2 * max(th.v_max, v_ep) + th.teleport_tol


def identity_metrics(tr: dict[str, np.ndarray], colours: np.ndarray) -> dict[str, float]:
    """Persistence, attribute drift, identity switches per 100 object-frames and IDF1 (colour identities).

    `colours` (K,) palette index of each GT object. Attribute drift averages, over visible objects present in
    the prediction, [ΔE76/100 + min(1, |ΔA|/A) + (1 - centred IoU)] / 3.
    """
    vis = tr["gt_present"] > 0
    both = vis & (tr["present"] > 0)
    n_vis = max(int(vis.sum()), 1)
    rel_area = np.minimum(1.0, np.abs(tr["area"] - tr["gt_area"]) / np.maximum(tr["gt_area"], 1))
    ad = (np.minimum(1.0, tr["de"] / 100.0) + rel_area + (1 - tr["iou"])) / 3
    m = tr["matched"]
    ok = (m[1:] >= 0) & (m[:-1] >= 0) & vis[1:] & vis[:-1]
    switches = int((ok & (m[1:] != m[:-1])).sum())
    idtp = int((vis & (m == colours[None, :])).sum())
    denom = int(tr["n_pred"].sum()) + int(vis.sum())
    return {
        "persistence": float(both.sum() / n_vis),
        "attribute_drift": float(ad[both].mean()) if both.any() else 1.0,
        "id_switches_per_100": 100.0 * switches / n_vis,
        "idf1": 2.0 * idtp / denom if denom else 1.0,
    }


def overlap_distance(tr: dict[str, np.ndarray]) -> np.ndarray:
    """(T, K, K) distance between the predicted whole-body centres (`ox`, `oy`; the blob centroids unless the
    segmenter fits whole bodies, `objects.whole_body_centre`)."""
    return np.hypot(tr["ox"][:, :, None] - tr["ox"][:, None, :], tr["oy"][:, :, None] - tr["oy"][:, None, :])


def violation_flags(tr: dict[str, np.ndarray], tables: np.ndarray, contacts: np.ndarray, config: dict[str, Any],
                    th: Thresholds) -> dict[str, np.ndarray]:
    """Per-step violation flags: (T, K) for vanish, teleport, size, colour, energy; (T, K, K) overlap; (T,) spawn."""
    vis = tr["gt_present"] > 0
    pres = (tr["present"] > 0) & vis
    clear = ~near_occluder(tables, config)
    T, K = vis.shape
    radius = tables[..., RADIUS]
    # teleport: a jump between consecutive predicted frames faster than any real motion
    jump = np.zeros((T, K))
    jump[1:] = np.hypot(np.diff(tr["cx"], axis=0), np.diff(tr["cy"], axis=0))
    ok = np.zeros((T, K), bool)
    ok[1:] = pres[1:] & pres[:-1] & clear[1:] & clear[:-1]
    teleport = ok & (jump > teleport_threshold(tables, th))
    # overlap: predicted centres closer than the discs' radii allow
    d = overlap_distance(tr)
    pair_ok = (pres & clear)[:, :, None] & (pres & clear)[:, None, :] & np.triu(np.ones((K, K), bool), 1)
    overlap = pair_ok & (d < radius[:, :, None] + radius[:, None, :] - th.overlap_tol)
    # size and colour: the blob's area against the GT frame's blob of the same object, which a neighbour drawn
    # over it cuts just as much (touching discs overlap by a sliver at most; calibration includes them)
    colours = tables[0, :, COLOUR].astype(np.int64)
    sized = ~np.isin(colours, np.asarray(th.size_skip, np.int64))[None, :]
    size = pres & clear & sized & (np.abs(tr["area"] - tr["gt_area"]) > th.area_tol * np.maximum(tr["gt_area"], 1))
    wrong_match = (tr["matched"] >= 0) & (tr["matched"] != colours[None, :])
    colour = vis & (wrong_match | (pres & (tr["de"] > th.colour_tol)))
    return {"vanish": vis & (tr["present"] < 1), "spawn": tr["spawn"], "teleport": teleport, "overlap": overlap,
            "size": size, "colour": colour, "energy": energy_flags(tr, tables, contacts, config, th)[0]}


def free_flight(tables: np.ndarray, contacts: np.ndarray, tr: dict[str, np.ndarray], config: dict[str, Any]) -> np.ndarray:
    """(T, K) bool: object k is seen (GT and prediction), clear of the occluder, and touches nothing at step t."""
    touched = (contacts.sum(-1) > 0) | (contacts[..., : tables.shape[1]].sum(-2) > 0)  # (T, K)
    free = (tr["gt_present"] > 0) & (tr["present"] > 0) & ~near_occluder(tables, config) & ~touched
    free[:, 0] = False  # the agent is pushed by the action: its energy changes with work
    return free


ENERGY_WINDOW = 3  # steps over which velocity is averaged before and after a checked frame
ENERGY_MIN_SPEED = 0.5  # px/step: below it the rise is divided by this (a near-still object's speed is noise)


def step_energy(tr: dict[str, np.ndarray], g: float, w: int = ENERGY_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """Energy per unit mass over frames t .. t+w, and its speed: ((T-w, K), (T-w, K)).

    E = |d / w|^2 / 2 - g (y_t + y_{t+w}) / 2 with d the centroid displacement over the w steps. On the
    world's discrete free flight (the step displacement grows by exactly g per step along +y) this is
    exactly constant, with or without gravity; averaging over w steps divides centroid noise by w.
    """
    dx, dy = (tr["cx"][w:] - tr["cx"][:-w]) / w, (tr["cy"][w:] - tr["cy"][:-w]) / w
    e = 0.5 * (dx**2 + dy**2) - g * (tr["cy"][w:] + tr["cy"][:-w]) / 2
    return e, np.hypot(dx, dy)


def energy_rise(tr: dict[str, np.ndarray], tables: np.ndarray, contacts: np.ndarray,
                config: dict[str, Any], w: int = ENERGY_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """(normalised energy rise (T, K), eligible (T, K)) at frame t: from frames t-w .. t to frames t .. t+w.

    The rise is divided by the mean speed of the two windows (at least ENERGY_MIN_SPEED), which makes it
    the object's speed gain, (v2^2 - v1^2) / 2 / ((v1 + v2) / 2) = v2 - v1 (in free fall, the gain beyond
    what gravity gives): centroid noise moves a fast object's energy by about speed x velocity noise, so
    the noise of this statistic hardly depends on speed and one threshold (a speed gain, px/step) is fair
    to slow and fast objects alike (with a floor of 1 px/step the threshold followed the calibration
    set's mix of slow and fast objects). Eligible: in free flight at every frame t-w .. t+w.
    """
    T, K = tables.shape[:2]
    rise, elig = np.zeros((T, K)), np.zeros((T, K), bool)
    if T < 2 * w + 1:
        return rise, elig
    e, speed = step_energy(tr, float(config.get("gravity", 0.0)), w)  # (T-w, K): window starting at frame i
    free = free_flight(tables, contacts, tr, config)
    run = np.ones((T - 2 * w, K), bool)
    for j in range(2 * w + 1):
        run &= free[j: T - 2 * w + j]
    elig[w:T - w] = run
    rise[w:T - w] = (e[w:] - e[:-w]) / np.maximum((speed[w:] + speed[:-w]) / 2, ENERGY_MIN_SPEED)
    rise[~elig] = 0.0
    return rise, elig


def energy_flags(tr: dict[str, np.ndarray], tables: np.ndarray, contacts: np.ndarray, config: dict[str, Any],
                 th: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Energy created from nothing: (flags (T, K), eligible (T, K)).

    Per object and unit mass (`step_energy`), from predicted centroids. Frame t is checked when the object is
    in free flight (seen, clear of the occluder, touching nothing) from t-w to t+w, so no work is done on it;
    a normalised rise (`energy_rise`) above `energy_tol` is a violation. The agent (row 0) is pushed by the
    action and is never checked; nor is anything in a world whose objects drive themselves
    (`config["self_propelled"]`: drive's cars accelerate and brake).
    """
    rise, elig = energy_rise(tr, tables, contacts, config)
    if config.get("self_propelled"):
        elig = np.zeros_like(elig)
    return elig & (rise > th.energy_tol), elig


def gravity_fit(tr: dict[str, np.ndarray], tables: np.ndarray, contacts: np.ndarray, config: dict[str, Any],
                min_len: int = 6) -> dict[str, Any]:
    """Fit y(t) = y0 + v0 t + g t^2 / 2 on predicted centroids over free-flight windows; relative error of g."""
    g = float(config.get("gravity", 0.0))
    if g <= 0:
        return {"available": False, "reason": "top-down world (gravity 0): no free fall to fit"}
    free = free_flight(tables, contacts, tr, config)
    errors, resid = [], []
    for k in range(1, tables.shape[1]):
        t = 0
        while t < len(free):
            if not free[t, k]:
                t += 1
                continue
            s = t
            while t < len(free) and free[t, k]:
                t += 1
            if t - s >= min_len:
                ts = np.arange(t - s, dtype=np.float64)
                coef, res, *_ = np.polyfit(ts, tr["cy"][s:t, k], 2, full=True)
                errors.append(abs(2 * coef[0] - g) / g)
                resid.append(float(np.sqrt(res[0] / (t - s))) if len(res) else 0.0)
    if not errors:
        return {"available": False, "reason": f"no free-flight window of >= {min_len} steps"}
    return {"available": True, "g_true": g, "g_rel_error": float(np.median(errors)),
            "fit_residual_px": float(np.median(resid)), "windows": len(errors)}


def physics_rates(flags: dict[str, np.ndarray], tr: dict[str, np.ndarray], elig_energy: np.ndarray) -> dict[str, float]:
    """Violations per visible GT object-frame (energy: per eligible free-flight object-step)."""
    n = max(float((tr["gt_present"] > 0).sum()), 1.0)
    return {
        "vanish_rate": float(flags["vanish"].sum()) / n,
        "spawn_rate": float(flags["spawn"].sum()) / n,
        "teleport_rate": float(flags["teleport"].sum()) / n,
        "overlap_rate": float(flags["overlap"].sum()) / n,
        "size_change_rate": float(flags["size"].sum()) / n,
        "colour_change_rate": float(flags["colour"].sum()) / n,
        "energy_rate": float(flags["energy"].sum()) / max(float(elig_energy.sum()), 1.0),
    }
