"""`genworld eval` on Atari worlds: object metrics from frames read by the learned-palette reader.

Thresholds are calibrated on up to 4 unscored episodes; the reader is then validated on the scored
episodes' GT frames (`arcade_check.self_check`: false positives on GT and on a flawless model's frames,
detection of objects removed, recoloured, teleported). Only when that passes are persistence, vanish,
spawn, teleport and colour-change rates reported; otherwise they are unavailable, with the figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def arcade_objects_all(ds: Any, ids: list[int], gt_frames: np.ndarray, preds: dict[str, np.ndarray],
                       vkey: str, seed: int) -> dict[str, Any]:
    """Scores of every system {name: (E, H+1, S, S, 3), frame 0 the real anchor} and of the GT frames
    (E, H+1, S, S, 3) ("reference"), with "thresholds", "calibration", "check" and the checked "reader"
    (an `ArcadeCounter`); or {"unavailable": reason}."""
    from genworld.evaluate import arcade_objects as A
    from genworld.evaluate.arcade_check import DETECT_MIN, FP_MAX, flawless, self_check

    others = [i for i in range(ds.num_episodes - 1, -1, -1) if i not in set(ids)][:4]
    cal = [ds.episode(i, keys=[vkey])[vkey] for i in others] if others else list(gt_frames)
    rng = np.random.default_rng(seed + 3)
    th = A.calibrate(cal, [flawless(f, rng) for f in cal], others or ids)
    check = self_check(gt_frames, th, seed=seed + 4)
    calibration = {"episodes": others or ids, "note": (
        "palette (background = the most common colour, object colours = directions of components' offsets "
        "from it) and thresholds from GT frames of episodes not scored here, with a noisy copy (sigma 4) as a "
        "flawless model's frames" if others else "no spare episodes: calibrated on the scored ones")}
    if not check["passed"]:
        return {"unavailable": (
            f"the Atari object reader failed its check on this dataset's GT frames (needs <= {FP_MAX:.0%} false "
            f"positives and >= {DETECT_MIN:.0%} detection of objects removed, recoloured, teleported; measured: "
            f"false positives {check['false_positive']}, detection "
            f"{ {k: v['detected'] for k, v in check['detection'].items()} }, {check['object_frames']} GT "
            "object-frames): the game's objects cannot be read reliably from its frames"),
            "check": check, "thresholds": th.to_json(), "calibration": calibration}
    reader = A.ArcadeReader(th)
    cache = [[reader.blobs(f) for f in ep] for ep in gt_frames]
    out: dict[str, Any] = {n: A.score(p, gt_frames, reader, cache) for n, p in preds.items()}
    out["reference"] = A.score(gt_frames, gt_frames, reader, cache)
    return out | {"check": check, "thresholds": th.to_json(), "calibration": calibration,
                  "reader": ArcadeCounter(reader)}


class ArcadeCounter:
    """Object counts of a system's frames against a world's (`free_run.ObjectCounter`) by the checked Atari reader."""

    unread = {"size_change_rate": "the Atari reader reads no object sizes (blended sprites of 1-48 px)"}

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.method = ("objects read by the Atari learned-palette reader the identity block checked; persistence, "
                       "spawn and colour change as it defines them (drawn within reach px of the world's object "
                       "pixels), so they also count where the runs diverge in position")

    def counts(self, systems: dict[str, np.ndarray], truth: np.ndarray, steps: dict[str, np.ndarray]
               ) -> dict[str, dict[str, np.ndarray]]:
        """Per-step counts (T,) of each system's frames (T, S, S, 3) against the world's; frame 0 is not counted."""
        from genworld.evaluate import arcade_objects as A

        gt = [self.reader.blobs(f) for f in truth]
        out = {}
        for name, frames in systems.items():
            fl = A.flags(gt if frames is truth else [self.reader.blobs(f) for f in frames], gt, self.reader.th)
            out[name] = {k: fl[k] for k in ("objects", "present", "spawn", "colour")}
        return out
