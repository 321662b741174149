"""Shared test set-up: markers that skip with a reason where a machine lacks GL, a GPU or a browser."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


@functools.cache
def _gl_problem() -> str | None:
    code = "import mujoco; m = mujoco.MjModel.from_xml_string('<mujoco/>'); r = mujoco.Renderer(m, 8, 8); r.render()"
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "MUJOCO_GL": "egl"})
    except Exception as e:  # pragma: no cover - depends on the machine
        return f"could not probe EGL: {e}"
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        return f"MuJoCo cannot render with MUJOCO_GL=egl ({last}); apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri"
    return None


@functools.cache
def _browser_problem() -> str | None:
    if shutil.which("chromium") is None and not os.path.exists("/usr/bin/chromium"):
        return "Debian's chromium is not installed (apt-get install -y chromium; .ci/run does this)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (make setup installs it)"
    return None


@functools.cache
def _gpu_problem() -> str | None:
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU on this machine"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    checks = {"gl": _gl_problem, "browser": _browser_problem, "gpu": _gpu_problem}
    for item in items:
        for marker, check in checks.items():
            if marker in item.keywords:
                reason = check()
                if reason:
                    item.add_marker(pytest.mark.skip(reason=reason))


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
def make_v21():
    """write_v21(root, episodes, fps): a LeRobot v2.1 directory, for the data and CLI tests."""
    return write_v21
