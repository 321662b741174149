"""The modality schema: what one world produces at every step, and how to read it.

A `WorldSpec` names the modalities of a world. Each `Modality` carries its dataset key (LeRobot
names: `observation.images.<cam>`, `observation.state`, `action`, `next.reward`, `next.done`; our
extensions `observation.audio.<mic>`, `observation.tactile.<sensor>`, `gt.<name>`), its kind, its
per-step shape, its rate, dtype, units and value range, and for actions whether they are discrete
(with names) or continuous.

Per-step shapes, by kind:
    video    (H, W, 3) uint8
    audio    (samples_per_step,) float32 in [-1, 1]; `rate` is the sample rate, a whole multiple of fps
    touch    (n_taxels,) or (rows, cols) float32
    proprio  (d,) float32
    action   (d,) float32 when continuous; () int64 when discrete (`names` lists the choices)
    reward   () float32;  done () bool
    gt       any shape; ground truth for evaluation only, never a model input

`names` lists the choices of a discrete modality, or labels the last axis of any other one (for
example `("x", "y", "vx", "vy")` for a state vector, or the columns of a `gt.*` table).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

# `gt.objects`: the object table the evaluator's detectors read, one row per object (row 0 the agent), in image
# pixels. A world that records it under these names gets the object, physics and causality metrics.
OBJECT_COLUMNS: tuple[str, ...] = ("x", "y", "vx", "vy", "radius", "mass", "colour_id", "visible", "exists",
                                   "material_id")

Kind = Literal["video", "audio", "touch", "proprio", "action", "reward", "done", "text", "gt"]
KINDS: tuple[str, ...] = ("video", "audio", "touch", "proprio", "action", "reward", "done", "text", "gt")


class SpecError(ValueError):
    """A world spec, or data checked against it, is inconsistent."""


@dataclass(frozen=True)
class Modality:
    """One stream of a world: its dataset key, kind, per-step shape, rate and value range."""

    key: str
    kind: Kind
    shape: tuple[int, ...]
    rate: float
    dtype: str = "float32"
    units: str = ""
    low: float | None = None
    high: float | None = None
    discrete: bool = False
    names: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpecError(f"modality {self.key!r}: unknown kind {self.kind!r}; expected one of {KINDS}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "names", tuple(self.names))
        if self.discrete and not self.names:
            raise SpecError(f"modality {self.key!r}: a discrete modality needs `names` for its choices")

    @property
    def n_choices(self) -> int:
        """Number of choices of a discrete modality (0 when continuous)."""
        return len(self.names) if self.discrete else 0

    def check(self, value: np.ndarray, where: str = "") -> np.ndarray:
        """Return `value` as this modality's dtype, or raise SpecError naming the key and `where`."""
        arr = np.asarray(value)
        at = f" at {where}" if where else ""
        if arr.shape != self.shape:
            raise SpecError(f"{self.key}{at}: shape {arr.shape}, expected {self.shape}")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise SpecError(f"{self.key}{at}: contains NaN or inf")
        if self.discrete and not (0 <= int(arr) < self.n_choices):
            raise SpecError(f"{self.key}{at}: choice {int(arr)} outside 0..{self.n_choices - 1}")
        return arr.astype(self.dtype, copy=False)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["names"] = list(self.names)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Modality:
        d = dict(d)
        d["shape"] = tuple(d["shape"])
        d["names"] = tuple(d.get("names", ()))
        return cls(**d)


@dataclass(frozen=True)
class WorldSpec:
    """The modalities one world produces, at `fps` steps per second."""

    name: str
    fps: int
    modalities: tuple[Modality, ...]
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = [m.key for m in self.modalities]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise SpecError(f"world {self.name!r}: duplicate modality keys {sorted(dup)}")
        for m in self.modalities:
            if m.kind == "audio":
                spp = m.rate / self.fps
                if spp != int(spp) or m.shape != (int(spp),):
                    raise SpecError(
                        f"world {self.name!r}, {m.key}: sample rate {m.rate} must be a whole multiple of "
                        f"fps {self.fps} and shape must be ({int(spp)},), got {m.shape}"
                    )

    def __getitem__(self, key: str) -> Modality:
        for m in self.modalities:
            if m.key == key:
                return m
        raise KeyError(f"world {self.name!r} has no modality {key!r}; it has {self.keys()}")

    def __contains__(self, key: object) -> bool:
        return any(m.key == key for m in self.modalities)

    def keys(self) -> list[str]:
        return [m.key for m in self.modalities]

    def of_kind(self, *kinds: str) -> list[Modality]:
        """The modalities whose kind is one of `kinds`, in declaration order."""
        return [m for m in self.modalities if m.kind in kinds]

    @property
    def action(self) -> Modality:
        acts = self.of_kind("action")
        if len(acts) != 1:
            raise SpecError(f"world {self.name!r} must have exactly one action modality, has {len(acts)}")
        return acts[0]

    def check_step(self, step: dict[str, np.ndarray], where: str = "") -> dict[str, np.ndarray]:
        """Validate one step's values against the spec; returns them cast to the declared dtypes."""
        missing = [k for k in self.keys() if k not in step]
        if missing:
            raise SpecError(f"world {self.name!r}{' at ' + where if where else ''}: step lacks {missing}")
        extra = [k for k in step if k not in self]
        if extra:
            raise SpecError(f"world {self.name!r}{' at ' + where if where else ''}: unknown keys {extra}")
        return {k: self[k].check(v, where) for k, v in step.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fps": self.fps,
            "description": self.description,
            "config": self.config,
            "modalities": [m.to_json() for m in self.modalities],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WorldSpec:
        return cls(
            name=d["name"],
            fps=int(d["fps"]),
            description=d.get("description", ""),
            config=dict(d.get("config", {})),
            modalities=tuple(Modality.from_json(m) for m in d["modalities"]),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)
