"""`bounce` and `bounce-gravity`: discs in a 2-D arena, in numpy, with sight, sound, touch and ground truth.

    from genworld.worlds import make_world
    world = make_world("bounce", n_objects=4, occluder="true")   # strings from `--set` are converted
    obs = world.reset(seed=0)
    obs, reward, done = world.step(np.array([0.5, -1.0], np.float32))

See docs/worlds.md for the modalities, the ground-truth columns and the physics.
"""

from __future__ import annotations

from typing import Any

from genworld.worlds.base import register_world
from genworld.worlds.bounce.config import GT_COLUMNS, PALETTE, BounceConfig, make_config
from genworld.worlds.bounce.policies import POLICIES
from genworld.worlds.bounce.render import render_objects
from genworld.worlds.bounce.world import BounceWorld, state_from_gt

GRAVITY_DEFAULTS: dict[str, Any] = {"gravity": 0.25, "drag": 0.0}


def make_bounce(arg: str | None = None, **overrides: Any) -> BounceWorld:
    """Factory for `bounce` (top-down, no gravity)."""
    return BounceWorld(make_config(**overrides), name="bounce")


def make_bounce_gravity(arg: str | None = None, **overrides: Any) -> BounceWorld:
    """Factory for `bounce-gravity` (side view: gravity pulls +y, no floor drag)."""
    return BounceWorld(make_config(**{**GRAVITY_DEFAULTS, **overrides}), name="bounce-gravity")


def world_from_spec_config(config: dict[str, Any], name: str = "bounce") -> BounceWorld:
    """The world a dataset was collected with, rebuilt from its `spec.config` (extra keys are ignored)."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(BounceConfig)}
    cfg = {k: v for k, v in config.items() if k in fields}
    cfg["occluder"] = bool(cfg.get("occluder"))  # spec.config holds the rectangle (or null) there
    return BounceWorld(make_config(**cfg), name=name)


register_world("bounce", make_bounce, "2-D discs seen from above: agent pushes objects; sight, sound, touch",
               policies=POLICIES)
register_world("bounce-gravity", make_bounce_gravity, "2-D discs seen from the side, with gravity",
               policies=POLICIES)

__all__ = [
    "GT_COLUMNS",
    "PALETTE",
    "BounceConfig",
    "BounceWorld",
    "make_bounce",
    "make_bounce_gravity",
    "make_config",
    "render_objects",
    "state_from_gt",
    "world_from_spec_config",
]
