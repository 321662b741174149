"""genworld: the open general world model over vision, sound, touch, proprioception and actions."""

__version__ = "0.1.0"
