"""Objects read from frames: palette segmentation into blobs, and per-frame matching to ground truth.

A pixel belongs to palette colour c when its RGB distance to c is at most `colour_dist` (and it is closer
to c than to any other palette colour or the background); connected components (4-connected,
scipy.ndimage.label) of one colour with area >= a_min are blobs. The same segmentation reads the
ground-truth frame, so a prediction is compared with what a perfect prediction would show
(partial occlusion and discs drawn over each other included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from genworld.evaluate.config import Thresholds

COLOUR, EXISTS, RADIUS = 6, 8, 4  # gt.objects columns


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours `(..., 3)` in 0..255."""
    c = np.asarray(rgb, np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


@dataclass
class Blobs:
    """Connected single-colour components of one frame (n blobs)."""

    colour: np.ndarray  # (n,) palette index
    cx: np.ndarray  # (n,) centroid x, pixels (pixel centres at +0.5)
    cy: np.ndarray  # (n,)
    area: np.ndarray  # (n,) pixels
    rgb: np.ndarray  # (n, 3) mean colour of the blob's pixels in the frame
    pixels: list[np.ndarray]  # n arrays of flat pixel indices

    def __len__(self) -> int:
        return len(self.colour)


class Segmenter:
    """Palette segmentation of `(S, S, 3)` frames into blobs, for worlds drawn in flat palette colours."""

    def __init__(self, config: dict[str, Any], th: Thresholds) -> None:
        try:
            self.palette = np.asarray(config["palette"], np.float64)  # (P, 3)
            background = np.asarray(config["background"], np.float64)
            self.size = int(config["image_size"])
        except KeyError as e:
            raise KeyError(f"palette segmentation: spec.config lacks {e} (needs palette, background, image_size)") from None
        self.occluder_id = int(config.get("occluder_colour_id", len(self.palette) - 1))
        self.colours = np.vstack([self.palette, background])  # (P + 1, 3); last = background
        self.palette_lab = rgb_to_lab(self.palette)
        self.th = th
        yy, xx = np.mgrid[0: self.size, 0: self.size]
        self._x, self._y = xx.ravel() + 0.5, yy.ravel() + 0.5

    def ids(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        """Palette index per pixel `(S, S)` (-1 = background or no colour) and the palette purity."""
        raw = np.asarray(frame)
        if raw.shape != (self.size, self.size, 3):
            raise ValueError(f"palette segmentation: frame shape {raw.shape}, expected ({self.size}, {self.size}, 3)")
        if raw.dtype == np.uint8:
            # Distances once per distinct colour (a palette frame has a dozen), not once per pixel.
            key = (raw[..., 0].astype(np.int32) << 16) | (raw[..., 1].astype(np.int32) << 8) | raw[..., 2]
            uniq, inv = np.unique(key.ravel(), return_inverse=True)
            rgb = np.stack([uniq >> 16, (uniq >> 8) & 255, uniq & 255], -1).astype(np.float64)  # (U, 3)
            d2u = ((rgb[:, None, :] - self.colours) ** 2).sum(-1)  # (U, P + 1)
            iu = d2u.argmin(-1)
            idx = iu[inv].reshape(key.shape)
            ok = (d2u[np.arange(len(uniq)), iu] <= self.th.colour_dist**2)[inv].reshape(key.shape)
        else:
            f = raw.astype(np.float64)
            d2 = ((f[:, :, None, :] - self.colours) ** 2).sum(-1)  # (S, S, P + 1)
            idx = d2.argmin(-1)
            ok = np.take_along_axis(d2, idx[..., None], -1)[..., 0] <= self.th.colour_dist**2
        ids = np.where(ok & (idx < len(self.palette)) & (idx != self.occluder_id), idx, -1)
        return ids, float(ok.mean())

    def blobs(self, frame: np.ndarray) -> tuple[Blobs, float]:
        """The blobs of a frame (area >= a_min) and its palette purity (fraction of pixels on a palette colour)."""
        ids, purity = self.ids(frame)
        return label_blobs(ids, frame, self._x, self._y, self.th.a_min, background=-1), purity


def label_blobs(labels: np.ndarray, frame: np.ndarray, xs: np.ndarray, ys: np.ndarray, a_min: float,
                background: int, colour_of: Any = None) -> Blobs:
    """Connected components (area >= a_min) of every label but `background` of an (S, S) label map, as
    Blobs with colour `colour_of[label]` (the label itself when None); xs, ys: flat pixel coordinates."""
    flat_rgb = np.asarray(frame, np.float64).reshape(-1, 3)
    cols, cxs, cys, areas, rgbs, pix = [], [], [], [], [], []
    for c in np.unique(labels):
        if c == background:
            continue
        lab, n = ndimage.label(labels == c)
        lab = lab.ravel()
        sizes = np.bincount(lab, minlength=n + 1)
        for j in np.nonzero(sizes[1:] >= a_min)[0] + 1:
            p = np.flatnonzero(lab == j)
            cols.append(int(c if colour_of is None else colour_of[c]))
            cxs.append(xs[p].mean())
            cys.append(ys[p].mean())
            areas.append(len(p))
            rgbs.append(flat_rgb[p].mean(0))
            pix.append(p)
    return Blobs(np.asarray(cols, np.int64), np.asarray(cxs), np.asarray(cys), np.asarray(areas, np.float64),
                 np.asarray(rgbs).reshape(-1, 3), pix)


FIELDS = ("gt_present", "present", "cx", "cy", "area", "de", "iou", "matched", "gt_cx", "gt_cy", "gt_area",
          "ox", "oy")


def _primary(b: Blobs, colour: int) -> int:
    """Index of the largest blob of `colour`, or -1."""
    idx = np.flatnonzero(b.colour == colour)
    return int(idx[b.area[idx].argmax()]) if len(idx) else -1


def _centred_iou(a: np.ndarray, ax: float, ay: float, b: np.ndarray, bx: float, by: float, size: int) -> float:
    """IoU of two pixel sets after moving each one's centroid to the origin (whole-pixel shift)."""
    def key(p: np.ndarray, cx: float, cy: float) -> np.ndarray:
        x, y = p % size - int(round(cx - 0.5)), p // size - int(round(cy - 0.5))
        return (y + 4 * size) * (8 * size) + (x + 4 * size)
    ka, kb = key(a, ax, ay), key(b, bx, by)
    inter = len(np.intersect1d(ka, kb, assume_unique=True))
    return inter / (len(ka) + len(kb) - inter)


def whole_body_centre(pred: Blobs, j: int, r: float, size: int) -> tuple[float, float]:
    """Centre of the disc of radius `r` that best explains blob j when other blobs may hide part of it.

    A body that another body covers in part shows only what is left, and the centroid of that moves away
    from the cover. Each candidate centre (a 1/2-pixel grid within r of the centroid, then 1/8-pixel steps
    around the best) draws the disc with antialiased edges (a pixel whose centre is d from it is covered
    by clip(r + 1/2 - d, 0, 1)) and is scored by the squared mismatch with the blob, on the blob's pixels
    and the scene's; pixels of other blobs and beyond the frame are left out (the disc may continue under
    them). Returns the best candidate (the mean of ties); the centroid when the blob touches no other blob.
    """
    owner = np.full(size * size, -1, np.int64)  # blob index per pixel, -1 scene
    for i, p in enumerate(pred.pixels):
        owner[p] = i
    owner = owner.reshape(size, size)
    bx, by = pred.pixels[j] % size, pred.pixels[j] // size
    ring = owner[max(by.min() - 1, 0): by.max() + 2, max(bx.min() - 1, 0): bx.max() + 2]
    if not ((ring >= 0) & (ring != j)).any():
        return float(pred.cx[j]), float(pred.cy[j])
    cx, cy = float(pred.cx[j]), float(pred.cy[j])
    pad = int(np.ceil(2 * r)) + 2  # the window holds every candidate's disc
    yy, xx = np.mgrid[int(cy) - pad: int(cy) + pad + 1, int(cx) - pad: int(cx) + pad + 1]
    inside = (xx >= 0) & (xx < size) & (yy >= 0) & (yy < size)
    lab = np.full(xx.shape, -2, np.int64)  # -2: beyond the frame
    lab[inside] = owner[yy[inside], xx[inside]]
    mine, scene = (lab == j).ravel().astype(np.float64), (lab == -1).ravel().astype(np.float64)
    px, py = xx.ravel() + 0.5, yy.ravel() + 0.5

    def cost(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
        cover = np.clip(r + 0.5 - np.hypot(px[None] - gx[:, None], py[None] - gy[:, None]), 0.0, 1.0)  # (G, n)
        return ((1.0 - cover) ** 2) @ mine + (cover**2) @ scene

    coarse = np.arange(-r, r + 1e-9, 0.5)
    gx, gy = (g.ravel() for g in np.meshgrid(cx + coarse, cy + coarse))
    keep = np.hypot(gx - cx, gy - cy) <= r
    gx, gy = gx[keep], gy[keep]
    i = int(cost(gx, gy).argmin())
    fine = np.arange(-0.5, 0.5 + 1e-9, 0.125)
    gx, gy = (g.ravel() for g in np.meshgrid(gx[i] + fine, gy[i] + fine))
    c = cost(gx, gy)
    best = c <= c.min() + 1e-9
    return float(gx[best].mean()), float(gy[best].mean())


def match_frame(pred: Blobs, gt: Blobs, table: np.ndarray, seg: Segmenter) -> tuple[dict[str, np.ndarray], int]:
    """Per GT object k (rows of `table` (K, 10)): presence, centroid, area, colour error and matching.

    Returns ({field: (K,)} for FIELDS, spawn count). `matched` is the palette colour of the blob that the
    Hungarian assignment (centroid distance, gated) gives object k, or -1.
    """
    K = table.shape[0]
    out = {f: np.zeros(K) for f in FIELDS}
    out["matched"][:] = -1
    colours = table[:, COLOUR].astype(np.int64)
    exists = table[:, EXISTS] > 0.5
    for k in np.flatnonzero(exists):
        g, p = _primary(gt, colours[k]), _primary(pred, colours[k])
        if g >= 0:
            out["gt_present"][k] = float(gt.area[g] >= seg.th.a_vis)
            out["gt_cx"][k], out["gt_cy"][k], out["gt_area"][k] = gt.cx[g], gt.cy[g], gt.area[g]
        if p >= 0:
            out["present"][k] = 1
            out["cx"][k], out["cy"][k], out["area"][k] = pred.cx[p], pred.cy[p], pred.area[p]
            if getattr(seg, "whole_bodies", False):
                # the body's footprint: a disc of its area in the GT frame (its projected size if GT hides it)
                r = np.sqrt(gt.area[g] / np.pi) if g >= 0 else float(table[k, RADIUS])
                out["ox"][k], out["oy"][k] = whole_body_centre(pred, p, r, seg.size)
            else:
                out["ox"][k], out["oy"][k] = pred.cx[p], pred.cy[p]
            out["de"][k] = float(np.linalg.norm(rgb_to_lab(pred.rgb[p]) - seg.palette_lab[colours[k]]))
            if g >= 0:
                out["iou"][k] = _centred_iou(pred.pixels[p], pred.cx[p], pred.cy[p],
                                             gt.pixels[g], gt.cx[g], gt.cy[g], seg.size)
    vis = np.flatnonzero(out["gt_present"] > 0)
    # Spawns: blobs beyond what the GT frame shows, per colour. Counting per colour (not "every blob but the
    # largest") keeps a disc that the occluder's corner cuts into two pieces from counting as a spawn when
    # the GT frame shows the same pieces. Of an existing object's colour only blobs of >= a_vis pixels count
    # (a sliver at the occluder's edge comes and goes with sub-pixel motion); a colour that no existing
    # object has counts every blob.
    P = len(seg.palette)
    own = np.zeros(P, bool)
    own[colours[exists]] = True
    big = pred.area >= seg.th.a_vis
    n_pred = np.bincount(pred.colour[big | ~own[pred.colour]], minlength=P) if len(pred) else np.zeros(P, int)
    n_gt = np.bincount(gt.colour, minlength=P) * own if len(gt) else np.zeros(P, int)
    spawn = int(np.maximum(n_pred - n_gt, 0).sum())
    if len(vis) and len(pred):
        cost = np.hypot(pred.cx[:, None] - out["gt_cx"][vis], pred.cy[:, None] - out["gt_cy"][vis])  # (n, V)
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            if cost[r, c] <= seg.th.gate:
                out["matched"][vis[c]] = pred.colour[r]
    return out, spawn


def track_episode(frames: np.ndarray, gt_frames: np.ndarray, tables: np.ndarray, seg: Segmenter,
                  gt_cache: list[Blobs] | None = None,
                  pred_cache: list[tuple[Blobs, float]] | None = None) -> dict[str, np.ndarray]:
    """Match every predicted frame `(T, S, S, 3)` to ground truth (`gt_frames` (T, S, S, 3), `tables` (T, K, 10)).

    Returns {field: (T, K)} plus `spawn`, `purity` and `n_pred` (blob count), each (T,). `pred_cache`: the
    frames' (blobs, purity), already read.
    """
    T = len(frames)
    rows, spawn, purity, n_pred = [], np.zeros(T), np.zeros(T), np.zeros(T)
    for t in range(T):
        pb, purity[t] = pred_cache[t] if pred_cache is not None else seg.blobs(frames[t])
        n_pred[t] = len(pb)
        gb = gt_cache[t] if gt_cache is not None else seg.blobs(gt_frames[t])[0]
        r, spawn[t] = match_frame(pb, gb, tables[t], seg)
        rows.append(r)
    out = {f: np.stack([r[f] for r in rows]) for f in FIELDS}
    out["spawn"], out["purity"], out["n_pred"] = spawn, purity, n_pred
    return out
