"""A small mp4 writer for planning episodes: rows of episodes, columns model | simulator | random."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def tile(columns: list[list[np.ndarray]], scale: int = 3, gap: int = 2) -> list[np.ndarray]:
    """Side-by-side frames `(H, W', 3)` from several episodes' frame lists (shorter ones hold their last frame)."""
    columns = [c for c in columns if c]
    n = max(len(c) for c in columns)
    out = []
    for t in range(n):
        row = []
        for c in columns:
            f = np.repeat(np.repeat(c[min(t, len(c) - 1)], scale, 0), scale, 1)
            row += [f, np.full((f.shape[0], gap, 3), 40, np.uint8)]
        out.append(np.concatenate(row[:-1], 1))
    return out


def write_mp4(path: str | Path, frames: list[np.ndarray], fps: int) -> None:
    """Write uint8 RGB frames `(H, W, 3)` to an H.264 mp4, atomically (temp file, then rename)."""
    import av

    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.mp4")
    h, w = frames[0].shape[:2]
    h2, w2 = h + h % 2, w + w % 2  # yuv420p needs even sides
    with av.open(str(tmp), "w") as box:
        stream = box.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
        for f in frames:
            f = np.pad(f, ((0, h2 - h), (0, w2 - w), (0, 0)))
            for pkt in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                box.mux(pkt)
        for pkt in stream.encode():
            box.mux(pkt)
    os.replace(tmp, path)
