"""Factories for tiny datasets: a synthetic spec with every modality (the LeRobot v2.1 writer is in tests/conftest.py)."""

from __future__ import annotations

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


@pytest.fixture
def make_episode():
    """tiny_episode(spec, length, seed)."""
    return tiny_episode
