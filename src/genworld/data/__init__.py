"""The dataset room: LeRobot v3.0 datasets with sound, touch and ground truth (see docs/dataset.md)."""

from genworld.data.layout import DatasetError
from genworld.data.reader import Dataset
from genworld.data.sampler import WindowSampler
from genworld.data.writer import DatasetWriter

__all__ = ["Dataset", "DatasetError", "DatasetWriter", "WindowSampler"]
