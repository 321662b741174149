"""`DatasetWriter`: episodes in, a LeRobot v3.0 dataset (plus audio, touch, ground truth) out.

Episodes are buffered and written `episodes_per_file` at a time: each flush writes one new file per
stream (data Parquet, one MP4 per camera, one FLAC per microphone, the episodes' metadata), then
stats and tasks, and `meta/info.json` last. A reader trusts only the episodes info.json counts, so a
flush killed half-way loses nothing that was already committed; the next writer removes its leftovers.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from genworld.data import layout as L
from genworld.data.layout import DatasetError
from genworld.data.stats import RunningStats
from genworld.spec import WorldSpec

OWN_ENTRIES = {"meta", "data", "videos", "audio", ".cache"}


def _spec_key(spec: WorldSpec) -> str:
    return json.dumps(json.loads(json.dumps(spec.to_json())), sort_keys=True)


class DatasetWriter:
    """Write episodes of one WorldSpec to `root`; reopening an existing dataset appends to it.

    Example:
        with DatasetWriter("data/mine", spec) as w:
            w.add_episode({key: array (T, *shape) for key in spec.keys()}, task="push")
    """

    def __init__(self, root: str | Path, spec: WorldSpec, *, episodes_per_file: int = 16,
                 robot_type: str = "", extra_info: dict[str, Any] | None = None) -> None:
        if episodes_per_file < 1:
            raise ValueError(f"episodes_per_file must be >= 1, got {episodes_per_file}")
        self.root, self.spec = Path(root), spec
        self.episodes_per_file, self.robot_type = episodes_per_file, robot_type or spec.name
        self.extra_info = dict(extra_info or {})
        self.stats = {m.key: RunningStats(m) for m in spec.modalities}
        self.tasks: list[str] = []
        self.total_episodes = self.total_frames = self.next_file = 0
        self._buffer: list[tuple[dict[str, np.ndarray], int]] = []
        info_path = self.root / "meta" / "info.json"
        if info_path.exists():
            self._resume(L.read_json(info_path, "re-create the dataset"))
        elif self.root.exists() and any(p.name not in OWN_ENTRIES for p in self.root.iterdir()):
            raise DatasetError(f"{self.root}: directory holds other files and no meta/info.json; "
                               "choose an empty or new directory")
        self._remove_leftovers()

    # -- opening -------------------------------------------------------------------------------
    def _resume(self, info: dict[str, Any]) -> None:
        old = info.get("genworld")
        if old is None:
            raise DatasetError(f"{self.root}: holds a dataset not written by genworld; choose another directory")
        try:
            same = _spec_key(WorldSpec.from_json(old)) == _spec_key(self.spec)
        except (KeyError, TypeError, ValueError):
            same = False
        if not same:
            raise DatasetError(f"{self.root}: holds a dataset of a different world or spec "
                               f"({old.get('name', '?')!r}); choose another --out directory or delete it")
        for k, v in self.extra_info.items():
            if k in info and info[k] != v:
                raise DatasetError(f"{self.root}: holds a dataset made with {k}={info[k]}, not {v}; "
                                   "choose another --out directory or delete it")
        self.total_episodes, self.total_frames = int(info["total_episodes"]), int(info["total_frames"])
        from genworld.data.reader import read_episode_table, read_tasks

        if self.total_episodes:
            eps = read_episode_table(self.root, self.total_episodes)
            self.next_file = max(L.file_number(c, f) for c, f in zip(eps["data/chunk_index"], eps["data/file_index"])) + 1
        self.tasks = read_tasks(self.root)
        stats = L.read_json(self.root / "meta" / "stats.json", "re-create the dataset") if self.total_episodes else {}
        for k, s in self.stats.items():
            s.load(stats.get(k, {}))

    def _remove_leftovers(self) -> None:
        """Delete files of a flush that was killed before it committed (file number >= next_file)."""
        for top in ("data", "videos", "audio", "meta/episodes"):
            base = self.root / top
            if not base.exists():
                continue
            for p in list(base.rglob("*")):
                if p.is_file() and (p.name.startswith(".") or self._number(p) >= self.next_file):
                    p.unlink()

    @staticmethod
    def _number(p: Path) -> int:
        try:
            return L.file_number(int(p.parent.name.split("-")[1]), int(p.stem.split("-")[1]))
        except (IndexError, ValueError):
            return -1

    # -- adding --------------------------------------------------------------------------------
    def add_episode(self, steps: dict[str, np.ndarray], task: str = "") -> int:
        """Buffer one episode {key: (T, *shape)}; returns its episode index. Checks every value first."""
        index = self.total_episodes + len(self._buffer)
        where = f"{self.root}, episode {index}"
        missing = [k for k in self.spec.keys() if k not in steps]
        unknown = [k for k in steps if k not in self.spec]
        if missing or unknown:
            raise DatasetError(f"{where}: keys differ from world {self.spec.name!r}: missing {missing}, "
                               f"unknown {unknown}; pass exactly the spec's keys {self.spec.keys()}")
        lengths = {k: len(np.asarray(v)) for k, v in steps.items()}
        if len(set(lengths.values())) != 1 or min(lengths.values()) < 1:
            raise DatasetError(f"{where}: streams have different (or zero) lengths {lengths}; every key needs "
                               "the same number of steps T >= 1")
        ep = {m.key: self._check(m, np.asarray(steps[m.key]), where) for m in self.spec.modalities}
        if task not in self.tasks:
            self.tasks.append(task)
        self._buffer.append((ep, self.tasks.index(task)))
        if len(self._buffer) >= self.episodes_per_file:
            self.flush()
        return index

    @staticmethod
    def _check(m: Any, x: np.ndarray, where: str) -> np.ndarray:
        if x.shape[1:] != m.shape:
            raise DatasetError(f"{where}, key {m.key!r}: per-step shape {x.shape[1:]}, spec says {m.shape}")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            bad = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0, 0])
            raise DatasetError(f"{where}, key {m.key!r}: NaN or inf at step {bad}; fix the source of the data")
        if m.kind == "video" and (x.dtype != np.uint8):
            if x.min() < 0 or x.max() > 255:
                raise DatasetError(f"{where}, key {m.key!r}: frames must be uint8 0..255")
        if m.kind == "audio" and np.abs(x).max(initial=0) > 1.0 + 1e-6:
            raise DatasetError(f"{where}, key {m.key!r}: audio outside [-1, 1] (max |x| "
                               f"{float(np.abs(x).max()):.3g}); scale or clip it before writing")
        if m.discrete and (x.min() < 0 or x.max() >= m.n_choices):
            raise DatasetError(f"{where}, key {m.key!r}: choice outside 0..{m.n_choices - 1}")
        if m.kind == "audio":
            x = np.clip(x, -1.0, 1.0)
        return np.ascontiguousarray(x.astype(m.dtype, copy=False))

    # -- writing -------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write the buffered episodes as one new file per stream, then commit them in meta/info.json."""
        if not self._buffer:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        chunk, fidx = L.file_location(self.next_file)
        loc = {"chunk_index": chunk, "file_index": fidx}
        eps = [e for e, _ in self._buffer]
        lengths = [len(next(iter(e.values()))) for e in eps]
        starts = np.cumsum([0, *lengths])
        first = self.total_episodes
        fps = self.spec.fps
        rows: dict[str, Any] = {
            "index": pa.array(np.arange(self.total_frames, self.total_frames + starts[-1], dtype=np.int64)),
            "episode_index": pa.array(np.repeat(np.arange(first, first + len(eps)), lengths).astype(np.int64)),
            "frame_index": pa.array(np.concatenate([np.arange(n, dtype=np.int64) for n in lengths])),
            "timestamp": pa.array(np.concatenate([np.arange(n, dtype=np.float32) / np.float32(fps) for n in lengths])),
            "task_index": pa.array(np.repeat([t for _, t in self._buffer], lengths).astype(np.int64)),
        }
        for m in self.spec.modalities:
            if L.stored_in_table(m):
                col = np.concatenate([e[m.key] for e in eps])
                if m.shape:
                    flat = col.reshape(len(col), -1)
                    rows[m.key] = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])
                else:
                    rows[m.key] = pa.array(col)
        meta: dict[str, Any] = {
            "episode_index": np.arange(first, first + len(eps), dtype=np.int64),
            "tasks": [[self.tasks[t]] for _, t in self._buffer],
            "length": np.asarray(lengths, np.int64),
            "data/chunk_index": [chunk] * len(eps), "data/file_index": [fidx] * len(eps),
            "dataset_from_index": self.total_frames + starts[:-1], "dataset_to_index": self.total_frames + starts[1:],
            "meta/episodes/chunk_index": [chunk] * len(eps), "meta/episodes/file_index": [fidx] * len(eps),
        }
        self._write_parquet(self.root / L.DATA_PATH.format(**loc), pa.table(rows), pq)
        for m in self.spec.of_kind("video"):
            L_path = self.root / L.VIDEO_PATH.format(video_key=m.key, **loc)
            from genworld.data.media import write_video

            write_video(L_path, np.concatenate([e[m.key] for e in eps]), fps)
            meta[f"videos/{m.key}/chunk_index"] = [chunk] * len(eps)
            meta[f"videos/{m.key}/file_index"] = [fidx] * len(eps)
            meta[f"videos/{m.key}/from_timestamp"] = (starts[:-1] / fps).astype(np.float64)
            meta[f"videos/{m.key}/to_timestamp"] = (starts[1:] / fps).astype(np.float64)
        for m in self.spec.of_kind("audio"):
            from genworld.data.media import write_audio

            write_audio(self.root / L.AUDIO_PATH.format(audio_key=m.key, **loc),
                        np.concatenate([e[m.key].reshape(-1) for e in eps]), int(m.rate))
            spp = m.shape[0]
            meta[f"audio/{m.key}/chunk_index"] = [chunk] * len(eps)
            meta[f"audio/{m.key}/file_index"] = [fidx] * len(eps)
            meta[f"audio/{m.key}/from_timestamp"] = (starts[:-1] / fps).astype(np.float64)
            meta[f"audio/{m.key}/to_timestamp"] = (starts[1:] / fps).astype(np.float64)
            meta[f"audio/{m.key}/from_sample"] = (starts[:-1] * spp).astype(np.int64)
            meta[f"audio/{m.key}/to_sample"] = (starts[1:] * spp).astype(np.int64)
        self._write_parquet(self.root / L.EPISODES_PATH.format(**loc), pa.table(meta), pq)
        for e in eps:
            for k, s in self.stats.items():
                s.add(e[k])
        self._write_parquet(self.root / "meta" / "tasks.parquet",
                            pa.table({"task_index": pa.array(np.arange(len(self.tasks), dtype=np.int64)),
                                      "task": pa.array(self.tasks, pa.string())}), pq)
        L.atomic_write_json(self.root / "meta" / "stats.json", {k: s.to_json() for k, s in self.stats.items()})
        self.total_episodes += len(eps)
        self.total_frames += int(starts[-1])
        self.next_file += 1
        self._buffer.clear()
        self._write_info()  # the commit point

    def _write_info(self) -> None:
        info = L.info_json(self.spec, robot_type=self.robot_type, total_episodes=self.total_episodes,
                           total_frames=self.total_frames, total_tasks=len(self.tasks), extra=self.extra_info)
        L.atomic_write_json(self.root / "meta" / "info.json", info)

    @staticmethod
    def _write_parquet(path: Path, table: Any, pq: Any) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        L.atomic_write_bytes(path, buf.getvalue())

    def close(self) -> None:
        """Flush what is buffered and make sure meta/info.json exists (also for zero episodes)."""
        self.flush()
        if not (self.root / "meta" / "info.json").exists():
            self._write_info()
        cache = self.root / ".cache"
        if cache.exists():  # a cache built before these episodes were added is stale; it rebuilds itself
            shutil.rmtree(cache, ignore_errors=True)

    @property
    def num_episodes(self) -> int:
        """Episodes added so far (committed and buffered)."""
        return self.total_episodes + len(self._buffer)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
