"""What every task shares: one set-up episode and the error a task raises (apart from the tasks, which
`plan/tasks.py` looks up by name, so that a world's own task module can use them without importing it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class TaskError(ValueError):
    """The task does not exist for this world, or the world lacks what the task needs."""


@dataclass
class Episode:
    """One set-up episode: the chosen object, the target and the first observation."""

    seed: int
    obj: int  # row of gt.objects
    target: np.ndarray  # (2,) pixels
    radius: float  # success radius around the target, pixels
    obs: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)
    contact_run: int = 0  # consecutive steps in contact (touch task)
