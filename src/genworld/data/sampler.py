"""`WindowSampler`: random training windows that lie wholly inside one episode.

`batch(i)` is a pure function of (seed, i), so a resumed training run sees exactly the batches it
would have seen; windows are drawn uniformly over all valid (episode, start) pairs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from genworld.data.reader import Dataset


class WindowSampler:
    """Batches {key: (B, L, *shape)} of `length`-step windows from `episodes` (default: all) of `ds`."""

    def __init__(self, ds: Dataset, length: int, batch_size: int, episodes: Sequence[int] | None = None,
                 seed: int = 0, keys: Sequence[str] | None = None) -> None:
        if length < 1 or batch_size < 1:
            raise ValueError(f"window length and batch size must be >= 1, got {length} and {batch_size}")
        self.ds, self.length, self.batch_size, self.seed = ds, int(length), int(batch_size), int(seed)
        self.keys = list(keys) if keys is not None else None
        eps = np.arange(ds.num_episodes) if episodes is None else np.asarray(list(episodes), np.int64)
        n_starts = ds.lengths[eps] - self.length + 1 if len(eps) else np.zeros(0, np.int64)
        self.episodes, self.n_starts = eps[n_starts > 0], n_starts[n_starts > 0]
        if not len(self.episodes):
            longest = int(ds.lengths[eps].max()) if len(eps) else 0
            raise ValueError(f"{ds.root}: no episode is long enough for windows of {length} steps "
                             f"(longest: {longest}); use shorter windows or longer episodes")
        self.cum = np.cumsum(self.n_starts)

    @property
    def num_windows(self) -> int:
        """How many distinct windows there are."""
        return int(self.cum[-1])

    def rows(self, i: int) -> np.ndarray:
        """Global frame indices (B, L) of batch i."""
        rng = np.random.default_rng([self.seed, int(i)])
        w = rng.integers(0, self.num_windows, self.batch_size)
        j = np.searchsorted(self.cum, w, side="right")
        start = w - (self.cum[j] - self.n_starts[j])
        first = self.ds.starts[self.episodes[j]] + start
        return first[:, None] + np.arange(self.length)[None, :]

    def batch(self, i: int) -> dict[str, np.ndarray]:
        """Batch i: {key: (B, L, *shape)}."""
        return self.ds.gather(self.rows(i), self.keys)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        i = 0
        while True:
            yield self.batch(i)
            i += 1
