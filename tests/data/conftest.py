"""Factories for tiny datasets: a synthetic spec with every modality, and a LeRobot v2.1 directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genworld.spec import Modality, WorldSpec

FPS = 8


def tiny_spec() -> WorldSpec:
    """Every kind of modality, small."""
    return WorldSpec(
        name="tiny", fps=FPS, description="a tiny synthetic world for dataset tests",
        modalities=(
            Modality("observation.images.cam", "video", (16, 16, 3), FPS, "uint8", low=0, high=255),
            Modality("observation.audio.mic", "audio", (100,), 100 * FPS, "float32", low=-1, high=1),
            Modality("observation.tactile.pad", "touch", (2, 3), FPS),
            Modality("observation.state", "proprio", (4,), FPS, names=("x", "y", "vx", "vy")),
            Modality("gt.objects", "gt", (3, 10), FPS),
            Modality("action", "action", (2,), FPS, low=-1, high=1),
            Modality("next.reward", "reward", (), FPS),
            Modality("next.done", "done", (), FPS, "bool"),
        ),
    )


def tiny_episode(spec: WorldSpec, length: int, seed: int) -> dict[str, np.ndarray]:
    """Random but structured data: flat-coloured frames with a moving square (codec-friendly)."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((length, 16, 16, 3), np.uint8)
    frames[:] = rng.integers(0, 256, 3, dtype=np.uint8)
    for t in range(length):
        x = t % 12
        frames[t, 4:8, x: x + 4] = (255, 40, 40)
    ep = {"observation.images.cam": frames,
          "observation.audio.mic": (0.5 * np.sin(np.arange(length * 100) * 0.05 + seed)).reshape(length, 100)
          .astype(np.float32),
          "observation.tactile.pad": rng.random((length, 2, 3)).astype(np.float32),
          "observation.state": rng.normal(size=(length, 4)).astype(np.float32),
          "gt.objects": rng.normal(size=(length, 3, 10)).astype(np.float32),
          "action": rng.uniform(-1, 1, (length, 2)).astype(np.float32),
          "next.reward": rng.normal(size=length).astype(np.float32),
          "next.done": np.zeros(length, bool)}
    ep["next.done"][-1] = True
    return ep


@pytest.fixture
def spec() -> WorldSpec:
    return tiny_spec()


def write_v21(root: Path, episodes: list[dict[str, np.ndarray]], fps: int = 10) -> None:
    """A LeRobot v2.1 dataset (one parquet and one mp4 per episode), as LeRobot 0.3 wrote them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from genworld.data.media import write_video

    info = {
        "codebase_version": "v2.1", "robot_type": "koch", "fps": fps,
        "total_episodes": len(episodes), "total_frames": sum(len(e["action"]) for e in episodes),
        "total_tasks": 1, "chunks_size": 1000,
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": {
            "observation.images.laptop": {"dtype": "video", "shape": [16, 16, 3],
                                          "names": ["height", "width", "channels"]},
            "observation.state": {"dtype": "float32", "shape": [3], "names": {"motors": ["a", "b", "c"]}},
            "action": {"dtype": "float32", "shape": [3], "names": {"motors": ["a", "b", "c"]}},
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
            "frame_index": {"dtype": "int64", "shape": [1], "names": None},
            "episode_index": {"dtype": "int64", "shape": [1], "names": None},
            "index": {"dtype": "int64", "shape": [1], "names": None},
            "task_index": {"dtype": "int64", "shape": [1], "names": None},
        },
    }
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    (root / "meta" / "tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": "grasp"}) + "\n")
    lines, index = [], 0
    for e, ep in enumerate(episodes):
        n = len(ep["action"])
        lines.append(json.dumps({"episode_index": e, "tasks": ["grasp"], "length": n}))
        table = pa.table({
            "observation.state": pa.array(list(ep["observation.state"]), pa.list_(pa.float32())),
            "action": pa.array(list(ep["action"]), pa.list_(pa.float32())),
            "timestamp": pa.array(np.arange(n, dtype=np.float32) / fps),
            "frame_index": pa.array(np.arange(n)), "episode_index": pa.array(np.full(n, e)),
            "index": pa.array(np.arange(index, index + n)), "task_index": pa.array(np.zeros(n, np.int64)),
        })
        index += n
        p = root / f"data/chunk-000/episode_{e:06d}.parquet"
        p.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, p)
        v = root / f"videos/chunk-000/observation.images.laptop/episode_{e:06d}.mp4"
        v.parent.mkdir(parents=True, exist_ok=True)
        write_video(v, ep["observation.images.laptop"], fps)
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture
def make_episode():
    """tiny_episode(spec, length, seed)."""
    return tiny_episode


@pytest.fixture
def make_v21():
    """write_v21(root, episodes, fps)."""
    return write_v21
