"""Video (MP4, H.264) and audio (FLAC) files holding many episodes each."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from genworld.data.layout import (
    AUDIO_SUBTYPE,
    VIDEO_CODEC,
    VIDEO_OPTIONS,
    VIDEO_PIX_FMT,
    DatasetError,
    tmp_path_for,
)


def write_video(path: Path, frames: np.ndarray, fps: int) -> None:
    """Encode frames (N, H, W, 3) uint8 losslessly into `path`, atomically; frame n has pts n / fps."""
    from fractions import Fraction

    import av

    n, h, w, _ = frames.shape
    tmp = tmp_path_for(path)
    with av.open(str(tmp), mode="w") as box:
        vs = box.add_stream(VIDEO_CODEC, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, VIDEO_PIX_FMT
        vs.time_base = Fraction(1, fps)
        vs.options = dict(VIDEO_OPTIONS)
        vs.thread_count = 1
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            box.mux(vs.encode(frame))
        box.mux(vs.encode(None))
    os.replace(tmp, path)


def read_video(path: Path, fps: float, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode every frame of `path` as (N, H, W, 3) uint8, in presentation order.

    Frame n is the one whose timestamp rounds to n / fps (as LeRobot locates frames). `size` (H, W)
    resizes on decode (area filter when shrinking).
    """
    import av

    try:
        box = av.open(str(path))
    except FileNotFoundError:
        raise DatasetError(f"{path}: video file missing; restore it or re-create the dataset") from None
    except av.error.FFmpegError as e:
        raise DatasetError(f"{path}: cannot open video ({e}); the file is corrupt, re-create the dataset") from None
    frames: dict[int, np.ndarray] = {}
    try:
        with box:
            stream = box.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in box.decode(stream):
                t = float(frame.pts * stream.time_base) if frame.pts is not None else len(frames) / fps
                if size is not None and (frame.height, frame.width) != size:
                    frame = frame.reformat(width=size[1], height=size[0], interpolation="AREA")
                frames[int(round(t * fps))] = frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, IndexError) as e:
        raise DatasetError(f"{path}: cannot decode video ({e}); the file is corrupt, re-create the dataset") from None
    if not frames:
        raise DatasetError(f"{path}: no video frames; the file is corrupt, re-create the dataset")
    n = max(frames) + 1
    first = next(iter(frames.values()))
    out = np.empty((n, *first.shape), np.uint8)
    last = first
    for i in range(n):  # a dropped frame repeats the previous one instead of shifting every later frame
        last = frames.get(i, last)
        out[i] = last
    return out


def write_audio(path: Path, samples: np.ndarray, rate: int) -> None:
    """Write mono float32 samples (N,) in [-1, 1] as FLAC (24-bit), atomically."""
    import soundfile as sf

    tmp = tmp_path_for(path)
    sf.write(str(tmp), samples.astype(np.float32), int(rate), format="FLAC", subtype=AUDIO_SUBTYPE)
    os.replace(tmp, path)


def read_audio(path: Path, rate: int) -> np.ndarray:
    """Read a FLAC file as float32 (N,); checks its sample rate."""
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise DatasetError(f"{path}: audio file missing; restore it or re-create the dataset") from None
    except (sf.LibsndfileError, RuntimeError) as e:
        raise DatasetError(f"{path}: cannot read audio ({e}); the file is corrupt, re-create the dataset") from None
    if sr != rate:
        raise DatasetError(f"{path}: sample rate {sr}, but meta/info.json says {rate}")
    return data[:, 0]
