"""Distribution-level frame metrics (METRICS.md section 5): KD-local.

Per-frame errors punish a model for predicting one plausible future instead of the one that happened;
at long horizons the fairer question is whether its frames look like the world's at all. KD-local is
the unbiased squared maximum mean discrepancy between predicted and ground-truth frames with KID's
polynomial kernel k(x, y) = (x.y / d + 1)^3, over features of a fixed frame encoder. The encoder is a
small convolutional network whose weights are drawn from a seeded generator (nothing is downloaded), so
every report on every machine measures in the same space; its weights' SHA-256 goes in the report. The
floor is the same quantity between two halves of the ground-truth episodes.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ENCODER_SEED = 20261202
CHANNELS = (3, 16, 32, 64)


class FrameEncoder:
    """Fixed random features of frames: three stride-2 3x3 convolutions with ReLU (He-scaled weights drawn
    from a seeded generator) and, per stage, each channel's spatial mean and standard deviation (224 numbers)."""

    def __init__(self, seed: int = ENCODER_SEED) -> None:
        g = torch.Generator().manual_seed(seed)
        self.weights = [torch.randn(o, i, 3, 3, generator=g) * (2.0 / (9 * i)) ** 0.5
                        for i, o in zip(CHANNELS[:-1], CHANNELS[1:])]
        self.dim = 2 * sum(CHANNELS[1:])
        self.sha256 = hashlib.sha256(b"".join(w.numpy().tobytes() for w in self.weights)).hexdigest()

    @torch.no_grad()
    def __call__(self, frames: np.ndarray, batch: int = 256) -> np.ndarray:
        """frames (N, H, W, 3) uint8 -> features (N, 224) float64."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"FrameEncoder: frames of shape (N, H, W, 3) expected, got {frames.shape}")
        out = []
        for i in range(0, len(frames), batch):
            x = torch.as_tensor(frames[i: i + batch]).float().permute(0, 3, 1, 2) / 127.5 - 1
            feats = []
            for w in self.weights:
                x = F.relu(F.conv2d(x, w, stride=2, padding=1))
                feats += [x.mean((2, 3)), x.std((2, 3))]
            out.append(torch.cat(feats, 1).double().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim))


def kernel_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between samples x (m, d) and y (n, d) under k(a, b) = (a.b / d + 1)^3; m, n >= 2.

    Its expectation is 0 when both come from one distribution (single estimates scatter around 0 and
    can be slightly negative)."""
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"kernel distance needs at least 2 samples on each side (got {m} and {n})")
    d = x.shape[1]
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def feature_scale(gt: np.ndarray) -> np.ndarray:
    """Per-feature scale for standardising features (N, d): the ground truth's own spread, so that every
    feature counts and none by its units, floored at a tenth of the median spread of the features that vary
    (in the encoder's own units when none does).

    Without the floor, a feature the world's frames never vary (a channel that stays dark on a static Atari
    screen has spread 0) turns any difference in it into z-scores of 10^4 and more, and the cubic kernel
    raises those to the sixth power: a Pong report read 1e20 where the floored scale reads 1e15 and 5 for
    copy-last."""
    sd = gt.std(0)
    varied = sd[sd > 0]
    return np.maximum(sd, 0.1 * float(np.median(varied)) if len(varied) else 1.0)  # 1.0: frames all alike


def kd_local(preds: dict[str, np.ndarray], truth: np.ndarray, first_h: int = 1,
             encoder: FrameEncoder | None = None) -> dict[str, Any]:
    """KD-local of every system's frames against the ground truth over horizons first_h..H.

    preds {system: (E, H, S, S, 3)}, truth (E, H, S, S, 3) uint8. Returns {"kd_local": {system: value},
    "floor": GT episodes of the first half against the second half (None with fewer than 4 episodes),
    "horizons": [first_h, H], "samples": frames per side, "encoder": {...}}."""
    enc = encoder or FrameEncoder()
    E, H = truth.shape[:2]
    if not 1 <= first_h <= H:
        raise ValueError(f"kd_local: first_h {first_h} outside 1..{H}")
    flat = lambda a: a[:, first_h - 1:].reshape(-1, *a.shape[2:])  # noqa: E731
    gt = enc(flat(truth))
    mu, sd = gt.mean(0), feature_scale(gt)
    z = lambda f: (f - mu) / sd  # noqa: E731
    gt = z(gt)
    out: dict[str, Any] = {"kd_local": {name: kernel_distance(z(enc(flat(p))), gt) for name, p in preds.items()}}
    half = E // 2
    if half >= 2:
        per = H - first_h + 1
        out["floor"] = kernel_distance(gt[: half * per], gt[half * per:])
    else:
        out["floor"] = None
    out.update({"horizons": [first_h, H], "samples": len(gt),
                "encoder": {"kind": "fixed random conv features (3 stride-2 stages, channel means and stds)",
                            "dim": enc.dim, "seed": ENCODER_SEED, "sha256": enc.sha256[:16]}})
    return out
