"""Frame accuracy: PSNR, SSIM (Gaussian σ = 1.5, 11x11 window, data range 1), drift slope, valid horizon
(the normalised AUC is in `drift.py`)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

C1, C2 = 0.01**2, 0.03**2


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float32) / 255.0 if np.asarray(x).dtype == np.uint8 else np.asarray(x, np.float32)


def psnr(pred: np.ndarray, true: np.ndarray, cap: float = 60.0) -> np.ndarray:
    """PSNR in dB of frames `(..., H, W, 3)` on [0, 1], one value per frame, capped at `cap` (identical frames)."""
    mse = ((_unit(pred) - _unit(true)) ** 2).mean((-3, -2, -1))
    return np.minimum(cap, 10 * np.log10(1.0 / np.maximum(mse, 1e-12)))


def ssim(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Mean SSIM per frame of `(..., H, W, 3)` frames (per channel, Gaussian window σ 1.5 truncated to 11x11)."""
    x, y = _unit(pred), _unit(true)
    lead = x.shape[:-3]
    x, y = x.reshape(-1, *x.shape[-3:]), y.reshape(-1, *y.shape[-3:])
    sig = (0, 1.5, 1.5, 0)

    def blur(a: np.ndarray) -> np.ndarray:
        return gaussian_filter(a, sig, truncate=5 / 1.5, mode="reflect")

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx**2 + my**2 + C1) * (vx + vy + C2))
    return s.mean((-3, -2, -1)).reshape(lead)


def valid_horizon(model: np.ndarray, base: np.ndarray, eps: float = 0.0) -> int:
    """Largest h such that model(h') >= base(h') + eps for every h' <= h (0 if it never does)."""
    worse = np.flatnonzero(np.asarray(model) < np.asarray(base) + eps)
    return int(worse[0]) if len(worse) else len(model)


def drift_slope(q: np.ndarray) -> float:
    """OLS slope of a per-horizon curve q(h), h = 1..H, over h in [H/4, H]."""
    H = len(q)
    h = np.arange(1, H + 1)
    keep = h >= max(1, H // 4)
    if keep.sum() < 2:
        return 0.0
    return float(np.polyfit(h[keep], np.asarray(q)[keep], 1)[0])

