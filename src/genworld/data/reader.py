"""`Dataset`: read a genworld (LeRobot v3.0) or LeRobot v2.1 dataset, fast.

Tabular columns are loaded into numpy once. Video is decoded ONCE into a memory-mapped uint8 cache
(`<root>/.cache/<key>-<H>x<W>.u8`, rows indexed by the global frame index), audio into a float32 cache
(`<root>/.cache/<key>.f32`); each cache has a JSON index holding a fingerprint of the media files it was
built from, so a changed dataset rebuilds it. Caches are written atomically; a read-only dataset keeps
them in memory instead.

    ds = Dataset("data/bounce")
    ds.spec, ds.fps, ds.num_episodes, ds.episode_length(0)
    ep = ds.episode(0)                        # {key: (T, *shape)}
    win = ds.window(0, start=10, length=20)   # {key: (20, *shape)}
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from genworld.data import layout as L
from genworld.data.layout import DatasetError
from genworld.spec import Modality, WorldSpec

META = ("index", "episode_index", "frame_index", "timestamp", "task_index")


def _read_parquet(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing; restore it or re-create the dataset") from None
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{path}: not a readable Parquet file ({e}); the file is corrupt, "
                           "re-create the dataset") from None


def read_episode_table(root: Path, total_episodes: int) -> dict[str, np.ndarray]:
    """The committed rows of meta/episodes/*/*.parquet, sorted by episode index: {column: (E,)}."""
    import pyarrow as pa

    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files and total_episodes:
        raise DatasetError(f"{root}/meta/episodes: no episode files, but meta/info.json counts "
                           f"{total_episodes} episodes; the dataset is damaged, re-create it")
    tables = [_read_parquet(f) for f in files]
    table = pa.concat_tables(tables, promote_options="permissive") if tables else None
    cols: dict[str, np.ndarray] = {}
    if table is not None:
        for name in table.column_names:
            if name == "tasks":
                cols[name] = np.asarray([t[0] if t else "" for t in table.column(name).to_pylist()], object)
            else:
                cols[name] = table.column(name).to_numpy()
    if total_episodes == 0:
        return cols
    order = np.argsort(cols["episode_index"], kind="stable")
    cols = {k: v[order] for k, v in cols.items()}
    keep = cols["episode_index"] < total_episodes
    cols = {k: v[keep] for k, v in cols.items()}
    if len(cols["episode_index"]) != total_episodes or (cols["episode_index"] != np.arange(total_episodes)).any():
        raise DatasetError(f"{root}/meta/episodes: holds {len(cols['episode_index'])} of the {total_episodes} "
                           "episodes meta/info.json counts; the dataset is damaged, re-create it")
    return cols


def read_tasks(root: Path) -> list[str]:
    """Task strings in task_index order (meta/tasks.parquet, or v2.1 meta/tasks.jsonl)."""
    p = root / "meta" / "tasks.parquet"
    if p.exists():
        t = _read_parquet(p).to_pydict()
        return [s for _, s in sorted(zip(t["task_index"], t["task"]))]
    p = root / "meta" / "tasks.jsonl"
    if p.exists():
        rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
        return [r["task"] for r in sorted(rows, key=lambda r: r["task_index"])]
    return []


def _column(table: Any, key: str, shape: tuple[int, ...], dtype: str, where: str) -> np.ndarray:
    """A Parquet column as (N, *shape) numpy."""
    import pyarrow as pa

    col = table.column(key).combine_chunks()
    n = len(col)
    if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) or pa.types.is_large_list(col.type):
        flat = col.flatten().to_numpy(zero_copy_only=False)
    else:
        flat = col.to_numpy(zero_copy_only=False)
    size = int(np.prod(shape)) if shape else 1
    if flat.size != n * size:
        raise DatasetError(f"{where}: column {key!r} holds {flat.size // max(n, 1)} values per row, "
                           f"meta/info.json says shape {shape}")
    return flat.astype(dtype, copy=False).reshape(n, *shape)


def spec_from_features(info: dict[str, Any], name: str) -> WorldSpec:
    """A WorldSpec for a dataset not written by genworld, from its LeRobot `features`."""
    fps = int(info["fps"])
    mods: list[Modality] = []
    for key, f in info["features"].items():
        if key in META:
            continue
        dtype, shape = f.get("dtype"), tuple(int(s) for s in f.get("shape", ()))
        names = f.get("names")
        if dtype in ("video", "image"):
            if isinstance(names, list) and names and names[0] == "channels":
                shape = (shape[1], shape[2], shape[0])
            mods.append(Modality(key, "video", shape, fps, "uint8"))
        elif dtype == "audio":
            rate = int(f.get("info", {}).get("audio.sample_rate", shape[0] * fps))
            mods.append(Modality(key, "audio", (rate // fps,), rate, "float32"))
        else:
            if shape == (1,) and key.startswith("next."):
                shape = ()
            kind = ("action" if key == "action" else "reward" if key == "next.reward" else "done"
                    if key == "next.done" else "touch" if key.startswith("observation.tactile.")
                    else "gt" if key.startswith("gt.") else "proprio")
            dt = "bool" if kind == "done" or dtype == "bool" else ("int64" if "int" in str(dtype) else "float32")
            labels = tuple(names) if isinstance(names, list) and all(isinstance(s, str) for s in names) else ()
            if isinstance(names, dict):  # v2.1 style {"motors": [...]}
                first = next(iter(names.values()), [])
                labels = tuple(first) if isinstance(first, list) else ()
            if labels and len(shape) == 1 and len(labels) != shape[0]:
                labels = ()
            mods.append(Modality(key, kind, shape, fps, dt, names=labels))
    return WorldSpec(name=name, fps=fps, modalities=tuple(mods), description="imported LeRobot dataset")


class Dataset:
    """A dataset directory, opened for reading. See the module docstring.

    Args:
        root: the dataset directory (holding meta/info.json).
        image_size: (H, W) to resize frames to when the cache is built (default: as stored).
    """

    def __init__(self, root: str | Path, *, image_size: tuple[int, int] | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: no such dataset directory; create one with `genworld collect`")
        self.info: dict[str, Any] = L.read_json(self.root / "meta" / "info.json",
                                                "not a dataset, or its writing never finished")
        try:
            self.version = str(self.info["codebase_version"])
            self.fps = int(self.info["fps"])
            self.spec = (WorldSpec.from_json(self.info["genworld"]) if "genworld" in self.info
                         else spec_from_features(self.info, self.info.get("robot_type") or self.root.name))
            total = int(self.info["total_episodes"])
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"{self.root}/meta/info.json: missing or bad entry {e}; the file is corrupt") from None
        self.image_size = tuple(image_size) if image_size else None
        if self.version.startswith("v3"):
            self.episodes = read_episode_table(self.root, total)
        elif self.version.startswith("v2"):
            self.episodes = self._v2_episode_table(total)
        else:
            raise DatasetError(f"{self.root}: codebase_version {self.version!r} is not supported (v2.1 or v3.0)")
        self.lengths = np.asarray(self.episodes.get("length", np.zeros(0)), np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)])[:-1].astype(np.int64)
        self.tasks = read_tasks(self.root)
        self._columns: dict[str, np.ndarray] = {}
        self._media: dict[str, np.ndarray] = {}

    # -- shape of the data --------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return len(self.lengths)

    @property
    def num_frames(self) -> int:
        return int(self.lengths.sum())

    def episode_length(self, i: int) -> int:
        return int(self.lengths[self._check_index(i)])

    def task(self, i: int) -> str:
        """The task string of episode i ("" when none)."""
        t = self.episodes.get("tasks")
        return str(t[self._check_index(i)]) if t is not None else ""

    @property
    def stats(self) -> dict[str, Any]:
        p = self.root / "meta" / "stats.json"
        return L.read_json(p, "re-create the dataset") if p.exists() else {}

    def _check_index(self, i: int) -> int:
        if not 0 <= int(i) < self.num_episodes:
            raise IndexError(f"{self.root}: episode {i} does not exist; the dataset has {self.num_episodes} "
                             f"episodes (0..{self.num_episodes - 1})")
        return int(i)

    def _keys(self, keys: list[str] | tuple[str, ...] | None) -> list[str]:
        if keys is None:
            return self.spec.keys()
        unknown = [k for k in keys if k not in self.spec]
        if unknown:
            raise KeyError(f"{self.root}: unknown keys {unknown}; the dataset has {self.spec.keys()}")
        return list(keys)

    # -- reading ------------------------------------------------------------------------------
    def episode(self, i: int, keys: list[str] | tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Every step of episode i: {key: (T, *shape)} (copies; safe to modify)."""
        i = self._check_index(i)
        return self.window(i, 0, int(self.lengths[i]), keys)

    def window(self, i: int, start: int, length: int,
               keys: list[str] | tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Steps [start, start + length) of episode i: {key: (length, *shape)}."""
        i = self._check_index(i)
        if start < 0 or length < 1 or start + length > self.lengths[i]:
            raise IndexError(f"{self.root}: window [{start}, {start + length}) lies outside episode {i} "
                             f"of length {int(self.lengths[i])}")
        g = int(self.starts[i]) + start
        return {k: np.array(self.array(k)[g: g + length]) for k in self._keys(keys)}

    def gather(self, rows: np.ndarray, keys: list[str] | tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Rows by global frame index (any shape of int array): {key: (*rows.shape, *shape)}."""
        flat = np.asarray(rows, np.int64).reshape(-1)
        return {k: self.array(k)[flat].reshape(*np.shape(rows), *self.array(k).shape[1:]) for k in self._keys(keys)}

    def array(self, key: str) -> np.ndarray:
        """All frames of one key over the whole dataset, (num_frames, *shape), indexed by global frame."""
        m = self.spec[key]
        if m.kind == "video":
            if key not in self._media:
                self._media[key] = self._video_cache(m)
            return self._media[key]
        if m.kind == "audio":
            if key not in self._media:
                self._media[key] = self._audio_cache(m)
            return self._media[key]
        if key not in self._columns:
            self._load_table()
        return self._columns[key]

    # -- tabular ------------------------------------------------------------------------------
    def _data_files(self) -> list[Path]:
        if self.version.startswith("v3"):
            nums = sorted({L.file_number(int(c), int(f)) for c, f in
                           zip(self.episodes.get("data/chunk_index", []), self.episodes.get("data/file_index", []))})
            return [self.root / L.DATA_PATH.format(chunk_index=c, file_index=f)
                    for c, f in map(L.file_location, nums)]
        tmpl = self.info.get("data_path", "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet")
        size = int(self.info.get("chunks_size", 1000))
        return [self.root / tmpl.format(episode_chunk=e // size, episode_index=e) for e in range(self.num_episodes)]

    def _load_table(self) -> None:
        keys = [m for m in self.spec.modalities if L.stored_in_table(m)]
        parts: dict[str, list[np.ndarray]] = {m.key: [] for m in keys}
        index_parts = []
        for path in self._data_files():
            t = _read_parquet(path)
            missing = [m.key for m in keys if m.key not in t.column_names]
            if missing:
                raise DatasetError(f"{path}: lacks columns {missing} that meta/info.json declares; "
                                   "the dataset is damaged, re-create it")
            ep = t.column("episode_index").to_numpy()
            keep = ep < self.num_episodes  # rows of a flush that never committed are ignored
            for m in keys:
                parts[m.key].append(_column(t, m.key, m.shape, m.dtype, str(path))[keep])
            index_parts.append(np.stack([ep[keep], t.column("frame_index").to_numpy()[keep]], 1))
        idx = np.concatenate(index_parts) if index_parts else np.zeros((0, 2), np.int64)
        expected = np.concatenate([np.stack([np.full(n, e), np.arange(n)], 1) for e, n in enumerate(self.lengths)]) \
            if self.num_episodes else np.zeros((0, 2), np.int64)
        if idx.shape != expected.shape or (idx != expected).any():
            raise DatasetError(f"{self.root}/data: rows do not match the episode lengths in meta/episodes "
                               f"({len(idx)} rows, {len(expected)} expected); the dataset is damaged, re-create it")
        for m in keys:
            self._columns[m.key] = (np.concatenate(parts[m.key]) if parts[m.key]
                                    else np.zeros((0, *m.shape), m.dtype))

    # -- media caches -------------------------------------------------------------------------
    def _media_files(self, m: Modality) -> list[tuple[Path, list[tuple[int, int, float]]]]:
        """[(file, [(episode, global_start, offset_in_file), ...])]; offset in seconds (video) or samples."""
        out: dict[Path, list[tuple[int, int, float]]] = {}
        for e in range(self.num_episodes):
            if self.version.startswith("v3"):
                stream = "videos" if m.kind == "video" else "audio"
                tmpl = L.VIDEO_PATH if m.kind == "video" else L.AUDIO_PATH
                c, f = int(self.episodes[f"{stream}/{m.key}/chunk_index"][e]), int(self.episodes[f"{stream}/{m.key}/file_index"][e])
                path = self.root / tmpl.format(video_key=m.key, audio_key=m.key, chunk_index=c, file_index=f)
                off = (float(self.episodes[f"videos/{m.key}/from_timestamp"][e]) if m.kind == "video"
                       else float(self.episodes[f"audio/{m.key}/from_sample"][e]))
            else:
                if m.kind != "video":
                    raise DatasetError(f"{self.root}: v2.1 datasets have no audio streams ({m.key})")
                size = int(self.info.get("chunks_size", 1000))
                tmpl = self.info.get("video_path", "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4")
                path = self.root / tmpl.format(episode_chunk=e // size, video_key=m.key, episode_index=e)
                off = 0.0
            out.setdefault(path, []).append((e, int(self.starts[e]), off))
        return list(out.items())

    def _fingerprint(self, files: list[Path]) -> list[list[Any]]:
        fp = []
        for p in files:
            try:
                st = p.stat()
            except FileNotFoundError:
                raise DatasetError(f"{p}: media file missing; restore it or re-create the dataset") from None
            fp.append([str(p.relative_to(self.root)), st.st_size, st.st_mtime_ns])
        return fp

    def _cached(self, name: str, shape: tuple[int, ...], dtype: str, files: list[Path], build: Any) -> np.ndarray:
        """A memory-mapped cache `name`, rebuilt (atomically) when its fingerprint does not match."""
        cache = self.root / ".cache"
        index = {"shape": list(shape), "dtype": dtype, "files": self._fingerprint(files)}
        data_path, index_path = cache / f"{name}.bin", cache / f"{name}.json"
        try:
            if json.loads(index_path.read_text()) == index and data_path.stat().st_size == np.prod(shape) * np.dtype(dtype).itemsize:
                return np.memmap(data_path, dtype=dtype, mode="r", shape=shape)
        except (OSError, ValueError):
            pass
        try:
            cache.mkdir(exist_ok=True)
            tmp = cache / f".{name}.{os.getpid()}.tmp"
            arr = np.memmap(tmp, dtype=dtype, mode="w+", shape=shape) if np.prod(shape) else np.zeros(shape, dtype)
        except OSError:  # a read-only dataset: keep it in memory
            arr = np.zeros(shape, dtype)
            build(arr)
            return arr
        build(arr)
        if isinstance(arr, np.memmap):
            arr.flush()
            del arr
            os.replace(tmp, data_path)
            L.atomic_write_json(index_path, index)
            return np.memmap(data_path, dtype=dtype, mode="r", shape=shape)
        return arr

    def _video_cache(self, m: Modality) -> np.ndarray:
        from tqdm import tqdm

        from genworld.data.media import read_video

        h, w = self.image_size or m.shape[:2]
        files = self._media_files(m)

        def build(arr: np.ndarray) -> None:
            bar = tqdm(files, desc=f"caching {m.key}", unit="file", disable=len(files) < 4, leave=False)
            for path, eps in bar:
                frames = read_video(path, self.fps, (h, w))
                for e, g, t0 in eps:
                    first, n = int(round(t0 * self.fps)), int(self.lengths[e])
                    if first + n > len(frames):
                        raise DatasetError(f"{path}: holds {len(frames)} frames, episode {e} needs frames "
                                           f"{first}..{first + n - 1}; the file is truncated, re-create the dataset")
                    arr[g: g + n] = frames[first: first + n]

        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", m.key)
        return self._cached(f"{safe}-{h}x{w}.u8", (self.num_frames, h, w, 3), "uint8", [p for p, _ in files], build)

    def _audio_cache(self, m: Modality) -> np.ndarray:
        from genworld.data.media import read_audio

        spp = int(m.shape[0])
        files = self._media_files(m)

        def build(arr: np.ndarray) -> None:
            for path, eps in files:
                samples = read_audio(path, int(m.rate))
                for e, g, s0 in eps:
                    n = int(self.lengths[e])
                    seg = samples[int(s0): int(s0) + n * spp]
                    if len(seg) != n * spp:
                        raise DatasetError(f"{path}: holds {len(samples)} samples, episode {e} needs "
                                           f"{int(s0)}..{int(s0) + n * spp}; the file is truncated, re-create the dataset")
                    arr[g: g + n] = seg.reshape(n, spp)

        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", m.key)
        return self._cached(f"{safe}.f32", (self.num_frames, spp), "float32", [p for p, _ in files], build)

    # -- v2.1 ---------------------------------------------------------------------------------
    def _v2_episode_table(self, total: int) -> dict[str, np.ndarray]:
        p = self.root / "meta" / "episodes.jsonl"
        try:
            rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            raise DatasetError(f"{p}: missing; a v2.1 dataset lists its episodes there") from None
        except json.JSONDecodeError as e:
            raise DatasetError(f"{p}: not valid JSON lines ({e}); the file is corrupt") from None
        rows = sorted(rows, key=lambda r: r["episode_index"])[:total]
        return {"episode_index": np.asarray([r["episode_index"] for r in rows], np.int64),
                "length": np.asarray([r["length"] for r in rows], np.int64),
                "tasks": np.asarray([(r.get("tasks") or [""])[0] for r in rows], object)}

    def __repr__(self) -> str:
        return (f"Dataset({str(self.root)!r}, world={self.spec.name!r}, episodes={self.num_episodes}, "
                f"frames={self.num_frames}, fps={self.fps}, {self.version})")
