"""Object slots from a learned palette: a state of the world's objects kept outside the image codes.

The image codes hold a disc's position only as well as the codes of a 4x4 patch can say it, and a dynamics
trained for minutes places the discs of its rollouts a pixel or more off, which is too far for a contact.
So, for worlds drawn in flat colours (bounce, Atari, most 2-D games), each frame of the first camera is also
read as K slots, one per colour of a palette learned from the training frames (the most common colours,
the most common of all being the background): a slot holds whether that colour is in the frame, the
centroid of its pixels and the square root of their area. The dynamics sees them as one token per step and
predicts the next step's slots as constant velocity plus a change (`WorldModel.heads`); rollouts feed the predicted state back as
it is, never re-read from a predicted frame, so a position stays as precise as the dynamics makes it.

Slot tokens, shape (..., K, 4): (present 0/1, x, y, size) with x (column) and y (row) in [-1, 1] over the
frame and size sqrt(pixels) / 8; an absent slot is all zeros.
"""

from __future__ import annotations

import numpy as np
import torch

OBJECTS = "#objects"  # token key of the slots (not a dataset key: '#' never occurs in those)
FEATURES = 4  # present, x, y, size
SIZE_UNIT = 8.0  # size = sqrt(pixel count) / SIZE_UNIT
PALETTE_TOLERANCE = 24  # a pixel belongs to a palette colour when every channel is within this of it
MIN_COVERAGE = 0.98  # a palette that leaves more of the frames' pixels unexplained gives no slots


def learn_palette(frames: np.ndarray, k: int, min_share: float = 2e-4,
                  tol: int = PALETTE_TOLERANCE) -> tuple[list[list[int]], list[int]]:
    """Frames (N, H, W, 3) uint8 -> (up to k object colours, the background colour), by pixel count.

    The most common colour is the background. A colour is kept when at least `min_share` of the pixels have
    it exactly and it differs from every colour kept before by more than `tol` in some channel (so the
    blended edge colours of a smoothly drawn world do not take slots). `coverage` says whether the palette
    describes the frames at all."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"learn_palette: expected uint8 frames (N, H, W, 3), got {frames.dtype} {frames.shape}")
    px = frames.reshape(-1, 3).astype(np.int64)
    packed = (px[:, 0] << 16) | (px[:, 1] << 8) | px[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    cols = np.stack([(values >> 16) & 255, (values >> 8) & 255, values & 255], -1)[order]
    shares = counts[order] / max(len(px), 1)
    if not len(cols):
        raise ValueError("learn_palette: no frames to learn a palette from")
    kept = [cols[0]]  # the background, however rare (a photograph has no colour of its own)
    for c, share in zip(cols[1:], shares[1:]):
        if share < min_share or len(kept) > k:
            break
        if all(np.abs(c - o).max() > tol for o in kept):
            kept.append(c)
    return [c.tolist() for c in kept[1: k + 1]], kept[0].tolist()


def coverage(frames: np.ndarray, palette: list[list[int]], tol: int = PALETTE_TOLERANCE) -> float:
    """The share of the pixels of frames (N, H, W, 3) within `tol` of some palette colour (every channel)."""
    px = frames.reshape(-1, 1, 3).astype(np.int16)
    near = (np.abs(px - np.asarray(palette, np.int16)[None]).max(-1) <= tol).any(-1)
    return float(near.mean()) if near.size else 0.0


_TABLES: dict[tuple, torch.Tensor] = {}  # label tables by (palette, count, tol, device): one per run in practice


def _label_table(palette: torch.Tensor, count: int, tol: int) -> torch.Tensor:
    """(32768,) long: for each colour quantised to 5 bits per channel, the nearest palette row (0 is the
    background) within `tol` in every channel, or -1; rows past `count` object colours are never chosen."""
    key = (tuple(palette[: count + 1].flatten().tolist()), count, tol, str(palette.device))
    if key not in _TABLES:
        if len(_TABLES) > 16:
            _TABLES.clear()
        _TABLES[key] = _build_table(palette, count, tol)
    return _TABLES[key]


def _build_table(palette: torch.Tensor, count: int, tol: int) -> torch.Tensor:
    q = torch.arange(32768, device=palette.device)
    centre = torch.stack([q >> 10, (q >> 5) & 31, q & 31], -1).float() * 8 + 3.5  # (32768, 3)
    pal = palette[: count + 1].float()
    best, nearest = (centre[:, None, :] - pal[None]).abs().amax(-1).min(-1)
    return torch.where(best <= tol + 4, nearest, torch.full_like(nearest, -1))


@torch.no_grad()
def read_slots(frames: torch.Tensor, palette: torch.Tensor, count: int, tol: int = PALETTE_TOLERANCE,
               chunk: int = 1024) -> torch.Tensor:
    """Frames (..., H, W, 3) uint8 -> slots (..., K, 4) for the palette (K + 1, 3) whose row 0 is the background;
    only the first `count` object colours are real (the rest read absent). Each pixel goes to its nearest
    palette colour if that is within about `tol` in every channel (colours are looked up quantised to 5 bits
    per channel, so the tolerance is `tol` give or take 4)."""
    lead, (H, W) = frames.shape[:-3], frames.shape[-3:-1]
    K = palette.shape[0] - 1
    flat = frames.reshape(-1, H * W, 3)
    if count == 0 or flat.shape[0] == 0:  # no slots (a world the palette does not explain), or no frames
        return torch.zeros((*lead, K, FEATURES), device=frames.device)
    table = _label_table(palette.to(flat.device), count, tol)
    ys, xs = torch.meshgrid((torch.arange(H, device=flat.device) + 0.5) / H * 2 - 1,
                            (torch.arange(W, device=flat.device) + 0.5) / W * 2 - 1, indexing="ij")
    bg = palette[0].to(flat.device, torch.uint8)
    out = []
    for i in range(0, flat.shape[0], chunk):
        f = flat[i: i + chunk]
        n = f.shape[0]
        # Only pixels that are not exactly the background are looked up (most of a frame is background).
        fi, pi = ((f[..., 0] != bg[0]) | (f[..., 1] != bg[1]) | (f[..., 2] != bg[2])).nonzero(as_tuple=True)
        c = f[fi, pi].int() >> 3
        label = table[((c[:, 0] << 10) | (c[:, 1] << 5) | c[:, 2]).long()]  # 0: background, -1: no palette colour
        keep = label > 0
        fi, pi = fi[keep], pi[keep]
        idx = fi * K + label[keep] - 1
        cnt = torch.bincount(idx, minlength=n * K).view(n, K).float()
        sx = torch.bincount(idx, weights=xs.reshape(-1)[pi], minlength=n * K).view(n, K)
        sy = torch.bincount(idx, weights=ys.reshape(-1)[pi], minlength=n * K).view(n, K)
        centre = torch.stack([sx, sy], -1).float() / cnt.clamp(min=1)[..., None]  # (n, K, 2)
        present = (cnt > 0).float()
        out.append(torch.cat([present[..., None], centre * present[..., None], (cnt.sqrt() / SIZE_UNIT)[..., None]], -1))
    return torch.cat(out).reshape(*lead, K, FEATURES)
