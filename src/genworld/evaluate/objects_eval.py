"""Object-level scores of one system's predicted frames: identity, physics violations, causality, state error.

Wraps the detectors (`objects.track_episode`, `consistency.*`, `causality.causality_counts`) and pools
them over episodes: rates are weighted by their denominators (visible object-frames, eligible steps),
never averaged per episode. Every window starts with the real last context step (index 0), which
anchors the first predicted step's teleport and onset checks and is excluded from every rate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from genworld.evaluate.causality import causality_counts
from genworld.evaluate.config import Thresholds
from genworld.evaluate.consistency import (
    energy_flags,
    gravity_fit,
    identity_metrics,
    physics_rates,
    violation_flags,
)
from genworld.evaluate.momentum import momentum_events
from genworld.evaluate.objects import Blobs, Segmenter, track_episode

IDENTITY_KEYS = ("persistence", "attribute_drift", "id_switches_per_100", "idf1")
PHYSICS_KEYS = ("vanish_rate", "spawn_rate", "teleport_rate", "overlap_rate", "size_change_rate",
                "colour_change_rate", "energy_rate")


def _slice(tr: dict[str, np.ndarray], start: int) -> dict[str, np.ndarray]:
    return {k: v[start:] for k, v in tr.items()}


def score_system(frames: np.ndarray, gt_frames: np.ndarray, tables: np.ndarray, contacts: np.ndarray,
                 seg: Segmenter, th: Thresholds, config: dict[str, Any], fps: float,
                 audio: np.ndarray | None = None, touch: np.ndarray | None = None,
                 gt_audio: np.ndarray | None = None, gt_touch: np.ndarray | None = None,
                 gt_cache: list[list[Blobs]] | None = None, momentum: bool = True) -> dict[str, Any]:
    """Scores of frames (N, H+1, S, S, 3) against GT frames and tables (N, H+1, K, 10) of the same steps.

    Returns identity, physics, causality (when audio/touch are given), gravity, per-horizon state error,
    persistence and momentum change (lists of length H), and per-episode violation counts (for picking the
    worst episode). `momentum`: check free collisions (worlds whose bodies collide free of external forces).
    """
    N, T1 = frames.shape[:2]
    H = T1 - 1
    ident = {k: 0.0 for k in IDENTITY_KEYS}
    wid = {k: 0.0 for k in IDENTITY_KEYS}
    phys = {k: 0.0 for k in PHYSICS_KEYS}
    wph = {k: 0.0 for k in PHYSICS_KEYS}
    state_err, state_n = np.zeros(H), np.zeros(H)
    pers_hit, pers_n = np.zeros(H), np.zeros(H)
    caus = {"sound_flags": 0, "touch_flags": 0, "contact_without_sound": 0, "steps": 0,
            "sound_f1": np.zeros(3), "touch_f1": np.zeros(3)}
    gravity, per_episode = [], np.zeros(N)
    occl = np.zeros(4)  # re-emergence events, present, right identity, summed position error (of present)
    mom_sum, mom_n = np.zeros(H), np.zeros(H)  # relative momentum change of free collisions per h
    mom_flags = mom_unseen = 0
    size = float(seg.size)
    walls = np.asarray(config["walls"], np.float64).reshape(-1, 3) if config.get("walls") is not None else None  # default: borders
    for i in range(N):
        tr = track_episode(frames[i], gt_frames[i], tables[i], seg, gt_cache[i] if gt_cache else None)
        flags = violation_flags(tr, tables[i], contacts[i], config, th)
        _, elig = energy_flags(tr, tables[i], contacts[i], config, th)
        trs = _slice(tr, 1)
        vis = trs["gt_present"] > 0
        n_vis = float(vis.sum())
        both = vis & (trs["present"] > 0)
        idm = identity_metrics(trs, tables[i][0, :, 6].astype(np.int64))
        weights = {"persistence": n_vis, "attribute_drift": float(both.sum()), "id_switches_per_100": n_vis,
                   "idf1": float(trs["n_pred"].sum() + n_vis)}
        for k in IDENTITY_KEYS:
            ident[k] += idm[k] * weights[k]
            wid[k] += weights[k]
        rates = physics_rates({k: v[1:] for k, v in flags.items()}, trs, elig[1:])
        n_e = float(elig[1:].sum())
        for k in PHYSICS_KEYS:
            w = n_e if k == "energy_rate" else n_vis
            phys[k] += rates[k] * w
            wph[k] += w
        per_episode[i] = sum(float(np.sum(v[1:])) for v in flags.values()) / max(n_vis, 1.0)
        d = np.hypot(trs["cx"] - trs["gt_cx"], trs["cy"] - trs["gt_cy"]) / size
        state_err += np.where(both, d, 0).sum(1)
        state_n += both.sum(1)
        pers_hit += both.sum(1)
        pers_n += vis.sum(1)
        occl += _reemergence(tr, tables[i], size)
        if momentum:
            steps, dp = momentum_events(tr, tables[i], contacts[i], config)
            seen = np.isfinite(dp)
            np.add.at(mom_sum, steps[seen] - 1, dp[seen])
            np.add.at(mom_n, steps[seen] - 1, 1)
            mom_flags += int((dp[seen] > th.momentum_tol).sum())
            mom_unseen += int((~seen).sum())
        g = gravity_fit(tr, tables[i], contacts[i], config)
        if g.get("available"):
            gravity.append(g)
        if audio is not None or touch is not None:
            c = causality_counts(tr, tables[i], size, th, None if audio is None else audio[i],
                                 None if touch is None else touch[i], None if gt_audio is None else gt_audio[i],
                                 None if gt_touch is None else gt_touch[i], walls)
            caus["steps"] += int(c["steps"])
            caus["sound_flags"] += int(np.sum(c.get("sound_flags", np.zeros(1))[1:]))
            caus["touch_flags"] += int(np.sum(c.get("touch_flags", np.zeros(1))[1:]))
            caus["contact_without_sound"] += int(c.get("contact_without_sound", 0))
            for key in ("sound_f1", "touch_f1"):
                if key in c:
                    caus[key] += np.asarray(c[key], float)
    out: dict[str, Any] = {
        # no object present anywhere: drift is 1 (as identity_metrics defines it), the others have no data
        "identity": {k: (ident[k] / wid[k] if wid[k] else (1.0 if k == "attribute_drift" else None))
                     for k in IDENTITY_KEYS},
        "physics": {k: (phys[k] / wph[k] if wph[k] else 0.0) for k in PHYSICS_KEYS},
        "state_error": [float(e / n) if n else None for e, n in zip(state_err, state_n)],
        "persistence": [float(a / n) if n else None for a, n in zip(pers_hit, pers_n)],
        "violations_per_episode": per_episode.tolist(),
    }
    out["physics"]["eligible_energy_steps"] = int(wph["energy_rate"])
    if momentum:
        n_mom = int(mom_n.sum())
        out["physics"].update({"momentum_rate": mom_flags / n_mom if n_mom else 0.0,
                               "momentum_change": float(mom_sum.sum() / n_mom) if n_mom else None,
                               "free_collisions": n_mom, "free_collisions_unseen": mom_unseen})
        out["momentum_change"] = [float(a / n) if n else None for a, n in zip(mom_sum, mom_n)]
    else:
        out["physics"]["momentum"] = {"available": False, "reason": "bodies slide on a table (friction is an "
                                                                    "external force): momentum is not conserved"}
    out["physics"]["object_frames"] = int(wph["vanish_rate"])
    g_true = float(config.get("gravity", 0.0))
    if g_true <= 0:
        out["physics"]["gravity"] = {"available": False, "reason": "top-down world (gravity 0): no free fall to fit"}
    elif gravity:
        out["physics"]["gravity"] = {"available": True, "g_true": g_true, "windows": sum(g["windows"] for g in gravity),
                                     "g_rel_error": float(np.median([g["g_rel_error"] for g in gravity])),
                                     "fit_residual_px": float(np.median([g["fit_residual_px"] for g in gravity]))}
    else:
        out["physics"]["gravity"] = {"available": False, "reason": "no free-flight window of >= 6 steps"}
    if not config.get("occluder"):
        out["occlusion"] = {"available": False, "reason": "the world has no occluder"}
    elif occl[0] == 0:
        out["occlusion"] = {"available": False, "reason": "no object re-emerged from behind the occluder in the "
                                                          "predicted windows"}
    else:
        out["occlusion"] = {"available": True, "events": int(occl[0]), "presence": occl[1] / occl[0],
                            "identity": occl[2] / occl[0],
                            "position_error": occl[3] / occl[1] if occl[1] else None}
    if audio is not None or touch is not None:
        secs = max(caus["steps"], 1) / fps
        cz: dict[str, Any] = {"seconds": secs}
        if audio is not None:
            cz["sound_without_contact_per_s"] = caus["sound_flags"] / secs
            cz["contact_without_sound_per_s"] = caus["contact_without_sound"] / secs
            if gt_audio is not None:
                cz["sound_onset_f1"] = _f1(caus["sound_f1"])
        if touch is not None:
            cz["touch_without_contact_per_s"] = caus["touch_flags"] / secs
            if gt_touch is not None:
                cz["touch_onset_f1"] = _f1(caus["touch_f1"])
        out["causality"] = cz
    return out


def _f1(c: np.ndarray) -> float | None:
    """F1 of (matched, n_pred, n_true); None when neither side has an onset."""
    m, p, t = c
    return float(2 * m / (p + t)) if p + t > 0 else None


def _reemergence(tr: dict[str, np.ndarray], tables: np.ndarray, size: float) -> np.ndarray:
    """(events, present, right identity, position error sum) at the steps where an object that existed
    became visible again in the GT frame (METRICS 4.1 occlusion test); step 0 (the real anchor) excluded."""
    vis = tr["gt_present"] > 0
    exists = tables[..., 8] > 0.5
    ev = np.zeros_like(vis)
    ev[1:] = vis[1:] & ~vis[:-1] & exists[1:] & exists[:-1]
    pres = ev & (tr["present"] > 0)
    right = ev & (tr["matched"] == tables[0, :, 6][None, :])
    err = np.hypot(tr["cx"] - tr["gt_cx"], tr["cy"] - tr["gt_cy"]) / size
    return np.array([ev.sum(), pres.sum(), right.sum(), err[pres].sum()], float)



class TrackCounter:
    """Object counts of a system's frames against a world's steps (`free_run.ObjectCounter`), read by palette
    segmentation or the probe and matched with `objects.track_episode`.

    Persistence, spawn and size change are those of `score_system`, read per object colour wherever the object
    is drawn. Colour change keeps only its appearance half (a drawn object's mean colour more than
    `colour_tol` ΔE76 from its own): the other half, a different colour matched at the object's place, reads
    where the runs diverge (a world started 0.5 px away flags 18-34% of 960 steps) rather than a repainted object.
    """

    unread: dict[str, str] = {}

    def __init__(self, seg: Any, th: Thresholds, config: dict[str, Any],
                 tables: Callable[[dict[str, np.ndarray]], np.ndarray],
                 gt_blobs: Callable[[np.ndarray, dict[str, np.ndarray]], list[Blobs] | None] | None = None,
                 method: str = "palette segmentation") -> None:
        self.seg, self.th, self.config, self.tables, self.gt_blobs = seg, th, config, tables, gt_blobs
        self.method = (f"objects read by {method} (the identity block's reader and thresholds); persistence = "
                       "share of the world's visible objects whose colour the model draws, spawn = model blobs "
                       "beyond the world's per colour, size change = |area - world area| > area_tol x world area, "
                       "colour change = a drawn object's mean colour > colour_tol ΔE76 from its own (no position "
                       "match: the runs diverge)")

    def counts(self, systems: dict[str, np.ndarray], truth: np.ndarray, steps: dict[str, np.ndarray]
               ) -> dict[str, dict[str, np.ndarray]]:
        """Per-step counts (T,) of each system's frames (T, S, S, 3) against the world's frames and steps."""
        tables = np.asarray(self.tables(steps), np.float64)  # (T, K, 10)
        T, K = tables.shape[:2]
        gt = self.gt_blobs(truth, steps) if self.gt_blobs is not None else None
        own = None if gt is not None else [self.seg.blobs(f) for f in truth]  # the world read like a system
        gt = gt if gt is not None else [b for b, _ in own]
        out = {}
        for name, frames in systems.items():
            tr = track_episode(frames, truth, tables, self.seg, gt, own if frames is truth else None)
            flags = violation_flags(tr, tables, np.zeros((T, K, K + 1)), self.config, self.th)
            vis = tr["gt_present"] > 0
            pres = vis & (tr["present"] > 0)
            out[name] = {"objects": vis.sum(1), "present": pres.sum(1), "spawn": tr["spawn"],
                         "colour": (pres & (tr["de"] > self.th.colour_tol)).sum(1), "size": flags["size"].sum(1)}
        return out
