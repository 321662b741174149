"""data: dataset write throughput, media cache build time, and training windows per second.

Episodes are real `bounce` episodes (64x64 frames, 16 kHz sound, touch, ground truth), simulated once
before timing. `write_steps_per_s_median` times `DatasetWriter` (Parquet + lossless H.264 + FLAC);
`cache_build_s_median` times decoding every video and audio file into the memory-mapped caches;
`windows_per_s_median` times `WindowSampler.batch` (batch 32, 20 steps, every model key) from a warm
cache. The reader target is at least 10x what the tiny model consumes in training (see bench_train).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _episodes(n: int, steps: int) -> tuple[object, list[dict[str, np.ndarray]]]:
    from genworld.worlds import make_world
    from genworld.worlds.collect import record_episode

    world = make_world("bounce")
    return world.spec, [record_episode(world, "mixed", 0, i, steps) for i in range(n)]


def run(quick: bool) -> dict:
    from genworld.data import Dataset, DatasetWriter, WindowSampler

    n_eps, steps, repeats = (8, 64, 2) if quick else (32, 96, 3)
    spec, eps = _episodes(n_eps, steps)
    total = n_eps * steps
    write, build, windows = [], [], []
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        for r in range(repeats):
            root = tmp / f"ds{r}"
            t0 = time.perf_counter()
            with DatasetWriter(root, spec, episodes_per_file=8) as w:
                for ep in eps:
                    w.add_episode(ep)
            write.append(total / (time.perf_counter() - t0))
            ds = Dataset(root)
            t0 = time.perf_counter()
            for m in spec.of_kind("video", "audio"):
                ds.array(m.key)
            build.append(time.perf_counter() - t0)
            keys = [m.key for m in spec.modalities if m.kind != "gt"]
            sampler = WindowSampler(ds, 20, 32, seed=r, keys=keys)
            sampler.batch(0)
            n = 20 if quick else 100
            t0 = time.perf_counter()
            for i in range(n):
                sampler.batch(i)
            windows.append(n * 32 / (time.perf_counter() - t0))
        size = sum(f.stat().st_size for f in (tmp / "ds0").rglob("*") if f.is_file() and ".cache" not in f.parts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "episodes": n_eps, "steps_per_episode": steps, "repeats": repeats,
        "write_steps_per_s_median": round(statistics.median(write), 1),
        "cache_build_s_median": round(statistics.median(build), 3),
        "cache_build_steps_per_s_median": round(total / statistics.median(build), 1),
        "windows_per_s_median": round(statistics.median(windows), 1),
        "window": "batch 32 x 20 steps, 64x64 frames + sound + touch + state + action",
        "bytes_per_step_on_disk": round(size / total, 1),
    }
