"""Dream videos: ground truth and the model side by side, the model's sound as the audio track, and a
touch strip under the frames. Used by `genworld dream`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from genworld.spec import WorldSpec

SCALE = 4  # nearest-neighbour upscaling of frames
STRIP = 24  # touch strip height in pixels


def open_loop_rollout(session: Any, episode: dict[str, np.ndarray], context: int, horizon: int
                      ) -> dict[str, np.ndarray]:
    """Reset on steps [0, C) of one episode and step H times with its true actions -> {key: (C+H, ...)}.

    Context steps are copied from the episode; the rest are the model's predictions.
    """
    akey = session.spec.action.key
    T = len(episode[akey])
    if context < 1 or context + horizon > T:
        raise ValueError(f"context {context} + horizon {horizon} needs {context + horizon} steps; the episode has {T}")
    session.reset({k: v[None, :context] for k, v in episode.items()})
    preds = [session.step(episode[akey][None, context - 1 + h]) for h in range(horizon)]
    return {k: np.concatenate([episode[k][:context], np.stack([p[k][0] for p in preds])])
            for k in session.obs_keys}


def touch_strip(values: np.ndarray, width: int, scale: float) -> np.ndarray:
    """A (STRIP, width, 3) uint8 strip: one cell per taxel, brighter with more force."""
    v = np.clip(np.abs(values.reshape(-1)) / max(scale, 1e-6), 0, 1)
    cells = np.repeat(v, int(np.ceil(width / len(v))))[:width]
    strip = np.zeros((STRIP, width, 3), np.uint8)
    strip[..., 0] = (cells * 255).astype(np.uint8)
    strip[..., 1] = (cells * 160).astype(np.uint8)
    strip[2:-2, np.arange(0, width, max(width // len(v), 1))] = 60  # taxel separators
    return strip


def compose_frames(spec: WorldSpec, truth: dict[str, np.ndarray], model: dict[str, np.ndarray], context: int
                   ) -> np.ndarray:
    """(T, H', W', 3) uint8 frames: truth | model, cameras stacked, touch strips under each side."""
    from PIL import Image, ImageDraw

    videos = spec.of_kind("video")
    if not videos:
        raise ValueError(f"world {spec.name!r} has no video modality to show")
    touches = spec.of_kind("touch")
    scales = {m.key: float(np.quantile(np.abs(truth[m.key]), 0.99)) or 1.0 for m in touches}
    out = []
    for t in range(len(truth[videos[0].key])):
        sides = []
        for src in (truth, model):
            rows = [np.kron(src[m.key][t], np.ones((SCALE, SCALE, 1), np.uint8)) for m in videos]
            w = max(r.shape[1] for r in rows)
            rows = [np.pad(r, ((0, 0), (0, w - r.shape[1]), (0, 0))) for r in rows]
            rows += [touch_strip(src[m.key][t], w, scales[m.key]) for m in touches]
            sides.append(np.concatenate(rows, 0))
        sep = np.full((sides[0].shape[0], 4, 3), 255, np.uint8)
        img = Image.fromarray(np.concatenate([sides[0], sep, sides[1]], 1))
        draw = ImageDraw.Draw(img)
        draw.text((4, 2), "ground truth", fill=(255, 255, 255))
        label = "context (real)" if t < context else f"model  h={t - context + 1}"
        draw.text((sides[0].shape[1] + 8, 2), label, fill=(255, 255, 0) if t >= context else (200, 200, 200))
        arr = np.asarray(img)
        out.append(arr[: arr.shape[0] // 2 * 2, : arr.shape[1] // 2 * 2])
    return np.stack(out)


AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def to_aac_rate(audio: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """Resample mono audio to the nearest AAC sample rate at or above `rate` (unchanged if it is one)."""
    if rate in AAC_RATES:
        return audio, rate
    from math import gcd

    from scipy.signal import resample_poly

    target = next((r for r in AAC_RATES if r >= rate), AAC_RATES[-1])
    g = gcd(target, rate)
    return resample_poly(audio, target // g, rate // g).astype(np.float32), target


def write_mp4(path: Path, frames: np.ndarray, fps: int, audio: np.ndarray | None = None, sample_rate: int = 0) -> None:
    """H.264 video (T, H, W, 3) uint8 with an optional mono AAC track, written atomically."""
    import av

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.mp4")
    with av.open(str(tmp), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        as_ = None
        if audio is not None and sample_rate:
            audio, sample_rate = to_aac_rate(audio, sample_rate)
            as_ = c.add_stream("aac", rate=sample_rate)
            as_.layout = "mono"
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if as_ is not None:
            wav = np.clip(audio, -1, 1).astype(np.float32)
            n = 1024
            for i in range(0, len(wav), n):
                chunk = np.zeros(n, np.float32)
                chunk[: len(wav[i: i + n])] = wav[i: i + n]
                fr = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
                fr.sample_rate, fr.pts = sample_rate, i
                for p in as_.encode(fr):
                    c.mux(p)
            for p in as_.encode():
                c.mux(p)
    tmp.replace(path)


def dream_video(session: Any, episode: dict[str, np.ndarray], context: int, horizon: int, out: Path) -> dict[str, Any]:
    """Roll the model open loop on one episode and write the side-by-side mp4; returns a summary."""
    spec = session.spec
    model = open_loop_rollout(session, episode, context, horizon)
    truth = {k: episode[k][: context + horizon] for k in model}
    frames = compose_frames(spec, truth, model, context)
    audios = spec.of_kind("audio")
    audio = model[audios[0].key].reshape(-1) if audios else None
    write_mp4(out, frames, spec.fps, audio, int(audios[0].rate) if audios else 0)
    res: dict[str, Any] = {"out": str(out), "frames": len(frames), "context": context, "horizon": horizon}
    for m in spec.of_kind("video"):
        err = ((model[m.key][context:].astype(np.float32) - truth[m.key][context:]) / 255) ** 2
        res[f"{m.key}/psnr_mean"] = float(np.mean(-10 * np.log10(err.reshape(horizon, -1).mean(1) + 1e-10)))
    return res
