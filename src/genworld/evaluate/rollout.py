"""Open-loop rollouts of any `Session` with the true actions, batched over episodes."""

from __future__ import annotations

from typing import Any

import numpy as np


def context_of(episodes: list[dict[str, np.ndarray]], start: int, length: int, keys: list[str]) -> dict[str, np.ndarray]:
    """{key: (B, length, *shape)} of steps start .. start+length-1 of each episode."""
    return {k: np.stack([ep[k][start: start + length] for ep in episodes]) for k in keys if k in episodes[0]}


def open_loop(session: Any, episodes: list[dict[str, np.ndarray]], context: int, horizon: int,
              batch: int = 32) -> dict[str, np.ndarray]:
    """Predictions {key: (N, horizon, *shape)} for steps C .. C+H-1 of each episode, from steps 0 .. C-1.

    The session sees the real context (with ground truth: baselines that read it may use it) and then
    the true actions a_{C-1} .. a_{C+H-2}.
    """
    akey = session.spec.action.key
    keys = list(episodes[0].keys())
    out: dict[str, list[np.ndarray]] = {}
    for b0 in range(0, len(episodes), batch):
        eps = episodes[b0: b0 + batch]
        session.reset(context_of(eps, 0, context, keys))
        acts = np.stack([ep[akey][context - 1: context - 1 + horizon] for ep in eps])  # (B, H, *a)
        steps = [session.step(acts[:, h]) for h in range(horizon)]
        for k in steps[0]:
            out.setdefault(k, []).append(np.stack([s[k] for s in steps], 1))
    return {k: np.concatenate(v) for k, v in out.items()}


def truth(episodes: list[dict[str, np.ndarray]], context: int, horizon: int) -> dict[str, np.ndarray]:
    """The real steps C .. C+H-1 {key: (N, H, *shape)}."""
    return {k: np.stack([ep[k][context: context + horizon] for ep in episodes]) for k in episodes[0]}
