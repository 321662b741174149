"""`metaworld:<task>`: robot-arm manipulation on Meta-World (push-v3, pick-place-v3, drawer-open-v3, ...)."""

from __future__ import annotations

from typing import Any

from genworld.worlds.base import register_world
from genworld.worlds.gym import config_from_overrides
from genworld.worlds.metaworld.world import (
    BODY_COLUMNS,
    CAMERAS,
    OBJECT_COLUMNS,
    PROPRIO,
    TAXELS,
    MetaWorldConfig,
    MetaWorldWorld,
    describe,
    task_names,
)

__all__ = ["BODY_COLUMNS", "CAMERAS", "OBJECT_COLUMNS", "PROPRIO", "TAXELS", "MetaWorldConfig", "MetaWorldWorld",
           "describe", "make_metaworld_world", "task_names"]


def make_metaworld_world(arg: str | None, **overrides: Any) -> MetaWorldWorld:
    """Factory for `metaworld[:<task>]`: `make_world("metaworld:drawer-open-v3", image_size=96)`."""
    task = arg or MetaWorldConfig.task
    return MetaWorldWorld(config_from_overrides(MetaWorldConfig, {**overrides, "task": task}, f"metaworld:{task}"))


register_world("metaworld", make_metaworld_world,
               "Meta-World's Sawyer arm tasks (MuJoCo): metaworld:push-v3|pick-place-v3|drawer-open-v3|reach-v3|..., "
               "with finger touch and contact sound", extra="metaworld", policies=("mixed", "expert", "random", "sticky"),
               tasks={"solve": "genworld.worlds.metaworld.tasks:MetaWorldTask"})
