"""Objects read from MuJoCo frames (tabletop): a per-pixel probe fitted on ground-truth frames only.

The tabletop world records `gt.segmentation` (per pixel: 0 scene, 1 fingertip, 2.. objects) with its
frames. `fit_probe` fits a small per-pixel classifier (an MLP on the pixel's CIELAB colour, the mean
colour of its 3x3 and 7x7 neighbourhoods, the lightness range of its 5x5 neighbourhood and its image
position) on GT frames and their segmentation
from training episodes; `ProbeSegmenter` applies it to any frame (a model's prediction) and cuts each
class into connected blobs, in the same `Blobs` structure the palette segmentation of bounce gives, so
`objects.match_frame` and every identity and physics detector run unchanged. Label 1 + r is row r of
`gt.bodies`; its palette index (the `colour` of a blob and of the detectors' tables) is the row's
`colour_id`: objects 0..K-1, the fingertip K (the last palette entry of the tabletop spec config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from genworld.evaluate.config import Thresholds
from genworld.evaluate.objects import Blobs, label_blobs, rgb_to_lab

SEG_KEY, BODIES_KEY = "gt.segmentation", "gt.bodies"
# gt.bodies columns (worlds.tabletop.spec.BODY_COLUMNS)
B_X, B_Y, B_Z, B_U, B_V, B_VISIBLE, B_EXISTS, B_MASS, B_COLOUR, B_SIZE = 0, 1, 2, 13, 14, 15, 16, 17, 19, 21
N_FEATURES = 13


def features(frames: np.ndarray) -> np.ndarray:
    """(N, S, S, F) per-pixel features of uint8 frames (N, S, S, 3): Lab, 3x3 and 7x7 mean Lab, 5x5 min and
    max L, x, y in [0, 1]."""
    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[-1] != 3 or f.shape[1] != f.shape[2]:
        raise ValueError(f"probe: frames have shape {f.shape}, expected (N, S, S, 3)")
    lab = rgb_to_lab(f).astype(np.float32)  # (N, S, S, 3)
    m3 = ndimage.uniform_filter(lab, size=(1, 3, 3, 1), mode="nearest")
    m7 = ndimage.uniform_filter(lab, size=(1, 7, 7, 1), mode="nearest")
    lo = ndimage.minimum_filter(lab[..., 0], size=(1, 5, 5), mode="nearest")[..., None]
    hi = ndimage.maximum_filter(lab[..., 0], size=(1, 5, 5), mode="nearest")[..., None]
    N, S = f.shape[:2]
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
    pos = np.broadcast_to(np.stack([(xx + 0.5) / S, (yy + 0.5) / S], -1), (N, S, S, 2))
    return np.concatenate([lab, m3, m7, lo, hi, pos], -1)


@dataclass
class Probe:
    """A fitted per-pixel classifier: feature standardisation, MLP weights and the classes' mean colours."""

    mean: np.ndarray  # (F,)
    std: np.ndarray  # (F,)
    weights: list[tuple[np.ndarray, np.ndarray]]  # (W, b) per layer, ReLU between layers
    n_classes: int
    class_rgb: np.ndarray  # (C, 3) mean colour of each class on the training frames
    train_frames: int
    train_episodes: list[int]

    def proba(self, frames: np.ndarray) -> np.ndarray:
        """(N, S, S, C) class probabilities of each pixel of frames (N, S, S, 3)."""
        x = ((features(frames) - self.mean) / self.std).astype(np.float32)
        shape = x.shape[:-1]
        h = x.reshape(-1, x.shape[-1])
        for j, (w, b) in enumerate(self.weights):
            h = h @ w + b
            if j < len(self.weights) - 1:
                np.maximum(h, 0, out=h)
        h -= h.max(-1, keepdims=True)
        e = np.exp(h)
        return (e / e.sum(-1, keepdims=True)).reshape(*shape, self.n_classes)

    def predict(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels (N, S, S) uint8, confidence (N, S, S)) of frames (N, S, S, 3)."""
        p = self.proba(frames)
        lab = p.argmax(-1)
        return lab.astype(np.uint8), np.take_along_axis(p, lab[..., None], -1)[..., 0]

    def to_json(self) -> dict[str, Any]:
        sizes = [self.weights[0][0].shape[0]] + [w.shape[1] for w, _ in self.weights]
        return {"kind": "per-pixel MLP", "layers": sizes, "classes": self.n_classes,
                "features": "CIELAB of the pixel, mean CIELAB of its 3x3 and 7x7 neighbourhoods, min and max "
                             "lightness of its 5x5 neighbourhood, x, y",
                "train_frames": self.train_frames, "train_episodes": self.train_episodes}


def fit_probe(frames: np.ndarray, labels: np.ndarray, n_classes: int, seed: int = 0, steps: int = 400,
              hidden: int = 32, pixels: int = 200_000, batch: int = 4096,
              episodes: list[int] | None = None) -> Probe:
    """Fit the probe on GT frames (N, S, S, 3) uint8 and their segmentation labels (N, S, S) in 0..C-1.

    Deterministic for a given seed (a seeded pixel sample, torch seeded, one thread for the fit).
    """
    import torch

    frames, labels = np.asarray(frames), np.asarray(labels)
    if frames.shape[:3] != labels.shape or frames.ndim != 4:
        raise ValueError(f"probe: frames {frames.shape} and labels {labels.shape} must be (N, S, S, 3) and (N, S, S)")
    if len(frames) == 0:
        raise ValueError("probe: no training frames")
    if labels.max() >= n_classes:
        raise ValueError(f"probe: label {int(labels.max())} found, but only {n_classes} classes "
                         f"(0 scene, 1 fingertip, 2..{n_classes - 1} objects)")
    x = features(frames).reshape(-1, N_FEATURES)
    y = labels.reshape(-1).astype(np.int64)
    rgb = frames.reshape(-1, 3).astype(np.float64)
    class_rgb = np.stack([rgb[y == c].mean(0) if (y == c).any() else np.zeros(3) for c in range(n_classes)])
    rng = np.random.default_rng(seed)
    if len(y) > pixels:
        idx = rng.choice(len(y), pixels, replace=False)
        x, y = x[idx], y[idx]
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.as_tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.as_tensor(y)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(N_FEATURES, hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_classes))
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        for _ in range(steps):
            b = torch.randint(0, len(yt), (min(batch, len(yt)),), generator=g)
            loss = torch.nn.functional.cross_entropy(net(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    finally:
        torch.set_num_threads(threads)
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    weights = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in layers]
    return Probe(mean.astype(np.float32), std.astype(np.float32), weights, n_classes, class_rgb, len(frames),
                 list(episodes or []))


class ProbeSegmenter:
    """Blobs of tabletop frames: from the probe (predicted frames) or from `gt.segmentation` (ground truth).

    Has what `objects.match_frame` reads of a `Segmenter`: `palette`, `palette_lab` (measured mean colour
    of each object on the training frames), `size` and `th`.
    """

    def __init__(self, config: dict[str, Any], th: Thresholds, probe: Probe) -> None:
        try:
            self.palette = np.asarray(config["palette"], np.float64)  # (K + 1, 3): objects, then the fingertip
            self.size = int(config["image_size"])
        except KeyError as e:
            raise KeyError(f"probe segmentation: spec.config lacks {e} (needs palette, image_size)") from None
        P = len(self.palette)
        if probe.n_classes != P + 1:
            raise ValueError(f"probe segmentation: the probe has {probe.n_classes} classes, the world's palette "
                             f"{P} colours (expected classes = palette + 1: scene, fingertip, objects)")
        self.probe, self.th = probe, th
        self.whole_bodies = True  # objects.match_frame fits each body's whole disc (bodies are 2-4 px in radius)
        self.colour_of = label_colours(config)
        self.palette_lab = np.zeros((P, 3))
        self.palette_lab[self.colour_of[1:]] = rgb_to_lab(probe.class_rgb[1:])
        yy, xx = np.mgrid[0: self.size, 0: self.size]
        self._x, self._y = xx.ravel() + 0.5, yy.ravel() + 0.5

    def _check(self, frame: np.ndarray) -> np.ndarray:
        f = np.asarray(frame)
        if f.shape != (self.size, self.size, 3):
            raise ValueError(f"probe segmentation: frame shape {f.shape}, expected ({self.size}, {self.size}, 3)")
        return f

    def labels(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels (N, S, S), confidence (N, S, S)) of frames (N, S, S, 3); float frames are rounded to uint8."""
        f = np.asarray(frames)
        if f.dtype != np.uint8:
            f = np.clip(np.round(f), 0, 255).astype(np.uint8)
        return self.probe.predict(f)

    def blobs(self, frame: np.ndarray) -> tuple[Blobs, float]:
        """The blobs the probe finds in a frame, and the fraction of its pixels classified with confidence >= 0.5."""
        lab, conf = self.labels(self._check(frame)[None])
        return self.label_blobs(lab[0], frame), float((conf >= 0.5).mean())

    def label_blobs(self, labels: np.ndarray, frame: np.ndarray) -> Blobs:
        """Connected components (area >= a_min) of each non-scene label of an (S, S) label map."""
        labels = np.asarray(labels)
        if labels.shape != (self.size, self.size):
            raise ValueError(f"probe segmentation: label map shape {labels.shape}, expected ({self.size}, {self.size})")
        if labels.max(initial=0) >= len(self.colour_of):
            raise ValueError(f"probe segmentation: label {int(labels.max())} beyond the {len(self.colour_of) - 1} "
                             "bodies of the world (1 fingertip, 2.. objects)")
        return label_blobs(labels, frame, self._x, self._y, self.th.a_min, background=0, colour_of=self.colour_of)

    def gt_blobs(self, frames: np.ndarray, segmentation: np.ndarray) -> list[Blobs]:
        """Blobs of GT frames (T, S, S, 3) read from their `gt.segmentation` (T, S, S): the exact masks."""
        return [self.label_blobs(s, f) for f, s in zip(frames, segmentation)]


def label_colours(config: dict[str, Any]) -> np.ndarray:
    """Palette index of each `gt.segmentation` label (-1 for the scene, label 0).

    A world says it in `spec.config["label_colours"]` (drive, metaworld: label 1 + k is row k of gt.objects,
    whose colour is palette k); tabletop's layout is the default: 1 the fingertip (the palette's last colour),
    2 + j object j."""
    if "label_colours" in config:
        return np.asarray(config["label_colours"], np.int64)
    P = len(config["palette"])
    return np.array([-1, P - 1] + list(range(P - 1)), np.int64)


def detector_tables(step: dict[str, np.ndarray], config: dict[str, Any]) -> np.ndarray:
    """(T, K+1, 10) detector tables of a window of steps: a world's own `gt.objects` where it records them in
    the detector schema (drive, metaworld), else tabletop's, projected from `gt.bodies` (`body_tables`)."""
    if "gt.objects" not in step and "gt.bodies" in step:
        return body_tables(step["gt.bodies"], config)
    if "gt.objects" not in step:
        raise KeyError("detector tables: the steps have neither gt.objects (detector schema) nor tabletop gt.bodies")
    t = np.asarray(step["gt.objects"], np.float64)
    if t.ndim != 3 or t.shape[-1] != 10:
        raise ValueError(f"detector tables: gt.objects has shape {t.shape}, expected (T, K+1, 10)")
    return t


def detector_contacts(contacts: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """(T, K+1, K+2) contacts as the detectors read them (bodies, then one "wall" column): tabletop's drop its
    table column (`body_contacts`); other worlds record that layout already."""
    c = np.asarray(contacts)
    if "table_half" in config and c.ndim == 3 and c.shape[-1] == c.shape[1] + 2:
        return body_contacts(c)
    if c.ndim != 3 or c.shape[-1] != c.shape[1] + 1:
        raise ValueError(f"detector contacts: gt.contacts has shape {c.shape}, expected (T, K+1, K+2)")
    return c


def body_tables(bodies: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """(T, K+1, 10) detector tables (bounce `gt.objects` columns) from tabletop `gt.bodies` (T, K+1, 22).

    x, y: the projected body centre (pixels); vx, vy: its image motion per step; radius: the body's size
    (half side or radius) projected at its depth; mass; colour: `colour_id`; visible; exists.
    """
    b = np.asarray(bodies, np.float64)
    if b.ndim != 3 or b.shape[-1] != 22:
        raise ValueError(f"tabletop tables: gt.bodies has shape {b.shape}, expected (T, K+1, 22)")
    try:
        cam = config["camera"]
        pos, xa, ya = (np.asarray(cam[k], np.float64) for k in ("pos", "x_axis", "y_axis"))
        focal = 0.5 * int(config["image_size"]) / np.tan(np.radians(float(cam["fovy"])) / 2)
    except KeyError as e:
        raise KeyError(f"tabletop tables: spec.config lacks {e} (needs camera pos, x_axis, y_axis, fovy and "
                       "image_size)") from None
    back = np.cross(xa, ya)  # camera z: from the table towards the camera
    depth = np.maximum((pos - b[..., B_X:B_Z + 1]) @ back, 1e-6)
    out = np.zeros(b.shape[:2] + (10,))
    out[..., 0], out[..., 1] = b[..., B_U], b[..., B_V]
    out[1:, :, 2:4] = out[1:, :, :2] - out[:-1, :, :2]
    out[..., 4] = b[..., B_SIZE] * focal / depth
    out[..., 5], out[..., 6] = b[..., B_MASS], b[..., B_COLOUR]
    out[..., 7], out[..., 8] = b[..., B_VISIBLE], b[..., B_EXISTS]
    return out


def project(points: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """(..., 2) image positions (pixels, x right, y down) of world points (..., 3) in the spec's camera."""
    cam = config["camera"]
    pos, xa, ya = (np.asarray(cam[k], np.float64) for k in ("pos", "x_axis", "y_axis"))
    focal = 0.5 * int(config["image_size"]) / np.tan(np.radians(float(cam["fovy"])) / 2)
    c = (np.asarray(points, np.float64) - pos) @ np.stack([xa, ya, np.cross(xa, ya)]).T
    half = 0.5 * int(config["image_size"])
    return np.stack([half + focal * c[..., 0] / -c[..., 2], half - focal * c[..., 1] / -c[..., 2]], -1)


def rim_walls(config: dict[str, Any], z: float = 0.025) -> np.ndarray:
    """(4, 3) the table rim's inner edges as image walls (`causality.border_walls` form), at height z (m):
    where a resting body's centre is (0.025-0.03 m)."""
    try:
        T = float(config["table_half"])
    except KeyError:
        raise KeyError("tabletop walls: spec.config lacks 'table_half'") from None
    corners = project(np.array([[-T, -T, z], [T, -T, z], [T, T, z], [-T, T, z]]), config)
    centre = project(np.array([0.0, 0.0, z]), config)
    out = []
    for a, b in zip(corners, np.roll(corners, -1, 0)):
        n = np.array([b[1] - a[1], a[0] - b[0]])
        n /= np.linalg.norm(n)
        c = -n @ a
        if n @ centre + c < 0:
            n, c = -n, -c
        out.append([n[0], n[1], c])
    return np.asarray(out)


def body_contacts(contacts: np.ndarray) -> np.ndarray:
    """(T, K+1, K+2) contacts as the detectors read them, from tabletop `gt.contacts` (T, K+1, K+3).

    Columns: bodies, then the rim (the detectors' "wall"). The table column is dropped: every object rests
    on it, and sliding on it only takes energy away (friction), so an object touching nothing but the
    table is in "free flight" for the energy check.
    """
    c = np.asarray(contacts)
    if c.ndim != 3 or c.shape[-1] != c.shape[1] + 2:
        raise ValueError(f"tabletop contacts: gt.contacts has shape {c.shape}, expected (T, K+1, K+3)")
    K1 = c.shape[1]
    return np.concatenate([c[..., :K1], c[..., K1 + 1:]], -1)


def detector_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config the detectors read for a probe-read world: no occluder, no gravity in the image plane
    (tabletop's objects slide on a level table; drive's cars on a level road; Meta-World's objects rest on the
    table, which the contact table records), and walls: tabletop's rim edges, a world's own `walls`, or none
    (a camera that follows the agent has no walls in the image)."""
    walls = rim_walls(config).tolist() if "table_half" in config else config.get("walls", [])
    return {"image_size": config["image_size"], "gravity": 0.0, "walls": walls if walls else np.zeros((0, 3)).tolist(),
            "self_propelled": bool(config.get("self_propelled", False))}


def probe_accuracy(seg: ProbeSegmenter, frames: np.ndarray, segmentation: np.ndarray) -> dict[str, Any]:
    """Accuracy of the probe on GT frames (N, S, S, 3) against their `gt.segmentation` (N, S, S).

    pixel_accuracy over all pixels (and `scene_only_accuracy`: what calling every pixel scene scores);
    per body class: mask IoU (pooled over frames where the body shows in either map) and centroid error
    (pixels, between the largest blob of the probe and of the truth, frames where both show one).
    """
    frames, segmentation = np.asarray(frames), np.asarray(segmentation)
    pred, _ = seg.labels(frames)
    out: dict[str, Any] = {"frames": int(len(frames)),
                           "pixel_accuracy": float((pred == segmentation).mean()),
                           "scene_only_accuracy": float((segmentation == 0).mean())}
    names = ["fingertip"] + [f"object_{j}" for j in range(seg.probe.n_classes - 2)]
    per: dict[str, Any] = {}
    ious, errs, hits, shown = [], [], 0, 0
    for c in range(1, seg.probe.n_classes):
        t, p = segmentation == c, pred == c
        inter, union = np.logical_and(t, p).sum((1, 2)), np.logical_or(t, p).sum((1, 2))
        seen = union > 0
        if not seen.any():
            continue
        iou = inter[seen] / union[seen]
        e = []
        for i in np.flatnonzero(t.sum((1, 2)) >= seg.th.a_vis):
            shown += 1
            gb = seg.label_blobs(np.where(t[i], c, 0).astype(np.uint8), frames[i])
            pb = seg.label_blobs(np.where(p[i], c, 0).astype(np.uint8), frames[i])
            if len(gb) and len(pb):
                hits += 1
                g, q = int(gb.area.argmax()), int(pb.area.argmax())
                e.append(float(np.hypot(gb.cx[g] - pb.cx[q], gb.cy[g] - pb.cy[q])))
        per[names[c - 1]] = {"mask_iou": float(inter[seen].sum() / union[seen].sum()),
                             "mean_frame_iou": float(iou.mean()), "frames": int(seen.sum()),
                             "centroid_error_px": float(np.mean(e)) if e else None}
        ious.append(iou)
        errs += e
    allious = np.concatenate(ious) if ious else np.zeros(0)
    out.update({"mean_object_iou": float(allious.mean()) if len(allious) else None,
                "centroid_error_px_mean": float(np.mean(errs)) if errs else None,
                "centroid_error_px_p95": float(np.percentile(errs, 95)) if errs else None,
                "detected": hits / shown if shown else None, "per_class": per})
    return out
