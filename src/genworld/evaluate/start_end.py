"""Start-end drift of long free-running rollouts (METRICS.md section 2, FramePack-style, reference-free).

Δ_q = q(first 15% of frames) - q(last 15%), q averaged over the frames of each part, for three qualities that
need no aligned ground truth:

* sharpness = log10 of the variance of the Laplacian of the grey frame (on [0, 1]); the log makes Δ a ratio,
  comparable across worlds. Blur lowers it (Δ > 0), noise raises it (Δ < 0).
* colour KL = KL(frame histogram || GT histogram), RGB in 4x4x4 bins, both smoothed with one pseudo-count per
  bin per 1000 pixels; lower = closer to the world's colours.
* palette purity = fraction of pixels within δ (RGB distance) of a palette colour, the palette and δ learned
  from GT frames (`Palette.fit`): the median colours of the 8x8x8 RGB bins holding >= 0.1% of GT pixels, δ = the 99th
  percentile of GT pixels' distance to their nearest palette colour (at least 8), so anti-aliased GT edges are
  pure by construction on every world.

A sequence is flagged when |Δ_q| exceeds τ_q for any q, τ_q calibrated on GT sequences (`calibrate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genworld.evaluate.motion import LUMA

QUALITIES = ("sharpness", "colour_kl", "palette_purity")
PART = 0.15  # fraction of frames in the first and the last part
BINS = 4  # histogram bins per RGB channel
PALETTE_BINS = 8  # bins per RGB channel when the palette is learned
MIN_SHARE = 0.001  # share of GT pixels a colour bin needs to give a palette colour
MARGIN = 3.0  # τ_q = MARGIN x the largest |Δ_q| of the GT calibration sequences (plus a floor)
FLOOR = {"sharpness": 0.05, "colour_kl": 0.005, "palette_purity": 0.005}


def _bins(frames: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(..., H, W) coarse RGB bin index of every pixel of uint8 frames (..., H, W, 3)."""
    q = frames.astype(np.int64) * bins // 256
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def _hist(frames: np.ndarray) -> np.ndarray:
    """Smoothed, normalised coarse RGB histogram (..., BINS^3) of each frame (..., H, W, 3)."""
    b = _bins(frames)
    lead, n = b.shape[:-2], b.shape[-2] * b.shape[-1]
    flat = b.reshape(-1, n)
    h = np.stack([np.bincount(r, minlength=BINS**3) for r in flat]).astype(np.float64)
    h += n / 1000.0
    return (h / h.sum(-1, keepdims=True)).reshape(*lead, BINS**3)


@dataclass
class Palette:
    """What the reference-free qualities learn from GT frames: palette colours, δ and the colour histogram."""

    colours: np.ndarray  # (K, 3) RGB
    delta: float  # a pixel within this RGB distance of a palette colour is pure
    hist: np.ndarray  # (BINS^3,) smoothed GT colour histogram

    @classmethod
    def fit(cls, frames: np.ndarray, max_pixels: int = 400_000, seed: int = 0) -> Palette:
        """Learn the palette, δ and histogram from GT frames (..., H, W, 3) uint8."""
        px = frames.reshape(-1, 3)
        if len(px) > max_pixels:
            px = px[np.random.default_rng(seed).choice(len(px), max_pixels, replace=False)]
        b = _bins(px[:, None], PALETTE_BINS)[:, 0]
        counts = np.bincount(b, minlength=PALETTE_BINS**3)
        keep = np.flatnonzero(counts >= MIN_SHARE * len(px))
        colours = np.stack([np.median(px[b == k], 0) for k in keep]).astype(np.float32)
        d = _nearest(px.astype(np.float32), colours)
        hist = np.bincount(_bins(px[:, None])[:, 0], minlength=BINS**3).astype(np.float64) + len(px) / 1000.0
        return cls(colours, max(8.0, float(np.percentile(d, 99))), hist / hist.sum())

    def to_json(self) -> dict[str, Any]:
        return {"colours": self.colours.round(1).tolist(), "delta": self.delta}


def _nearest(px: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(P,) RGB distance of each pixel (P, 3) to its nearest colour (K, 3)."""
    r, g, b = np.ascontiguousarray(px.T, np.float32)  # channel planes: a sum over an axis of 3 is slow
    best = np.full(len(px), np.inf, np.float32)
    for c in colours:  # one colour at a time: no (P, K, 3) intermediate
        best = np.minimum(best, (r - c[0]) ** 2 + (g - c[1]) ** 2 + (b - c[2]) ** 2)
    return np.sqrt(best)


def qualities(frames: np.ndarray, pal: Palette) -> dict[str, np.ndarray]:
    """{q: (T,)} per-frame sharpness, colour KL and palette purity of frames (T, H, W, 3) uint8."""
    x = frames.astype(np.float32)
    grey = x @ LUMA.astype(np.float32) / 255.0
    g = np.pad(grey, ((0, 0), (1, 1), (1, 1)), mode="symmetric")  # = scipy.ndimage.laplace(mode="reflect")
    lap = g[:, :-2, 1:-1] + g[:, 2:, 1:-1] + g[:, 1:-1, :-2] + g[:, 1:-1, 2:] - 4 * grey  # (T, H, W)
    sharp = np.log10(lap.var((1, 2)) + 1e-8)
    h = _hist(frames)
    kl = (h * np.log(h / pal.hist)).sum(-1)
    pure = (_nearest(x.reshape(-1, 3), pal.colours) <= pal.delta).reshape(len(x), -1).mean(1)
    return {"sharpness": sharp, "colour_kl": kl, "palette_purity": pure}


def deltas(frames: np.ndarray, pal: Palette) -> dict[str, float]:
    """{q: Δ_q} = q(first 15% of frames) - q(last 15%) of one sequence (T, H, W, 3), T >= 2."""
    n = max(1, int(round(PART * len(frames))))
    first, last = frames[:n], frames[-n:]
    a, b = qualities(first, pal), qualities(last, pal)
    return {q: float(a[q].mean() - b[q].mean()) for q in QUALITIES}


def calibrate(gt_sequences: list[np.ndarray], pal: Palette) -> dict[str, float]:
    """τ_q = max(FLOOR_q, MARGIN x the largest |Δ_q| over GT sequences): the GT's own start-end change."""
    d = [deltas(s, pal) for s in gt_sequences]
    return {q: max(FLOOR[q], MARGIN * max(abs(x[q]) for x in d)) for q in QUALITIES}


def flagged(delta: dict[str, float], tau: dict[str, float]) -> bool:
    """True when any |Δ_q| exceeds its threshold τ_q."""
    return any(abs(delta[q]) > tau[q] for q in QUALITIES)


def summarise(sequences: list[np.ndarray], pal: Palette, tau: dict[str, float]) -> dict[str, Any]:
    """Mean Δ_q over sequences, per-sequence Δ and the share of sequences flagged."""
    d = [deltas(s, pal) for s in sequences]
    return {"delta": {q: float(np.mean([x[q] for x in d])) for q in QUALITIES},
            "per_sequence": [{q: x[q] for q in QUALITIES} for x in d],
            "flagged": float(np.mean([flagged(x, tau) for x in d])), "sequences": len(d),
            "frames": [len(s) for s in sequences]}


# ---- corruptions used to validate the detector (progressive over the sequence's length) ---------------------

def corrupt(frames: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A copy of frames (T, H, W, 3) uint8 corrupted progressively: amount t / (T-1) of the full strength.

    kinds: blur (Gaussian σ up to 1.5 px), brighten (+60 on every channel), colour_shift (+50 red, -50 blue),
    noise (Gaussian σ up to 20)."""
    from scipy.ndimage import gaussian_filter

    T = len(frames)
    out = frames.astype(np.float32).copy()
    for t in range(T):
        a = t / max(T - 1, 1)
        if kind == "blur":
            if a > 0:
                out[t] = gaussian_filter(out[t], (1.5 * a, 1.5 * a, 0), mode="nearest")
        elif kind == "brighten":
            out[t] += 60 * a
        elif kind == "colour_shift":
            out[t, ..., 0] += 50 * a
            out[t, ..., 2] -= 50 * a
        elif kind == "noise":
            out[t] += rng.normal(0, 20 * a, out[t].shape)
        else:
            raise ValueError(f"unknown corruption {kind!r}; use blur, brighten, colour_shift or noise")
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


CORRUPTIONS = ("blur", "brighten", "colour_shift", "noise")


# ---- the report block ----------------------------------------------------------------------------------------

def start_end_block(ds: Any, ids: list[int], episodes: list[dict[str, np.ndarray]], vkey: str, C: int,
                    runs: np.ndarray, how: str, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(report, reference) start-end drift of the model's free runs (B, N, S, S, 3) (`free_run.step_together`;
    `how` its actions), the GT episodes (the floor) and copy-last."""
    scored = set(ids)
    spare = [i for i in range(ds.num_episodes - 1, -1, -1) if i not in scored][:8]
    gt_scored = [ep[vkey] for ep in episodes]
    cal = [ds.episode(i, keys=[vkey])[vkey] for i in spare] or gt_scored
    pal = Palette.fit(np.concatenate(cal), seed=seed)
    tau = calibrate(cal, pal)
    steps = runs.shape[1]
    model = summarise(list(runs), pal, tau)
    gt = summarise(gt_scored, pal, tau)
    out = {"model": model, "ground_truth": gt, "copy_last": {"delta": {q: 0.0 for q in QUALITIES}, "flagged": 0.0},
           "threshold": tau, "palette": pal.to_json(), "steps": steps, "contexts": len(runs),
           "actions": how, "temperature": 0.0,
           "calibration": {"episodes": spare or ids, "note": "palette, δ, GT histogram and thresholds from GT "
                           "episodes not scored in this report" if spare else "no spare episodes: calibrated on "
                           "the scored ones"},
           "method": f"Δ_q = q(first {PART:.0%} of frames) - q(last {PART:.0%}) of each free run of {steps} steps "
                     f"(context C = {C}, temperature 0); sharpness = log10 var(Laplacian(grey)), colour_kl = "
                     f"KL(frame || GT) over {BINS}^3 RGB bins, palette_purity = share of pixels within δ of a GT "
                     f"palette colour; flagged when any |Δ_q| > τ_q = max(floor, {MARGIN} x largest |Δ_q| of the "
                     "GT calibration episodes)"}
    if min(gt["frames"]) < steps:
        out["note"] = (f"the GT episodes are {min(gt['frames'])}-{max(gt['frames'])} frames long, the free runs "
                       f"{steps}: the GT floor covers a shorter span")
    return out, {"delta": gt["delta"], "flagged": gt["flagged"]}
