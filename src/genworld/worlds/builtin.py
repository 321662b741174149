"""Registers the built-in worlds. Each module below registers itself on import and imports its
simulator only inside its factory, so listing worlds never needs mujoco, ale-py or gymnasium."""

import importlib
import importlib.util

for _mod in ("bounce", "tabletop", "arcade", "gym", "drive", "metaworld"):
    if importlib.util.find_spec(f"genworld.worlds.{_mod}") is not None:
        importlib.import_module(f"genworld.worlds.{_mod}")
