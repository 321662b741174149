"""An episode as an mp4 a person can watch and hear: cameras side by side, touch strips, sound track."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genworld.spec import WorldSpec


def episode_frames(spec: WorldSpec, ep: dict[str, np.ndarray], scale: int = 4) -> np.ndarray:
    """(T, H', W', 3) uint8: every camera upscaled (nearest neighbour) side by side, a touch strip per sensor."""
    from genworld.rollout.dream import touch_strip

    videos = spec.of_kind("video")
    if not videos:
        raise ValueError(f"world {spec.name!r} has no video modality to export")
    cams = [np.repeat(np.repeat(ep[m.key], scale, 1), scale, 2) for m in videos]  # (T, H*s, W*s, 3)
    h = max(c.shape[1] for c in cams)
    cams = [np.pad(c, ((0, 0), (0, h - c.shape[1]), (0, 0), (0, 0))) for c in cams]
    frames = np.concatenate(cams, 2)
    touches = spec.of_kind("touch")
    if touches:
        w = frames.shape[2]
        strips = []
        for m in touches:
            scale_m = float(np.quantile(np.abs(ep[m.key]), 0.99)) or 1.0
            strips.append(np.stack([touch_strip(v, w, scale_m) for v in ep[m.key]]))
        frames = np.concatenate([frames, *strips], 1)
    return frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]


def write_episode_mp4(path: str | Path, spec: WorldSpec, ep: dict[str, np.ndarray], scale: int = 4) -> Path:
    """Write the episode as H.264 yuv420p with the first microphone as an AAC track; returns the path."""
    from genworld.rollout.dream import write_mp4

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mics = spec.of_kind("audio")
    audio = ep[mics[0].key].reshape(-1) if mics else None
    write_mp4(path, episode_frames(spec, ep, scale), spec.fps, audio, int(mics[0].rate) if mics else 0)
    return path
