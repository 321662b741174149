"""The tabletop scene: its config, its objects, and the MJCF text MuJoCo compiles.

A square table with a low rim, a square fingertip on two slide joints (x, y) driven by velocity
actuators, a grid of `touch` sensors on the fingertip's four side faces, up to four free objects
(blocks and balls of different materials, masses and colours) and a fixed camera. Objects that an
episode does not use are parked on the floor under the table, out of the camera's view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Physical side of each material (the sound side lives in genworld.worlds.sound).
# density kg/m^3, sliding friction, solref time constant (s; smaller = stiffer, livelier impacts).
MATERIALS: dict[str, tuple[float, float, float]] = {
    "wood": (700.0, 0.5, 0.010),
    "metal": (7800.0, 0.35, 0.005),
    "rubber": (1100.0, 0.9, 0.020),
    "plastic": (950.0, 0.4, 0.008),
}
MATERIAL_IDS: tuple[str, ...] = tuple(MATERIALS)


@dataclass(frozen=True)
class TableObject:
    """One free object: a block (cube, `size` = half side) or a ball (`size` = radius)."""

    name: str
    shape: str  # "block" | "ball"
    size: float  # metres
    material: str
    rgb: tuple[int, int, int]

    @property
    def volume(self) -> float:
        return (2 * self.size) ** 3 if self.shape == "block" else 4.0 / 3.0 * np.pi * self.size**3

    @property
    def mass(self) -> float:
        return MATERIALS[self.material][0] * self.volume


DEFAULT_OBJECTS: tuple[TableObject, ...] = (
    TableObject("red_block", "block", 0.030, "wood", (220, 50, 40)),
    TableObject("blue_ball", "ball", 0.025, "metal", (40, 90, 230)),
    TableObject("green_block", "block", 0.025, "rubber", (40, 190, 70)),
    TableObject("yellow_ball", "ball", 0.030, "plastic", (240, 210, 40)),
)
SHAPE_IDS: tuple[str, ...] = ("block", "ball", "finger")
FINGER_RGB: tuple[int, int, int] = (38, 38, 46)
TABLE_RGB: tuple[int, int, int] = (199, 184, 158)


@dataclass
class TabletopConfig:
    """Everything that defines a tabletop world; `make_world("tabletop", **fields)` overrides any."""

    image_size: int = 64
    fps: int = 16
    substeps: int = 25  # physics steps per world step (timestep = 1 / (fps * substeps))
    audio_rate: int = 16000  # Hz, a whole multiple of fps
    sound: bool = True
    touch_rows: int = 3  # taxel rows (heights) on each of the 4 fingertip faces -> touch (rows, 4)
    n_objects: tuple[int, int] = (2, 4)  # objects per episode, drawn from the seed (inclusive range)
    objects: tuple[TableObject, ...] = DEFAULT_OBJECTS
    table_half: float = 0.25  # half side of the table top (m)
    rim_height: float = 0.04
    finger_half: float = 0.018  # half side of the square fingertip (m)
    finger_half_height: float = 0.025
    max_speed: float = 0.4  # m/s at action magnitude 1
    actuator_kv: float = 40.0  # velocity-actuator gain (N per m/s)
    finger_mass: float = 0.5
    launch_speed: float = 0.3  # objects start with velocities up to this (m/s)
    min_speed: float = 0.08  # m/s: a new contact approaching slower than this is silent (resting, rocking)
    debounce: int = 4  # sub-steps apart before a touch counts as a new contact
    impulse_ref: float = 0.05  # N*s that rings a mode at the synth's reference loudness
    shadows: bool = False  # shadows make frames 5x slower to render on a CPU
    segmentation: bool = True  # gt.segmentation: a second render pass per step, for object masks

    def __post_init__(self) -> None:
        self.n_objects = (int(self.n_objects[0]), int(self.n_objects[1]))
        if not 1 <= self.n_objects[0] <= self.n_objects[1] <= len(self.objects):
            raise ValueError(f"tabletop: n_objects {self.n_objects} must satisfy 1 <= lo <= hi <= "
                             f"{len(self.objects)} (the number of objects)")
        if self.sound and self.audio_rate % self.fps:
            raise ValueError(f"tabletop: audio_rate {self.audio_rate} must be a whole multiple of fps {self.fps}")
        for o in self.objects:
            if o.material not in MATERIALS or o.shape not in ("block", "ball"):
                raise ValueError(f"tabletop: object {o.name!r} has material {o.material!r} / shape {o.shape!r}; "
                                 f"materials {list(MATERIALS)}, shapes ['block', 'ball']")

    @property
    def palette(self) -> tuple[tuple[int, int, int], ...]:
        """RGB of each object, by index (the colour_id of gt.bodies)."""
        return tuple(o.rgb for o in self.objects)

    @property
    def timestep(self) -> float:
        return 1.0 / (self.fps * self.substeps)


def _rgba(rgb: tuple[int, int, int]) -> str:
    return " ".join(f"{c / 255:.3f}" for c in rgb) + " 1"


def _v(xs: list[float]) -> str:
    return " ".join(f"{x:g}" for x in xs)


def parking_spot(i: int) -> tuple[float, float, float]:
    """Where unused object i rests: on the floor, under the table, out of view."""
    return (-0.15 + 0.1 * i, 0.0, -0.45)


def camera_params(cfg: TabletopConfig) -> dict[str, list[float] | float]:
    """The fixed camera: position, image x and y axes (world frame) and vertical field of view (deg)."""
    pos = np.array([0.0, -0.9 * cfg.table_half, 2.75 * cfg.table_half])
    back = pos / np.linalg.norm(pos)  # the camera looks at the table centre, along -back
    x_axis = np.array([1.0, 0.0, 0.0])
    y_axis = np.cross(back, x_axis)
    return {"pos": pos.round(6).tolist(), "x_axis": x_axis.tolist(), "y_axis": y_axis.round(6).tolist(), "fovy": 45.0}


def build_mjcf(cfg: TabletopConfig) -> str:
    """The scene as an MJCF string."""
    T, rh, fh, fz = cfg.table_half, cfg.rim_height, cfg.finger_half, cfg.finger_half_height
    reach = T - fh - 0.012  # the fingertip stays clear of the rim
    wood = MATERIALS["wood"]
    cam = camera_params(cfg)
    rim = "\n".join(
        f'<geom name="rim{i}" type="box" pos="{x} {y} {rh / 2}" size="{sx} {sy} {rh / 2}" rgba="0.45 0.3 0.2 1" '
        f'friction="{wood[1]} 0.005 0.0001" solref="{wood[2]} 1"/>'
        for i, (x, y, sx, sy) in enumerate([(T + 0.005, 0, 0.005, T + 0.01), (-T - 0.005, 0, 0.005, T + 0.01),
                                            (0, T + 0.005, T + 0.01, 0.005), (0, -T - 0.005, T + 0.01, 0.005)]))
    # Touch sites: rows of boxes on each face (+x, +y, -x, -y), reaching 4 mm out from and into the face
    # (and past the top and bottom edges), so every contact point on the fingertip lies in a site
    # (one site, or two at a vertical edge).
    rows, d = cfg.touch_rows, 0.004
    sites, sensors = [], []
    for r in range(rows):
        z_lo = -fz + 2 * fz * r / rows - (d if r == 0 else 0.0)
        z_hi = -fz + 2 * fz * (r + 1) / rows + (d if r == rows - 1 else 0.0)
        z, hh = (z_lo + z_hi) / 2, (z_hi - z_lo) / 2
        for c, (nx, ny) in enumerate([(1, 0), (0, 1), (-1, 0), (0, -1)]):
            size = f"{d} {fh + d} {hh}" if nx else f"{fh + d} {d} {hh}"
            sites.append(f'<site name="taxel_{r}_{c}" type="box" pos="{nx * fh} {ny * fh} {z}" size="{size}" '
                         'rgba="0 0 0 0" group="5"/>')
            sensors.append(f'<touch name="touch_{r}_{c}" site="taxel_{r}_{c}"/>')
    objects = []
    for i, o in enumerate(cfg.objects):
        dens, fric, tc = MATERIALS[o.material]
        geom = (f'type="box" size="{o.size} {o.size} {o.size}"' if o.shape == "block"
                else f'type="sphere" size="{o.size}"')
        px, py, pz = parking_spot(i)
        objects.append(
            f'<body name="{o.name}" pos="{px} {py} {pz + o.size}"><freejoint name="{o.name}_free"/>'
            f'<geom name="{o.name}" {geom} mass="{o.mass:.5f}" rgba="{_rgba(o.rgb)}" '
            f'friction="{fric} 0.005 0.0001" solref="{tc} 1" condim="4"/></body>')
    return f"""
<mujoco model="tabletop">
  <option timestep="{cfg.timestep:.6f}" integrator="implicitfast" cone="elliptic"/>
  <visual><global offwidth="{max(cfg.image_size, 256)}" offheight="{max(cfg.image_size, 256)}"/>
    <quality shadowsize="1024"/><headlight ambient="0.6 0.6 0.6" diffuse="0 0 0" specular="0 0 0"/></visual>
  <asset><material name="matte" specular="0" shininess="0"/></asset>
  <default><geom material="matte"/></default>
  <worldbody>
    <!-- Matte surfaces lit 0.6 ambient + 0.4 from above: a face looking up shows its palette colour. -->
    <light pos="0 0 1.0" dir="0 0 -1" diffuse="0.4 0.4 0.4" specular="0 0 0" castshadow="{str(cfg.shadows).lower()}"/>
    <geom name="floor" type="plane" pos="0 0 -0.45" size="2 2 0.1" rgba="0.2 0.2 0.22 1"/>
    <geom name="table" type="box" pos="0 0 -0.02" size="{T + 0.01} {T + 0.01} 0.02" rgba="{_rgba(TABLE_RGB)}"
          friction="{wood[1]} 0.005 0.0001" solref="{wood[2]} 1"/>
    {rim}
    <camera name="top" pos="{_v(cam["pos"])}" xyaxes="{_v(cam["x_axis"])} {_v(cam["y_axis"])}" fovy="{cam["fovy"]}"/>
    <body name="finger" pos="0 0 {fz + 0.003}">
      <joint name="finger_x" type="slide" axis="1 0 0" range="{-reach} {reach}" limited="true" damping="0.5"/>
      <joint name="finger_y" type="slide" axis="0 1 0" range="{-reach} {reach}" limited="true" damping="0.5"/>
      <geom name="finger" type="box" size="{fh} {fh} {fz}" mass="{cfg.finger_mass}" rgba="{_rgba(FINGER_RGB)}"
            friction="0.4 0.005 0.0001" solref="0.008 1" condim="4"/>
      {"".join(sites)}
    </body>
    {"".join(objects)}
  </worldbody>
  <actuator>
    <velocity name="vx" joint="finger_x" kv="{cfg.actuator_kv}" ctrlrange="{-cfg.max_speed} {cfg.max_speed}"/>
    <velocity name="vy" joint="finger_y" kv="{cfg.actuator_kv}" ctrlrange="{-cfg.max_speed} {cfg.max_speed}"/>
  </actuator>
  <sensor>{"".join(sensors)}</sensor>
</mujoco>
"""
