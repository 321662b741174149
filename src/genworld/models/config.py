"""The world model's configuration and JSON round-trip for nested config dataclasses."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from genworld.models.audio_tokenizer import AudioTokenizerConfig
from genworld.models.dynamics import DynamicsConfig
from genworld.models.image_tokenizer import ImageTokenizerConfig


@dataclass
class CorruptionConfig:
    """Context corruption during dynamics training (against drift on the model's own outputs)."""

    prob: float = 0.5  # fraction of samples corrupted
    max_replace: float = 0.1  # max fraction of discrete tokens replaced by random codes
    max_noise: float = 0.2  # max std of Gaussian noise on normalised continuous inputs


@dataclass
class WorldModelConfig:
    """Everything needed to rebuild a world model: the world's spec (JSON) and the parts' sizes."""

    spec: dict[str, Any] = field(default_factory=dict)  # WorldSpec.to_json()
    image: ImageTokenizerConfig = field(default_factory=ImageTokenizerConfig)  # image_shape set per camera
    audio: AudioTokenizerConfig = field(default_factory=AudioTokenizerConfig)  # samples set per mic
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    corruption: CorruptionConfig = field(default_factory=CorruptionConfig)
    video_patch: int = 4  # p x p image codes per transformer token
    audio_slots: int = 1  # transformer tokens per audio chunk (its codes split evenly)
    video_delta: bool = False  # add an embedding of each image token's change since the previous step
    video_regress: float = 0.0  # weight of an extra head regressing the next step's code values (MSE); >0: frames decode it
    decode_expectation: bool = False  # at temperature 0, decode the expected FSQ values (PSNR-optimal), not argmax
    contact_threshold: float = 0.5  # a taxel is in contact when its predicted contact probability exceeds this
    contact_pos_weight: float = 1.0  # weight of contact (positive) taxels in the contact loss; contacts are rare
    proprio_pointers: int = 0  # P points read linearly off proprio; each first-camera token's embedding gets its offsets to them
    memory: bool = False  # every step also sees one real step from earlier in the episode (models/dynamics.py)
    self_forcing: float = 0.0  # share of training windows whose context is the model's own one-step predictions
    video_copy: bool = False  # image heads relative to the current codes: a copy bias, regressed changes, a change gate
    flow_width: int = 0  # width of a flow-matching sampler of the next image codes (models/code_flow.py; 0: none)
    flow_steps: int = 4  # its Euler steps per predicted frame
    flow_batch: int = 16  # frames per training step it learns from
    canvas: bool = False  # rollouts redraw only the code patches that changed; the rest keeps the previous frame's pixels
    changed_code_weight: float = 3.0  # extra loss weight of codes that differ from the previous step's
    loss_weights: dict[str, float] = field(default_factory=lambda: {
        "video": 1.0, "audio": 0.5, "touch": 1.0, "proprio": 1.0, "reward": 1.0, "done": 1.0})


def to_dict(cfg: Any) -> Any:
    """A config dataclass (nested) as JSON-able data."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, tuple | list):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is tuple:
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        return value
    return value


def from_dict(cls: type, data: dict[str, Any], where: str = "config") -> Any:
    """Rebuild a config dataclass from `to_dict` output; unknown keys raise an error naming them."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} for {cls.__name__}; this run may come from a "
                         "different genworld version")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)
