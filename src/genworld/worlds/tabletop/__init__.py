"""`tabletop`: a MuJoCo fingertip pushing blocks and balls, with touch, contact sound and ground truth.

Importing this package registers the world; MuJoCo itself is imported only when one is built:

    from genworld.worlds import make_world
    world = make_world("tabletop", image_size=64, n_objects=(2, 4))
    world = make_world("tabletop", image_size="96", n_objects="3,4")   # strings from `--set key=value`
"""

from __future__ import annotations

from typing import Any

from genworld.worlds.base import World, register_world


def make_tabletop(arg: str | None, **overrides: Any) -> World:
    """Factory for `tabletop` (no suffix); keyword overrides are `TabletopConfig` fields."""
    from genworld.worlds.gym import config_from_overrides
    from genworld.worlds.tabletop.scene import TabletopConfig
    from genworld.worlds.tabletop.world import TabletopWorld

    if arg:
        raise ValueError(f"tabletop takes no ':{arg}' suffix; configure it with keyword overrides instead")
    return TabletopWorld(config_from_overrides(TabletopConfig, overrides, "tabletop"))


register_world("tabletop", make_tabletop, "MuJoCo fingertip pushing blocks and balls: touch grid, contact sound",
               extra="mujoco", policies=("random", "persistent", "seek", "mixed"))
