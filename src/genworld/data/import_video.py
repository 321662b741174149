"""`genworld data import-video`: videos (MP4, WebM, MKV, MOV, AVI, animated GIF) and folders of images
become a genworld dataset (LeRobot v3 layout) with no action column, ready for `genworld train --actions latent`.

Each source is decoded once with PyAV, resampled in time to `fps` (output frame n shows the source frame on
screen at n / fps), centre-cropped to the target aspect and area-resized to `size`, and cut into episodes of
`clip_steps` steps (a tail of at least half a clip is kept as a shorter episode). The sound track, where a
file has one, is mixed to mono and resampled to `audio_rate` (a whole multiple of fps), so each step owns
`audio_rate / fps` samples; in an import with sound, a file without any gets silence. A file that cannot be
decoded is named and skipped (`strict` stops instead). The sources already imported are listed in
`meta/imported.json`, so re-running the same command resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genworld.data import layout as L
from genworld.data.layout import DatasetError
from genworld.spec import Modality, WorldSpec

VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".gif", ".m4v")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_KEY = "observation.images.main"
AUDIO_KEY = "observation.audio.main"


@dataclass
class ImportConfig:
    paths: tuple[str, ...]
    out: str
    fps: int = 10
    size: tuple[int, int] = (64, 64)
    clip_steps: int = 64
    audio_rate: int | None = None
    """None: 16 kHz rounded to a whole multiple of fps, where a source has sound"""
    strict: bool = False
    progress: bool = True


def parse_size(text: str) -> tuple[int, int]:
    """`HxW` (or one number for a square) -> (H, W)."""
    parts = text.lower().split("x")
    try:
        hw = tuple(int(p) for p in parts)
    except ValueError:
        hw = ()
    if len(hw) == 1:
        hw = (hw[0], hw[0])
    if len(hw) != 2 or min(hw) < 8:
        raise ValueError(f"--size {text!r}: expected HxW with both at least 8, e.g. 64x64")
    return hw  # type: ignore[return-value]


def sources(paths: tuple[str, ...]) -> list[Path]:
    """Every video file named or inside a named folder (sorted), and every folder of images (one source each)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"import-video: {p} does not exist")
        if p.is_file():
            out.append(p)
            continue
        vids = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTS)
        if vids:
            out += vids
        elif any(f.suffix.lower() in IMAGE_EXTS for f in p.iterdir()):
            out.append(p)
        else:
            raise ValueError(f"import-video: folder {p} holds no videos ({', '.join(VIDEO_EXTS)}) and no images "
                             f"({', '.join(IMAGE_EXTS)})")
    return out


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop (H, W, 3) to the aspect of `size`, then area-resize to it."""
    from PIL import Image

    H, W = size
    h, w = img.shape[:2]
    if h * W > w * H:  # too tall
        ch = max(1, round(w * H / W))
        y0 = (h - ch) // 2
        img = img[y0:y0 + ch]
    elif h * W < w * H:
        cw = max(1, round(h * W / H))
        x0 = (w - cw) // 2
        img = img[:, x0:x0 + cw]
    if img.shape[:2] == (H, W):
        return np.ascontiguousarray(img)
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((W, H), Image.Resampling.BOX), np.uint8)


def decode(path: Path, fps: int, size: tuple[int, int], audio_rate: int | None
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """(frames (N, H, W, 3) uint8 at `fps`, mono audio (N * audio_rate / fps,) float32 or None)."""
    if path.is_dir():
        from PIL import Image

        files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_EXTS)
        try:
            frames = np.stack([_fit(np.asarray(Image.open(f).convert("RGB")), size) for f in files])
        except OSError as e:
            raise DatasetError(f"{path}: an image cannot be read ({e})") from None
        return frames, None  # an image folder is one frame per step, at `fps`
    import av

    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: the file is empty")
    try:
        box = av.open(str(path))
    except av.error.FFmpegError as e:
        raise DatasetError(f"{path}: not a video PyAV can open ({e})") from None
    with box:
        if not box.streams.video:
            raise DatasetError(f"{path}: has no video stream")
        vs = box.streams.video[0]
        timed: list[tuple[float, np.ndarray]] = []
        try:
            for i, frame in enumerate(box.decode(vs)):
                t = float(frame.pts * vs.time_base) if frame.pts is not None else i / float(vs.average_rate or fps)
                timed.append((t, _fit(frame.to_ndarray(format="rgb24"), size)))
        except (av.error.FFmpegError, ValueError) as e:
            if not timed:
                raise DatasetError(f"{path}: cannot decode video ({e})") from None
    if not timed:
        raise DatasetError(f"{path}: no video frames")
    timed.sort(key=lambda x: x[0])
    t0 = timed[0][0]
    times = np.array([t - t0 for t, _ in timed])
    duration = times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1.0 / fps)
    n = max(1, int(np.floor(duration * fps + 1e-6)))
    idx = np.searchsorted(times, np.arange(n) / fps + 1e-9, side="right") - 1  # the frame on screen at n / fps
    frames = np.stack([timed[max(i, 0)][1] for i in idx])
    audio = _decode_audio(path, audio_rate, t0) if audio_rate else None
    if audio is not None:
        spp = audio_rate // fps  # type: ignore[operator]
        want = n * spp
        audio = np.pad(audio[:want], (0, max(0, want - len(audio))))
    return frames, audio


def _decode_audio(path: Path, rate: int, t0: float) -> np.ndarray | None:
    import av

    with av.open(str(path)) as box:
        if not box.streams.audio:
            return None
        res = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = []
        first = None
        for frame in box.decode(box.streams.audio[0]):
            if first is None and frame.pts is not None:
                first = float(frame.pts * frame.time_base)
            for out in res.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in res.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    if not chunks:
        return None
    audio = np.concatenate(chunks).astype(np.float32)
    lead = int(round(((first or t0) - t0) * rate))  # sound that starts after the first frame
    if lead > 0:
        audio = np.concatenate([np.zeros(lead, np.float32), audio])
    return np.clip(audio, -1.0, 1.0)


def has_audio(path: Path) -> bool:
    if path.is_dir():
        return False
    import av

    try:
        with av.open(str(path)) as box:
            return bool(box.streams.audio)
    except (av.error.FFmpegError, OSError):
        return False


def video_spec(name: str, fps: int, size: tuple[int, int], audio_rate: int | None) -> WorldSpec:
    mods = [Modality(VIDEO_KEY, "video", (size[0], size[1], 3), fps, dtype="uint8", description="imported video")]
    if audio_rate:
        mods.append(Modality(AUDIO_KEY, "audio", (audio_rate // fps,), audio_rate, low=-1.0, high=1.0,
                             description="the video's sound track, mono"))
    return WorldSpec(name=name, fps=fps, modalities=tuple(mods),
                     config={"source": "import-video", "image_size": size[0]})


def import_videos(cfg: ImportConfig, log: Callable[[str], None] = print) -> dict:
    """Import every source into `cfg.out`; returns a summary (episodes, steps, imported, skipped)."""
    from tqdm import tqdm

    from genworld.data.writer import DatasetWriter

    if cfg.fps < 1:
        raise ValueError(f"--fps must be >= 1, got {cfg.fps}")
    if cfg.clip_steps < 2:
        raise ValueError(f"--clip-steps must be >= 2, got {cfg.clip_steps}")
    srcs = sources(cfg.paths)
    if not srcs:
        raise ValueError("import-video: no sources given")
    out = Path(cfg.out)
    done_path = out / "meta" / "imported.json"
    done: dict[str, int] = json.loads(done_path.read_text()) if done_path.exists() else {}
    rate = cfg.audio_rate
    if rate is None and any(has_audio(s) for s in srcs):
        rate = cfg.fps * max(1, round(16000 / cfg.fps))
    if rate is not None and rate % cfg.fps:
        raise ValueError(f"--audio-rate {rate} must be a whole multiple of --fps {cfg.fps}")
    spec = video_spec(f"video:{out.name}", cfg.fps, cfg.size, rate)
    writer = DatasetWriter(out, spec, episodes_per_file=8, robot_type="video")
    skipped: list[str] = []
    new_eps = steps = 0
    todo = [s for s in srcs if str(s.resolve()) not in done]
    bar = tqdm(todo, desc="import-video", unit="file", disable=not cfg.progress, dynamic_ncols=True)
    try:
        for src in bar:
            try:
                frames, audio = decode(src, cfg.fps, cfg.size, rate)
            except DatasetError as e:
                if cfg.strict:
                    raise
                skipped.append(str(e))  # names the file
                log(f"skipped {e}")
                continue
            if len(frames) < 2:
                msg = f"{src}: {len(frames)} frame at {cfg.fps} fps, too short for one step of dynamics"
                if cfg.strict:
                    raise DatasetError(msg)
                skipped.append(msg)
                log(f"skipped {msg}")
                continue
            if rate and audio is None:
                audio = np.zeros(len(frames) * (rate // cfg.fps), np.float32)
            n = 0
            for s0 in range(0, len(frames), cfg.clip_steps):
                T = min(cfg.clip_steps, len(frames) - s0)
                if T < max(2, cfg.clip_steps // 2) and s0 > 0:
                    break  # a short tail: not worth an episode
                ep = {VIDEO_KEY: frames[s0:s0 + T]}
                if rate:
                    spp = rate // cfg.fps
                    ep[AUDIO_KEY] = audio[s0 * spp:(s0 + T) * spp].reshape(T, spp)  # type: ignore[index]
                writer.add_episode(ep, task=src.name)
                n += 1
                steps += T
            writer.flush()  # committed: only now is the source marked as imported
            new_eps += n
            done[str(src.resolve())] = n
            L.atomic_write_json(done_path, done)
    finally:
        writer.close()
    return {"out": str(out), "episodes": writer.num_episodes, "new_episodes": new_eps, "new_steps": steps,
            "imported": len(todo) - len(skipped), "already": len(srcs) - len(todo), "skipped": skipped,
            "audio_rate": rate}
