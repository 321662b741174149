"""The session protocol: the one door through which play, dreaming, evaluation and planning use a world.

A session is started from a context of real steps and then stepped with actions; it returns every
predicted modality of the next step. The learned model (`WorldSession`) and the true simulator
(`SimSession`, the reference for planning and the "reality check" of play) both implement it.

Shapes: every array carries a leading batch dimension B. A context holds C steps: `{key: (B, C, *shape)}`
for the observation keys and the action key (the action of the last context step is not used: it is
the one passed to the first `step`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from genworld.spec import WorldSpec


@runtime_checkable
class Session(Protocol):
    """Steps a world (learned or true) in lockstep for a batch of B parallel futures."""

    spec: WorldSpec

    @property
    def batch_size(self) -> int: ...

    def reset(self, context: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Start from C real steps `{key: (B, C, *shape)}`; returns the last context step `{key: (B, *shape)}`."""
        ...

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]:
        """Apply actions `(B, *action_shape)`; returns the next step `{key: (B, *shape)}` for every
        predicted modality (video uint8, audio float32, touch, proprio, and reward/done when present)."""
        ...

    def observe(self, obs: dict[str, np.ndarray]) -> None:
        """Replace the last predicted step with real observations (teacher forcing, for surprise tests)."""
        ...

    def snapshot(self) -> Any:
        """An opaque copy of the session's state, for branching."""
        ...

    def restore(self, snap: Any) -> None:
        """Return to a snapshot taken earlier."""
        ...

    def expand(self, n: int) -> None:
        """Repeat each of the B futures n times (B -> B*n), for planners that branch one context."""
        ...
