"""The modalities of a tabletop world: keys, shapes, units, and the config evaluation reads."""

from __future__ import annotations

from typing import Any

from genworld.spec import Modality, WorldSpec
from genworld.worlds.tabletop.scene import FINGER_RGB, MATERIAL_IDS, SHAPE_IDS, TABLE_RGB, TabletopConfig

BODY_COLUMNS = ("x", "y", "z", "qw", "qx", "qy", "qz", "vx", "vy", "vz", "wx", "wy", "wz",
                "u", "v", "visible", "exists", "mass", "material_id", "colour_id", "shape_id", "size")
FINGER_MATERIAL = "plastic"
ENV_MATERIAL = "wood"  # table and rim


def build_spec(cfg: TabletopConfig, camera: dict[str, Any]) -> WorldSpec:
    """The WorldSpec of a tabletop world built from `cfg`, seen through `camera` (scene.camera_params)."""
    K, fps, S = len(cfg.objects), cfg.fps, cfg.image_size
    mods = [
        Modality("observation.images.top", "video", (S, S, 3), fps, dtype="uint8", description="fixed camera"),
        Modality("observation.tactile.finger", "touch", (cfg.touch_rows, 4), fps, units="N", low=0.0,
                 names=("+x", "+y", "-x", "-y"),
                 description="mean normal force per fingertip taxel over the step; rows bottom to top, "
                             "columns the faces +x, +y, -x, -y"),
        Modality("observation.state", "proprio", (4,), fps, names=("x", "y", "vx", "vy"), units="m, m/s",
                 description="fingertip slide-joint positions and velocities"),
        Modality("action", "action", (2,), fps, low=-1.0, high=1.0, names=("vx", "vy"),
                 description=f"target fingertip velocity / max_speed ({cfg.max_speed} m/s)"),
        Modality("next.reward", "reward", (), fps),
        Modality("next.done", "done", (), fps, dtype="bool"),
        Modality("gt.bodies", "gt", (K + 1, len(BODY_COLUMNS)), fps, names=BODY_COLUMNS,
                 description="row 0 the fingertip, rows 1.. the objects: pose (m, quaternion), velocity "
                             "(m/s, rad/s, world frame), image position (pixels, x right, y down), "
                             "visible, exists, mass (kg), ids"),
        Modality("gt.contacts", "gt", (K + 1, K + 3), fps, units="N*s",
                 description="normal impulse during t-1 -> t between rows (fingertip, objects) and columns "
                             "(fingertip, objects, table, rim)"),
        Modality("gt.finger_contact", "gt", (), fps,
                 description="1 when MuJoCo reported a fingertip contact with positive normal force"),
    ]
    if cfg.sound:
        mods.insert(2, Modality("observation.audio.contact", "audio", (cfg.audio_rate // fps,), cfg.audio_rate,
                                low=-1.0, high=1.0, description="modal impact sound of new contacts"))
    if cfg.segmentation:
        mods.append(Modality("gt.segmentation", "gt", (S, S), fps, dtype="uint8",
                             description="per pixel: 0 scene, 1 + row of gt.bodies (1 fingertip, 2.. objects)"))
    config = {
        "palette": [list(c) for c in cfg.palette] + [list(FINGER_RGB)], "background": list(TABLE_RGB),
        "objects": [o.name for o in cfg.objects], "materials": list(MATERIAL_IDS), "shapes": list(SHAPE_IDS),
        "camera": camera, "image_size": S, "table_half": cfg.table_half, "gravity": 9.81,
        "substeps": cfg.substeps, "max_speed": cfg.max_speed, "touch_rows": cfg.touch_rows,
    }
    return WorldSpec("tabletop", fps, tuple(mods), "MuJoCo fingertip pushing blocks and balls", config)
