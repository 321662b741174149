"""Frames from a ground-truth table: flat palette discs on a background, the occluder drawn on top.

Pixel (row r, column c) covers [c, c + 1) x [r, r + 1) of the arena and takes the colour of the disc
that contains its centre (c + 0.5, r + 0.5), so the pixel holding a disc's centre (x, y) is
`frame[int(y), int(x)]` and has that disc's palette colour. No anti-aliasing: every pixel is exactly a
palette or background colour, which keeps palette segmentation exact.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

# gt.objects columns used here (see config.GT_COLUMNS)
X, Y, RADIUS, COLOUR, EXISTS = 0, 1, 4, 6, 8


@functools.cache
def _centres(size: int) -> np.ndarray:
    """x (or y) of the pixel centres: (size,) float64, read-only."""
    c = np.arange(size) + 0.5
    c.flags.writeable = False
    return c


def render_objects(gt_objects: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """Render a `(K, 10)` gt.objects table with `spec.config` (palette, background, occluder, image_size).

    Returns an `(H, W, 3)` uint8 frame, identical to the world's own frame for the same state.
    """
    return Painter(config).paint(gt_objects)


class Painter:
    """`render_objects` with the config read once (the world keeps one; evaluation may too)."""

    def __init__(self, config: dict[str, Any]) -> None:
        try:
            self.size = int(config["image_size"])
            self.palette = np.asarray(config["palette"], np.uint8)  # (P, 3)
            self.background = np.asarray(config["background"], np.uint8)  # (3,)
            occluder = config.get("occluder")
            self.occluder_colour = self.palette[int(config.get("occluder_colour_id", len(self.palette) - 1))]
        except KeyError as e:
            raise KeyError(f"render_objects: config lacks {e}; pass the world's spec.config") from None
        self.occluder = None if occluder is None else tuple(int(v) for v in occluder)

    def paint(self, gt_objects: np.ndarray) -> np.ndarray:
        """The frame `(S, S, 3)` uint8 of a `(K, 10)` gt.objects table."""
        table = np.asarray(gt_objects, np.float64)
        if table.ndim != 2 or table.shape[1] < EXISTS + 1:
            raise ValueError(f"render_objects: gt_objects has shape {table.shape}, expected (K, 10) rows of "
                             "x, y, vx, vy, radius, mass, colour_id, visible, exists, material_id")
        size = self.size
        rows = table[table[:, EXISTS] > 0.5]
        xyr = rows[:, [X, Y, RADIUS]]
        if not np.isfinite(xyr).all():
            raise ValueError(f"render_objects: gt_objects holds NaN or inf in x, y or radius: {rows.tolist()}")
        # Label image (0 background, 1 + row): a later row is drawn over an earlier one.
        label = np.zeros((size, size), np.uint8)  # (S, S)
        centres = _centres(size)
        dx2 = (centres[None, :] - xyr[:, :1]) ** 2  # (n, S) squared distance of each column centre
        dy2 = (centres[None, :] - xyr[:, 1:2]) ** 2  # (n, S) ... and of each row centre
        for k, (x, y, r) in enumerate(xyr.tolist()):
            c0, c1 = max(int(x - r), 0), min(int(x + r) + 1, size)
            r0, r1 = max(int(y - r), 0), min(int(y + r) + 1, size)
            if c0 < c1 and r0 < r1:
                inside = dy2[k, r0:r1, None] + dx2[k, None, c0:c1] <= r * r  # (h, w)
                label[r0:r1, c0:c1][inside] = k + 1
        lut = np.empty((len(rows) + 1, 3), np.uint8)  # colour of each label
        lut[0] = self.background
        lut[1:] = self.palette[rows[:, COLOUR].astype(np.int64)]
        frame = lut.take(label, axis=0)  # (S, S, 3); take() is several times faster than lut[label]
        if self.occluder is not None:
            x0, y0, x1, y1 = self.occluder
            frame[y0:y1, x0:x1] = self.occluder_colour
        return frame


def visible(gt_objects: np.ndarray, occluder: tuple[int, int, int, int] | None) -> np.ndarray:
    """(K,) bool: the disc exists and is not entirely under the occluder rectangle."""
    t = np.asarray(gt_objects, np.float64)
    exists = t[:, EXISTS] > 0.5
    if occluder is None:
        return exists
    x0, y0, x1, y1 = occluder
    x, y, r = t[:, X], t[:, Y], t[:, RADIUS]
    hidden = (x - r >= x0) & (x + r <= x1) & (y - r >= y0) & (y + r <= y1)
    return exists & ~hidden
