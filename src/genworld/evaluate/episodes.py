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


def held_out(run_dir: str | Path | None, n_total: int, k: int) -> tuple[list[int], str]:
    """The run's validation episodes (RUN/split.json, or `val_episodes` in RUN/config.json), else the last k."""
    if run_dir is not None:
        for name in ("split.json", "config.json"):
            path = Path(run_dir) / name
            if path.exists():
                d = json.loads(path.read_text())
                val = d.get("val") or d.get("val_episodes_list") or d.get("split", {}).get("val")
                if isinstance(val, list) and val:
                    picked = [int(i) for i in val if int(i) < n_total][:k]
                    if picked:
                        return picked, f"validation episodes from {path}"
    start = max(0, n_total - k)
    return list(range(start, n_total)), f"last {n_total - start} episodes (no validation split recorded)"


def check_length(episodes: list[dict[str, np.ndarray]], context: int, horizon: int, key: str, where: str) -> None:
    """Raise ValueError if an episode is shorter than context + horizon."""
    for i, ep in enumerate(episodes):
        T = len(ep[key])
        if T < context + horizon:
            raise ValueError(f"{where}, episode {i}: {T} steps, but --context {context} + --horizon {horizon} "
                             f"= {context + horizon} are needed; lower --horizon to at most {T - context}")
