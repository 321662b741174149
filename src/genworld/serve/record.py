"""Recording what a player did: an mp4 with sound, and dataset episodes that can be trained on.

Steps are stored the way `genworld collect` stores them: step t holds the observation o_t the player
saw, the action a_t they chose, and the reward that followed. The model's stream and (when the reality
check ran for the whole recording) the true world's stream are kept apart: `model/` is what was
dreamt, `real/` is real data (with ground truth) that a model can be trained on.
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from genworld.spec import WorldSpec

MP4_SCALE = 4  # nearest-neighbour upscale, so small frames stay crisp after h264
MP4_AUDIO_RATE = 48000


class Recorder:
    """Collects the steps of one recording (call `add` once per world step) and writes them out."""

    def __init__(self, spec: WorldSpec, start: dict[str, np.ndarray], real_start: dict[str, np.ndarray] | None,
                 max_steps: int) -> None:
        """`start` / `real_start`: the current steps `{key: (*shape)}` the recording begins from."""
        self.spec = spec
        self.max_steps = max_steps
        self.started = time.time()
        self._last = {"model": dict(start), "real": dict(real_start) if real_start is not None else None}
        self._steps: dict[str, list[dict[str, np.ndarray]]] = {"model": [], "real": []}

    def __len__(self) -> int:
        return len(self._steps["model"])

    @property
    def full(self) -> bool:
        return len(self) >= self.max_steps

    def add(self, action: np.ndarray, model: dict[str, np.ndarray], real: dict[str, np.ndarray] | None) -> None:
        """Record a_t taken from the last step, whose consequences are `model` (and `real`): o_{t+1}."""
        if self.full:
            return
        for name, nxt in (("model", model), ("real", real)):
            last = self._last[name]
            if last is None or nxt is None:
                self._last["real"] = None  # reality was switched off: its stream is incomplete
                continue
            row = {k: v for k, v in last.items() if not k.startswith("next.")}
            row[self.spec.action.key] = np.asarray(action)
            for k in ("next.reward", "next.done"):
                if k in nxt and k in self.spec:
                    row[k] = np.asarray(nxt[k])
            self._steps[name].append(row)
            self._last[name] = nxt

    def episodes(self) -> dict[str, dict[str, np.ndarray]]:
        """The recorded streams as episodes `{stream: {key: (T, *shape)}}` (`real` only when complete)."""
        out = {}
        for name, rows in self._steps.items():
            if not rows or (name == "real" and (self._last["real"] is None or len(rows) != len(self))):
                continue
            keys = [k for k in rows[0] if k in self.spec and all(k in r for r in rows)]
            out[name] = {k: np.stack([np.asarray(r[k]) for r in rows]) for k in keys}
        return out

    def write(self, out_dir: Path, dataset_root: Path) -> dict[str, Any]:
        """Write `out_dir/play.mp4` and append each stream as an episode to `dataset_root/<stream>`."""
        out_dir.mkdir(parents=True, exist_ok=True)
        eps = self.episodes()
        result: dict[str, Any] = {"steps": len(self), "dir": str(out_dir)}
        if not eps:
            result["note"] = "nothing was recorded (the world did not step while recording)"
            return result
        result["mp4"] = str(write_mp4(out_dir / "play.mp4", self.spec, eps["model"], eps.get("real")))
        result["datasets"] = {}
        for name, ep in eps.items():
            try:
                result["datasets"][name] = write_episode(dataset_root / name, self.spec, ep)
            except Exception as e:  # the mp4 is still worth keeping; say why the dataset is not there
                result.setdefault("notes", []).append(f"{name} dataset not written: {e}")
        return result


_DATASET_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def write_episode(root: Path, spec: WorldSpec, episode: dict[str, np.ndarray]) -> dict[str, Any]:
    """Append one episode to the genworld dataset at `root` (created on first use; its spec is `spec`
    reduced to the recorded keys). Sessions recording at once take turns."""
    try:
        from genworld.data import DatasetWriter
    except ImportError:
        try:
            from genworld.data.writer import DatasetWriter
        except ImportError as e:
            raise RuntimeError("genworld.data.DatasetWriter is not available in this install") from e
    sub = WorldSpec(name=spec.name, fps=spec.fps, description=spec.description, config=spec.config,
                    modalities=tuple(m for m in spec.modalities if m.key in episode))
    with _LOCKS_LOCK:
        lock = _DATASET_LOCKS.setdefault(str(root.resolve()), threading.Lock())
    with lock, DatasetWriter(root, sub) as writer:
        index = writer.add_episode(episode, task="play")
    return {"root": str(root), "episode": int(index)}


def write_mp4(path: Path, spec: WorldSpec, model: dict[str, np.ndarray], real: dict[str, np.ndarray] | None) -> Path:
    """H.264 video of the model's frames (real frames to the right when given) with its sound as AAC."""
    import av
    from scipy.signal import resample_poly

    video = spec.of_kind("video")
    if not video or video[0].key not in model:
        raise ValueError(f"world {spec.name!r}: no video stream to write to {path}")
    frames = model[video[0].key]  # (T, H, W, 3)
    if real is not None and video[0].key in real:
        frames = np.concatenate([frames, np.full_like(frames[:, :, :2], 255), real[video[0].key]], axis=2)
    frames = frames.repeat(MP4_SCALE, axis=1).repeat(MP4_SCALE, axis=2)
    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    audio_mods = [m for m in spec.of_kind("audio") if m.key in model]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.mp4")
    with av.open(str(tmp), mode="w") as box:
        vs = box.add_stream("libx264", rate=spec.fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "18", "preset": "veryfast"}
        as_ = None
        if audio_mods:
            as_ = box.add_stream("aac", rate=MP4_AUDIO_RATE)
            as_.layout = "mono"
        for f in frames:
            box.mux(vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h, :w]), format="rgb24")))
        box.mux(vs.encode(None))
        if as_ is not None:
            m = audio_mods[0]
            g = math.gcd(MP4_AUDIO_RATE, int(m.rate))
            wave = np.nan_to_num(model[m.key].reshape(-1).astype(np.float64))
            wave = np.clip(resample_poly(wave, MP4_AUDIO_RATE // g, int(m.rate) // g), -1, 1).astype(np.float32)
            n = 1024
            for i in range(0, len(wave), n):
                chunk = wave[i : i + n]
                if len(chunk) < n:
                    chunk = np.pad(chunk, (0, n - len(chunk)))
                af = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
                af.sample_rate, af.pts = MP4_AUDIO_RATE, i
                box.mux(as_.encode(af))
            box.mux(as_.encode(None))
    os.replace(tmp, path)
    return path
