"""`BounceConfig`, its palette and materials, override parsing, and the `WorldSpec` it produces."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

import numpy as np

from genworld.spec import Modality, WorldSpec
from genworld.worlds.sound import MATERIALS

# Palette, index = colour_id. 0 is the agent, 1..8 the object colours, 9 the occluder.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (240, 240, 240),  # 0 agent: white
    (230, 60, 50),  # 1 red
    (60, 180, 75),  # 2 green
    (50, 100, 230),  # 3 blue
    (250, 210, 40),  # 4 yellow
    (220, 70, 220),  # 5 magenta
    (40, 210, 220),  # 6 cyan
    (245, 140, 30),  # 7 orange
    (150, 90, 40),  # 8 brown
    (110, 110, 120),  # 9 occluder: grey
)
BACKGROUND: tuple[int, int, int] = (20, 22, 30)
AGENT_COLOUR_ID = 0
OCCLUDER_COLOUR_ID = len(PALETTE) - 1
OBJECT_COLOUR_IDS: tuple[int, ...] = tuple(range(1, OCCLUDER_COLOUR_ID))

# Material ids index this tuple. An object's material follows from its colour (so a model can see
# what it will hear): colours 1..8 map to wood, metal, rubber, glass, wood, metal, rubber, glass.
MATERIAL_NAMES: tuple[str, ...] = ("wood", "metal", "rubber", "glass", "plastic", "stone")
OBJECT_MATERIALS: tuple[str, ...] = ("wood", "metal", "rubber", "glass")
AGENT_MATERIAL = "plastic"
WALL_MATERIAL = "stone"

GT_COLUMNS: tuple[str, ...] = (
    "x", "y", "vx", "vy", "radius", "mass", "colour_id", "visible", "exists", "material_id",
)
DISCRETE_ACTIONS: tuple[str, ...] = (
    "none", "up", "down", "left", "right", "up-left", "up-right", "down-left", "down-right",
)
_D = 1 / math.sqrt(2)
# Force direction of each discrete action (x right, y down: "up" is -y).
DISCRETE_FORCES = np.array(
    [(0, 0), (0, -1), (0, 1), (-1, 0), (1, 0), (-_D, -_D), (_D, -_D), (-_D, _D), (_D, _D)], np.float64
)
assert len(DISCRETE_FORCES) == len(DISCRETE_ACTIONS)
N_TAXELS = 8


def colour_material(colour_id: int) -> int:
    """The material id of an object of colour `colour_id` (the agent's is plastic)."""
    if colour_id == AGENT_COLOUR_ID:
        return MATERIAL_NAMES.index(AGENT_MATERIAL)
    name = OBJECT_MATERIALS[(colour_id - 1) % len(OBJECT_MATERIALS)]
    return MATERIAL_NAMES.index(name)


@dataclass
class BounceConfig:
    """A 2-D arena of discs: one agent pushed by the action, `n_objects` others, walls, optional gravity."""

    n_objects: int = 3  # object discs besides the agent (2 to 5 is usual)
    n_objects_min: int | None = None  # if set, each episode draws its count from n_objects_min..n_objects
    max_objects: int = 5  # rows of gt.objects = 1 + max_objects (absent rows have exists = 0)
    image_size: int = 64  # the arena is image_size x image_size pixels
    fps: int = 16
    sample_rate: int = 16000  # audio Hz, a whole multiple of fps
    substeps: int = 8  # physics sub-steps per frame
    restitution: float | None = None  # None: per material pair; 1.0 = perfectly elastic everywhere
    friction: float | None = None  # None: per material pair; 0.0 = frictionless contacts
    drag: float = 0.01  # fraction of velocity lost per step (top-down: the floor rubs)
    gravity: float = 0.0  # pixels/step^2 pulling +y (down); > 0 is the side-view variant
    occluder: bool = False  # a grey bar drawn over the middle of the arena
    action_mode: str = "continuous"  # or "discrete": 9 keyboard directions
    max_speed: float = 4.0  # pixels/step: the agent's top speed (its motor cannot push it faster)
    speed_limit: float = 10.0  # pixels/step: a safety cap for every body, far above usual speeds
    agent_accel: float = 0.6  # pixels/step^2 of the agent at |action| = 1
    agent_radius: float = 5.0
    agent_mass: float = 2.0
    min_radius: float = 3.0
    max_radius: float = 7.0
    init_speed: float = 1.5  # objects start with speeds up to this (pixels/step)
    rest_speed: float = 0.1  # approach speeds below this are resting contacts: no bounce, no sound
    sound_gain: float = 0.1  # amplitude per mode for an impulse of 4 mass*px/step (a hard hit is ~15)
    seed: int = 0  # seeds the episode seeds drawn by reset(None)

    def __post_init__(self) -> None:
        def bad(field: str, why: str) -> ValueError:
            return ValueError(f"BounceConfig.{field} = {getattr(self, field)!r}: {why}")

        if not 0 <= self.n_objects <= self.max_objects:
            raise bad("n_objects", f"must be within 0..max_objects ({self.max_objects})")
        if self.n_objects_min is not None and not 0 <= self.n_objects_min <= self.n_objects:
            raise bad("n_objects_min", f"must be within 0..n_objects ({self.n_objects}), or None")
        if not 1 <= self.max_objects <= len(OBJECT_COLOUR_IDS):
            raise bad("max_objects", f"must be within 1..{len(OBJECT_COLOUR_IDS)} (distinct palette colours)")
        if self.image_size < 16:
            raise bad("image_size", "must be at least 16")
        if self.fps <= 0 or self.sample_rate % self.fps:
            raise bad("sample_rate", f"must be a whole multiple of fps ({self.fps})")
        if self.action_mode not in ("continuous", "discrete"):
            raise bad("action_mode", "choose 'continuous' or 'discrete'")
        if self.substeps < 1:
            raise bad("substeps", "must be >= 1")
        if self.restitution is not None and not 0 <= self.restitution <= 1:
            raise bad("restitution", "must be within [0, 1] (or None for per-material values)")
        if self.friction is not None and self.friction < 0:
            raise bad("friction", "must be >= 0 (or None for per-material values)")
        if not 0 <= self.drag < 1:
            raise bad("drag", "must be within [0, 1)")
        if not 0 < self.max_speed <= self.speed_limit:
            raise bad("max_speed", f"must be > 0 and <= speed_limit ({self.speed_limit})")
        if self.speed_limit > self.substeps * self.min_radius:
            raise bad("speed_limit", f"a disc would cross more than its radius in a sub-step; raise substeps "
                      f"or keep speed_limit <= substeps * min_radius ({self.substeps * self.min_radius})")
        if not 0 < self.min_radius <= self.max_radius:
            raise bad("min_radius", f"must be > 0 and <= max_radius ({self.max_radius})")
        space = 4 * (self.max_radius + 1) ** 2 * (self.max_objects + 1)
        if space > 0.6 * self.image_size**2:
            raise bad("image_size", f"too small for {self.max_objects + 1} discs of radius {self.max_radius}")

    @property
    def samples_per_step(self) -> int:
        return self.sample_rate // self.fps

    @property
    def occluder_rect(self) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) in pixels: a vertical bar over the middle, wide enough to hide any disc."""
        if not self.occluder:
            return None
        s = self.image_size
        half = max(int(self.max_radius) + 2, s // 8)
        return (s // 2 - half, s // 8, s // 2 + half, s - s // 8)


def _convert(name: str, value: Any, hint: Any) -> Any:
    """Turn a CLI string into the type of field `name` (`hint`), e.g. '0.5' -> 0.5, 'none' -> None."""
    if not isinstance(value, str):
        return value
    args = typing.get_args(hint)
    types = [a for a in args if a is not type(None)] if args else [hint]
    text = value.strip()
    if type(None) in args and text.lower() in ("none", "null", ""):
        return None
    for t in types:
        if t is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            continue
        try:
            return t(text)
        except ValueError:
            continue
    raise ValueError(f"bounce: cannot read {name}={value!r} as {hint}; e.g. --set {name}=<{types[0].__name__}>")


def make_config(**overrides: Any) -> BounceConfig:
    """A `BounceConfig` from keyword overrides; string values (from `--set key=value`) are converted."""
    hints = typing.get_type_hints(BounceConfig)
    known = {f.name for f in dataclasses.fields(BounceConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"bounce: unknown config keys {unknown}; known: {sorted(known)}")
    return BounceConfig(**{k: _convert(k, v, hints[k]) for k, v in overrides.items()})


def spec_config(cfg: BounceConfig) -> dict[str, Any]:
    """The resolved config plus what evaluation needs to read frames: palette, background, occluder."""
    out = dataclasses.asdict(cfg)
    out.update(
        palette=[list(c) for c in PALETTE],
        background=list(BACKGROUND),
        occluder=list(cfg.occluder_rect) if cfg.occluder_rect else None,
        occluder_colour_id=OCCLUDER_COLOUR_ID,
        agent_colour_id=AGENT_COLOUR_ID,
        arena=[0, 0, cfg.image_size, cfg.image_size],
        materials=[
            {"name": n, "restitution": MATERIALS[n].restitution, "friction": MATERIALS[n].friction,
             "density": MATERIALS[n].density, "freqs": list(MATERIALS[n].freqs)}
            for n in MATERIAL_NAMES
        ],
        wall_material_id=MATERIAL_NAMES.index(WALL_MATERIAL),
        action_names=list(DISCRETE_ACTIONS) if cfg.action_mode == "discrete" else ["fx", "fy"],
        gt_columns=list(GT_COLUMNS),
        touch_sectors="sector k is centred on angle k*45 degrees from +x toward +y (image: right, then down)",
    )
    return out


def build_spec(name: str, cfg: BounceConfig) -> WorldSpec:
    """The modalities of a bounce world built from `cfg`."""
    s, k, fps = cfg.image_size, 1 + cfg.max_objects, cfg.fps
    if cfg.action_mode == "discrete":
        action = Modality("action", "action", (), fps, dtype="int64", discrete=True, names=DISCRETE_ACTIONS,
                          description="keyboard direction of the force on the agent")
    else:
        action = Modality("action", "action", (2,), fps, low=-1.0, high=1.0, names=("fx", "fy"),
                          description=f"force on the agent, x right, y down; 1 = {cfg.agent_accel} px/step^2")
    view = "side view, gravity pulls down" if cfg.gravity > 0 else "top-down view"
    mods = (
        Modality("observation.images.top", "video", (s, s, 3), fps, dtype="uint8", low=0, high=255,
                 description=f"the arena, {view}; flat palette colours"),
        Modality("observation.audio.mic", "audio", (cfg.samples_per_step,), cfg.sample_rate, low=-1.0, high=1.0,
                 description="impact sound (modal synthesis) of the contacts during the last step"),
        Modality("observation.tactile.ring", "touch", (N_TAXELS,), fps, units="mass*px/step", low=0.0,
                 description="contact impulse on the agent per 45-degree sector, sector 0 facing +x"),
        Modality("observation.state", "proprio", (4,), fps, units="px, px/step", names=("x", "y", "vx", "vy"),
                 description="agent position and velocity in image coordinates"),
        Modality("gt.objects", "gt", (k, len(GT_COLUMNS)), fps, names=GT_COLUMNS,
                 description="row 0 agent, rows 1.. objects; pixels and pixels/step"),
        Modality("gt.contacts", "gt", (k, k + 1), fps, units="mass*px/step",
                 description="contact impulse between bodies i and j during the last step; last column walls"),
        action,
        Modality("next.reward", "reward", (), fps),
        Modality("next.done", "done", (), fps, dtype="bool"),
    )
    return WorldSpec(name, fps, mods, description=f"2-D discs, {view}", config=spec_config(cfg))
