"""Training data in memory: episodes loaded and checked once, a deterministic split, and samplers
that are pure functions of (seed, step) so a resumed run sees exactly the batches it would have seen."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genworld.spec import WorldSpec

MODEL_KINDS = ("video", "audio", "touch", "proprio", "action", "reward", "done")


@dataclass
class EpisodeStore:
    """Episodes of one world: {key: [(T_i, *shape), ...]} for the keys a model reads."""

    spec: WorldSpec
    arrays: dict[str, list[np.ndarray]]

    @property
    def num_episodes(self) -> int:
        return len(next(iter(self.arrays.values())))

    def length(self, i: int) -> int:
        return len(next(iter(self.arrays.values()))[i])

    def window(self, ep: int, start: int, length: int) -> dict[str, np.ndarray]:
        return {k: v[ep][start: start + length] for k, v in self.arrays.items()}


def model_keys(spec: WorldSpec) -> list[str]:
    """The keys a model reads (never gt.*)."""
    return [m.key for m in spec.modalities if m.kind in MODEL_KINDS]


def check_episode(spec: WorldSpec, ep: dict[str, np.ndarray], where: str) -> None:
    """Raise ValueError if an episode misses a key, has a wrong shape, or holds NaN/inf."""
    lengths = set()
    for k in model_keys(spec):
        if k not in ep:
            raise ValueError(f"{where}: missing key {k!r} that the spec declares")
        x = ep[k]
        m = spec[k]
        if tuple(x.shape[1:]) != m.shape:
            raise ValueError(f"{where}, {k}: per-step shape {tuple(x.shape[1:])}, spec says {m.shape}")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            bad = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0, 0])
            raise ValueError(f"{where}, {k}: NaN or inf at step {bad}; fix or drop this episode before training")
        lengths.add(len(x))
    if len(lengths) > 1:
        raise ValueError(f"{where}: keys have different lengths {sorted(lengths)}")


def from_episodes(spec: WorldSpec, episodes: list[dict[str, np.ndarray]]) -> EpisodeStore:
    """An EpisodeStore from in-memory episodes, checked."""
    keys = model_keys(spec)
    for i, ep in enumerate(episodes):
        check_episode(spec, ep, f"episode {i}")
    return EpisodeStore(spec, {k: [np.ascontiguousarray(ep[k]) for ep in episodes] for k in keys})


def load_dataset(root: str) -> EpisodeStore:
    """Load every episode of a genworld dataset directory into memory, checked against its spec."""
    from genworld.data import Dataset

    ds = Dataset(root)
    keys = model_keys(ds.spec)
    eps = []
    for i in range(ds.num_episodes):
        ep = ds.episode(i, keys=keys)
        check_episode(ds.spec, ep, f"{root}, episode {i}")
        eps.append(ep)
    if not eps:
        raise ValueError(f"{root}: the dataset has no episodes")
    return EpisodeStore(ds.spec, {k: [np.ascontiguousarray(ep[k]) for ep in eps] for k in keys})


def check_compatible(run_spec: WorldSpec, data_spec: WorldSpec, where: str) -> None:
    """Raise ValueError if a dataset's model modalities differ from the ones a run was built for."""
    a = {m.key: (m.kind, m.shape, m.discrete, m.n_choices) for m in run_spec.modalities if m.kind in MODEL_KINDS}
    b = {m.key: (m.kind, m.shape, m.discrete, m.n_choices) for m in data_spec.modalities if m.kind in MODEL_KINDS}
    if a != b:
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        detail = "; ".join(f"{k}: run {a.get(k)} vs data {b.get(k)}" for k in diff)
        raise ValueError(f"{where}: the dataset's modalities do not match the run's ({detail}); "
                         "train a new run for this dataset")


def split_episodes(n: int, n_val: int, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic (train, val) episode indices; val holds min(n_val, n // 4) episodes."""
    n_val = min(n_val, n // 4)
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def sample_windows(lengths: list[int], episodes: list[int], length: int, batch: int, seed: int, step: int
                   ) -> list[tuple[int, int]]:
    """`batch` (episode, start) windows of `length` steps, a pure function of (seed, step)."""
    starts = np.array([max(lengths[e] - length + 1, 0) for e in episodes])
    if starts.sum() == 0:
        raise ValueError(f"no episode is at least {length} steps long; collect longer episodes or use a "
                         "preset with a shorter window")
    rng = np.random.default_rng([seed, 2, step])
    eps = rng.choice(len(episodes), size=batch, p=starts / starts.sum())
    return [(episodes[e], int(rng.integers(0, starts[e]))) for e in eps]


def sample_frames(lengths: list[int], episodes: list[int], batch: int, seed: int, step: int
                  ) -> list[tuple[int, int]]:
    """`batch` (episode, step) pairs, a pure function of (seed, step)."""
    w = np.array([lengths[e] for e in episodes], dtype=np.float64)
    rng = np.random.default_rng([seed, 1, step])
    eps = rng.choice(len(episodes), size=batch, p=w / w.sum())
    return [(episodes[e], int(rng.integers(0, lengths[episodes[e]]))) for e in eps]


def memory_steps(windows: list[tuple[int, int]], seed: int, step: int) -> list[tuple[int, int]]:
    """For each (episode, start) window, one (episode, step) from its start or before, uniformly: the real step
    a model with memory sees beside the window; a pure function of (seed, step)."""
    rng = np.random.default_rng([seed, 3, step])
    return [(e, int(rng.integers(0, s + 1))) for e, s in windows]
