"""Episodes for evaluation: collected from a world in memory, or read from a dataset; held-out selection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from genworld.spec import WorldSpec


def collect(world_name: str, n: int, steps: int, seed: int = 0, policy: str = "random",
            **overrides: Any) -> tuple[WorldSpec, list[dict[str, np.ndarray]]]:
    """`n` episodes of `steps` steps from a registered world, recorded like `genworld collect` does."""
    from genworld.worlds import make_world

    world = make_world(world_name, **overrides)
    rng = np.random.default_rng(seed)
    act = world.policy(policy, rng)
    episodes = []
    for i in range(n):
        obs = world.reset(seed=seed * 100_003 + i)
        rows: dict[str, list[np.ndarray]] = {}
        for _ in range(steps):
            a = np.asarray(act(obs))
            for k, v in obs.items():
                rows.setdefault(k, []).append(np.asarray(v))
            rows.setdefault(world.spec.action.key, []).append(a)
            obs, _, _ = world.step(a)
        episodes.append({k: np.stack(v) for k, v in rows.items()})
    world.close()
    return world.spec, episodes


def load_episodes(data_dir: str | Path, indices: list[int]) -> tuple[WorldSpec, list[dict[str, np.ndarray]]]:
    """The spec and the episodes `indices` of a genworld dataset directory."""
    try:
        from genworld.data import Dataset
    except ImportError as e:
        raise ImportError(f"reading {data_dir} needs genworld.data.Dataset, which this install lacks ({e})") from e
    ds = Dataset(str(data_dir))
    bad = [i for i in indices if not 0 <= i < ds.num_episodes]
    if bad:
        raise ValueError(f"{data_dir}: episodes {bad} do not exist (the dataset has {ds.num_episodes})")
    return ds.spec, [ds.episode(i) for i in indices]


def dataset_size(data_dir: str | Path) -> int:
    """Number of episodes of a dataset directory."""
    from genworld.data import Dataset

    return int(Dataset(str(data_dir)).num_episodes)


def trained_on(run_dir: str | Path, ds: Any) -> bool | None:
    """Whether dataset `ds` is the one the run trained on: its stored context windows (RUN/contexts.safetensors,
    episode and start in the metadata) match the dataset's actions there. None when the run stores none."""
    path = Path(run_dir) / "contexts.safetensors"
    if not path.exists():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), "np") as f:
            windows = json.loads((f.metadata() or {}).get("windows", "[]"))
            key = ds.spec.action.key
            if not windows or key not in f.keys():
                return None
            acts = f.get_tensor(key)
    except Exception:  # safetensors raises its own error types for corrupt files
        return None
    for j, (e, start) in enumerate(windows[:3]):
        if e >= ds.num_episodes:
            return False
        real = ds.episode(int(e), keys=[key])[key][start: start + acts.shape[1]]
        if real.shape != acts[j].shape or not np.array_equal(real, acts[j]):
            return False
    return True


def held_out(run_dir: str | Path | None, n_total: int, k: int) -> tuple[list[int], str]:
    """Up to k episodes: the run's validation episodes (RUN/split.json "val") first, then others if more are asked.

    Returns (indices, a note saying where they came from, and how many the model was trained on).
    """
    val: list[int] = []
    source = ""
    if run_dir is not None:
        path = Path(run_dir) / "split.json"
        if path.exists():
            d = json.loads(path.read_text())
            val = [int(i) for i in d.get("val", []) if 0 <= int(i) < n_total]
            source = str(path)
    picked = val[:k]
    if len(picked) == k:
        return picked, f"{k} held-out (validation) episodes from {source}"
    rest = [i for i in range(n_total - 1, -1, -1) if i not in set(val)][: k - len(picked)]
    picked = picked + sorted(rest)
    if not val:
        return picked, (f"{len(picked)} episodes (the last ones): no validation split recorded in the run, "
                        "so the model may have trained on them")
    return picked, (f"{len(val)} held-out (validation) episodes from {source}, plus {len(rest)} more that the "
                    f"model trained on (--episodes {k} asks for more than the split holds)")


def check_length(episodes: list[dict[str, np.ndarray]], context: int, horizon: int, key: str, where: str) -> None:
    """Raise ValueError if an episode is shorter than context + horizon."""
    for i, ep in enumerate(episodes):
        T = len(ep[key])
        if T < context + horizon:
            raise ValueError(f"{where}, episode {i}: {T} steps, but --context {context} + --horizon {horizon} "
                             f"= {context + horizon} are needed; lower --horizon to at most {T - context}")
