"""A tiny synthetic multimodal world, in memory, for tests and smoke runs without a simulator.

A square moves in a 64x64 arena, pushed by a 2-D action; it clicks (audio) and presses a touch
taxel when it hits a wall. Every modality kind the model supports appears (reward and done too).
"""

from __future__ import annotations

import numpy as np

from genworld.spec import Modality, WorldSpec


def synthetic_spec(size: int = 64, samples: int = 400, discrete_action: bool = False) -> WorldSpec:
    """The spec of the synthetic world (fps 16, audio `samples` per step)."""
    act = (Modality("action", "action", (), 16, dtype="int64", discrete=True, names=("l", "r", "u", "d", "stay"))
           if discrete_action else Modality("action", "action", (2,), 16, low=-1, high=1))
    return WorldSpec("synthetic", 16, (
        Modality("observation.images.top", "video", (size, size, 3), 16, dtype="uint8"),
        Modality("observation.audio.mic", "audio", (samples,), 16 * samples),
        Modality("observation.tactile.ring", "touch", (4,), 16),
        Modality("observation.state", "proprio", (4,), 16),
        act,
        Modality("next.reward", "reward", (), 16),
        Modality("next.done", "done", (), 16, dtype="bool"),
        Modality("gt.pos", "gt", (2,), 16),
    ))


def synthetic_episode(spec: WorldSpec, steps: int, seed: int) -> dict[str, np.ndarray]:
    """One episode {key: (T, *shape)} of the synthetic world."""
    rng = np.random.default_rng(seed)
    size = spec["observation.images.top"].shape[0]
    samples = spec["observation.audio.mic"].shape[0]
    discrete = spec.action.discrete
    pos = rng.uniform(8, size - 8, 2)
    vel = rng.uniform(-2, 2, 2)
    ep: dict[str, list[np.ndarray]] = {k: [] for k in spec.keys()}
    hit = np.zeros(4, np.float32)
    audio = np.zeros(samples, np.float32)
    for t in range(steps):
        img = np.full((size, size, 3), 30, np.uint8)
        x, y = int(pos[0]), int(pos[1])
        img[max(y - 3, 0): y + 3, max(x - 3, 0): x + 3] = (240, 80, 40)
        ep["observation.images.top"].append(img)
        ep["observation.audio.mic"].append(audio)
        ep["observation.tactile.ring"].append(hit)
        ep["observation.state"].append(np.concatenate([pos, vel]).astype(np.float32))
        ep["gt.pos"].append(pos.astype(np.float32))
        if discrete:
            a = np.array(rng.integers(0, 5))
            force = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]], np.float32)[int(a)]
        else:
            a = rng.uniform(-1, 1, 2).astype(np.float32)
            force = a
        ep["action"].append(a)
        vel = np.clip(vel + 0.5 * force, -3, 3)
        pos = pos + vel
        hit = np.zeros(4, np.float32)
        for d in range(2):
            if pos[d] < 4 or pos[d] > size - 4:
                hit[2 * d + int(pos[d] > size / 2)] = abs(vel[d])
                vel[d] = -vel[d]
                pos[d] = np.clip(pos[d], 4, size - 4)
        tt = np.arange(samples) / samples
        audio = (hit.sum() * 0.2 * np.sin(2 * np.pi * 40 * tt) * np.exp(-tt * 8)).astype(np.float32)
        ep["next.reward"].append(np.float32(-np.abs(pos - size / 2).sum() / size))
        ep["next.done"].append(np.bool_(t == steps - 1))
    return {k: np.stack(v) for k, v in ep.items()}
