"""Built-in worlds and adapters; simulators are imported lazily, inside each world's factory."""

from genworld.worlds.base import (
    MissingExtraError,
    Policy,
    UnknownWorldError,
    World,
    make_world,
    register_world,
    registered_worlds,
)

__all__ = [
    "MissingExtraError",
    "Policy",
    "UnknownWorldError",
    "World",
    "make_world",
    "register_world",
    "registered_worlds",
]
