"""The LeRobot v3.0 layout on disk: paths, feature descriptions, atomic writes, errors.

A genworld dataset directory:

    meta/info.json                          codebase_version "v3.0", fps, features, totals, and our
                                            "genworld" key (the WorldSpec as JSON); written LAST
    meta/stats.json                         mean/std/min/max/count per feature
    meta/tasks.parquet                      task_index, task
    meta/episodes/chunk-000/file-000.parquet  one row per episode: where its rows, frames and samples lie
    data/chunk-000/file-000.parquet         one row per step: every non-video, non-audio key
    videos/<key>/chunk-000/file-000.mp4     many episodes per file, located by timestamps
    audio/<key>/chunk-000/file-000.flac     many episodes per file, located by samples
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from genworld.spec import Modality, WorldSpec

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
AUDIO_PATH = "audio/{audio_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.flac"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
META_COLUMNS = ("index", "episode_index", "frame_index", "timestamp", "task_index")
# The dataset codec: H.264 in RGB (no chroma subsampling) at qp 0, which is lossless, so palette colours
# come back exactly. Any FFmpeg decodes it; for browsers, `genworld data export-video` writes yuv420p.
VIDEO_CODEC, VIDEO_PIX_FMT = "libx264rgb", "rgb24"
VIDEO_OPTIONS = {"qp": "0", "preset": "veryfast"}
AUDIO_SUBTYPE = "PCM_24"  # FLAC is integer PCM: float32 audio comes back within half a 24-bit step


class DatasetError(ValueError):
    """A dataset on disk is missing, corrupt, or does not match what was asked of it."""


def file_location(file_number: int) -> tuple[int, int]:
    """(chunk_index, file_index) of the n-th file of a stream."""
    return divmod(file_number, CHUNKS_SIZE)


def file_number(chunk_index: int, file_index: int) -> int:
    """Inverse of `file_location`."""
    return chunk_index * CHUNKS_SIZE + file_index


def stored_in_table(m: Modality) -> bool:
    """True for modalities stored as Parquet columns (everything but video and audio)."""
    return m.kind not in ("video", "audio")


def feature_of(m: Modality, fps: int) -> dict[str, Any]:
    """The LeRobot `features` entry for a modality."""
    if m.kind == "video":
        h, w, c = m.shape
        return {"dtype": "video", "shape": [h, w, c], "names": ["height", "width", "channels"],
                "info": {"video.height": h, "video.width": w, "video.channels": c, "video.fps": fps,
                         "video.codec": "h264", "video.encoder": VIDEO_CODEC, "video.pix_fmt": VIDEO_PIX_FMT,
                         "video.is_depth_map": False, "has_audio": False}}
    if m.kind == "audio":
        return {"dtype": "audio", "shape": list(m.shape), "names": ["samples"],
                "info": {"audio.sample_rate": int(m.rate), "audio.channels": 1, "audio.codec": "flac",
                         "audio.subtype": AUDIO_SUBTYPE, "audio.samples_per_step": int(m.shape[0])}}
    names = list(m.names) if m.names and not m.discrete and len(m.shape) == 1 else None
    dtype = "bool" if m.dtype == "bool" else m.dtype
    return {"dtype": dtype, "shape": list(m.shape) or [1], "names": names}


def info_json(spec: WorldSpec, *, robot_type: str, total_episodes: int, total_frames: int,
              total_tasks: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole `meta/info.json` of a dataset."""
    features: dict[str, Any] = {m.key: feature_of(m, spec.fps) for m in spec.modalities}
    for k, dt in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                  ("index", "int64"), ("task_index", "int64")):
        features[k] = {"dtype": dt, "shape": [1], "names": None}
    info: dict[str, Any] = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": total_episodes,
        "total_frames": total_frames,
        "total_tasks": total_tasks,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 500,
        "fps": spec.fps,
        "splits": {"train": f"0:{total_episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if spec.of_kind("video") else None,
        "audio_path": AUDIO_PATH if spec.of_kind("audio") else None,
        "features": features,
        "genworld": spec.to_json(),
    }
    if extra:
        info.update(extra)
    return info


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and os.replace (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def tmp_path_for(path: Path) -> Path:
    """A temporary sibling of `path` with the same suffix (encoders pick the format from it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file, or raise DatasetError naming the path and the fix."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing; {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({e}); the file is corrupt, restore it or re-create "
                           "the dataset") from None
