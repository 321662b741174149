"""Feature subject consistency, local (METRICS.md section 3.4): does a rollout keep looking like the same scene?

VBench's subject-consistency formula over the predicted frames h = 1..H of each episode,

    SC = 1/(H-1) sum_{h=2..H} ( max(0, cos(f_1, f_h)) + max(0, cos(f_{h-1}, f_h)) ) / 2,

with f taken from the fixed frame encoder of KD-local (`distribution.FrameEncoder`: seeded random
convolutions, nothing downloaded, its SHA-256 in the report) instead of DINO: the spatial means of its
first stage's 16 channels (a 3x3 convolution of the colours with ReLU, pooled over the image: close to a
colour histogram, so objects moving hardly change f while objects changing colour or size, appearing or
vanishing do), centred on the mean over the ground-truth frames being scored (raw features are all
positive, so every cosine would sit near 1). Deeper stages and the channel spreads were tried: they vary
with where objects are, and a recoloured object then moved SC less than re-rendering the GT with
±0.3 px jitter did. SC rewards frozen videos (copy-last scores 1), so it is reported with the same
quantity on the ground truth (GT also changes) and the gap SC_GT - SC_system: a gap well below 0 is a
video more static than the world.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genworld.evaluate.distribution import CHANNELS, ENCODER_SEED, FrameEncoder

DIM = CHANNELS[1]  # the first stage's channel means lead the encoder's feature vector


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine along the last axis, 0 where either vector is 0."""
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    return np.where(na * nb > 0, (a * b).sum(-1) / np.maximum(na * nb, 1e-12), 0.0)


def subject_consistency(features: np.ndarray) -> np.ndarray:
    """(E,) SC of each episode from features (E, H, D) of its predicted frames h = 1..H (H >= 2)."""
    f = np.asarray(features, np.float64)
    if f.ndim != 3 or f.shape[1] < 2:
        raise ValueError(f"subject consistency: features of shape (episodes, H >= 2, dim) expected, got {f.shape}")
    first = np.maximum(0.0, _cos(f[:, :1], f[:, 1:]))
    prev = np.maximum(0.0, _cos(f[:, :-1], f[:, 1:]))
    return ((first + prev) / 2).mean(1)


class SubjectFeatures:
    """First-stage channel means of the KD-local encoder, centred on the ground truth's mean (GT frames
    (E, H, S, S, 3), the frames being scored)."""

    def __init__(self, truth: np.ndarray, encoder: FrameEncoder | None = None) -> None:
        truth = np.asarray(truth)
        if truth.ndim != 5 or truth.shape[1] < 2:
            raise ValueError(f"subject consistency: GT frames of shape (episodes, H >= 2, S, S, 3) expected, "
                             f"got {truth.shape}")
        self.encoder = encoder or FrameEncoder()
        gt = self._raw(truth)
        self.mu = gt.reshape(-1, DIM).mean(0)
        self.truth = gt - self.mu

    def _raw(self, frames: np.ndarray) -> np.ndarray:
        return self.encoder(frames.reshape(-1, *frames.shape[2:]))[:, :DIM].reshape(*frames.shape[:2], DIM)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Centred features (E, H, 16) of frames (E, H, S, S, 3)."""
        frames = np.asarray(frames)
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"subject consistency: frames of shape (episodes, H, S, S, 3) expected, got {frames.shape}")
        return self._raw(frames) - self.mu


def subject_report(preds: dict[str, np.ndarray], truth: np.ndarray,
                   encoder: FrameEncoder | None = None) -> dict[str, Any]:
    """SC of every system's frames {system: (E, H, S, S, 3)} and of the GT frames (E, H, S, S, 3).

    Returns {"sc": {system: mean over episodes}, "gt": SC of the ground truth, "gap": {system: gt - sc},
    "per_episode": {system and "gt": [...]}, "episodes", "horizons", "encoder": {...}}."""
    feats = SubjectFeatures(truth, encoder)
    per = {name: subject_consistency(feats(p)) for name, p in preds.items()}
    gt = subject_consistency(feats.truth)
    return {"sc": {n: float(v.mean()) for n, v in per.items()}, "gt": float(gt.mean()),
            "gap": {n: float(gt.mean() - v.mean()) for n, v in per.items()},
            "per_episode": {**{n: v.tolist() for n, v in per.items()}, "gt": gt.tolist()},
            "episodes": int(truth.shape[0]), "horizons": [1, int(truth.shape[1])],
            "encoder": {"kind": "the KD-local encoder's first-stage channel means (fixed random 3x3 convolution, "
                                "ReLU, pooled), centred on the scored GT frames' mean", "dim": DIM, "seed": ENCODER_SEED,
                        "sha256": feats.encoder.sha256[:16]}}
