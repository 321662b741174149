"""`drive:<scenario>`: driving on highway-env (highway, merge, roundabout, intersection, parking)."""

from __future__ import annotations

from typing import Any

from genworld.worlds.base import register_world
from genworld.worlds.drive.world import (
    META_ACTIONS,
    OBJECT_COLUMNS,
    PROPRIO,
    SCENARIOS,
    TAXELS,
    VEHICLE_COLUMNS,
    DriveConfig,
    DriveWorld,
)
from genworld.worlds.gym import config_from_overrides

__all__ = ["DriveConfig", "DriveWorld", "META_ACTIONS", "OBJECT_COLUMNS", "PROPRIO", "SCENARIOS", "TAXELS",
           "VEHICLE_COLUMNS", "make_drive_world"]


def make_drive_world(arg: str | None, **overrides: Any) -> DriveWorld:
    """Factory for `drive[:<scenario>]`: `make_world("drive:merge", actions="meta")`."""
    scenario = arg or DriveConfig.scenario
    return DriveWorld(config_from_overrides(DriveConfig, {**overrides, "scenario": scenario}, f"drive:{scenario}"))


register_world("drive", make_drive_world,
               "autonomous driving on highway-env: drive:highway|merge|roundabout|intersection|parking, with bumper "
               "touch and car sound", extra="drive", policies=("mixed", "driver", "random", "sticky"),
               tasks={"cruise": "genworld.worlds.drive.tasks:DriveTask", "merge": "genworld.worlds.drive.tasks:DriveTask",
                      "park": "genworld.worlds.drive.tasks:DriveTask"})
