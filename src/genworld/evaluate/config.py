"""Evaluation settings (`EvalConfig`) and the detector thresholds calibrated on ground truth (`Thresholds`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class EvalConfig:
    """What `genworld eval` rolls out and how many clips each test uses."""

    context: int = 4  # real steps given to the session before it predicts
    horizon: int = 32  # open-loop steps predicted with the true actions
    episodes: int = 20  # held-out episodes evaluated
    seed: int = 0
    surprise_pairs: int = 8  # clip pairs per violation type
    surprise_steps: int = 8  # teacher-forced steps per surprise clip (the event happens at step 3)
    control_steps: int = 8  # steps rolled with true vs alternative actions for controllability
    valid_eps: float = 0.0  # margin over copy-last for the valid horizon (PSNR dB / SSIM units)
    free_steps: int = 960  # steps of each free run beside the world, also scored for start-end drift (0: skip)
    free_contexts: int = 4  # free runs, from the first scored episodes' first C steps (batched)


@dataclass
class Thresholds:
    """Detector thresholds, calibrated on ground truth re-rendered with sub-pixel jitter (<= 1% false positives).

    Distances in pixels, colours in RGB units (0..255) or CIELAB ΔE76, areas relative.
    """

    colour_dist: float = 32.0  # a pixel belongs to palette colour c when its RGB distance to c is <= this
    a_min: int = 4  # smallest blob area (pixels) that counts as an object
    a_vis: int = 8  # GT blob area (pixels) from which an object counts as visible: a sliver at the occluder's
    # edge can drop below a_min with a sub-pixel move, and is then neither a vanish nor (in the prediction) a spawn
    gate: float = 10.0  # Hungarian gate: a blob further than this from a GT object is not matched to it
    v_max: float = 4.0  # fastest GT centroid motion (pixels/step)
    teleport_tol: float = 1.5  # tolerance added to 1.2 * v_max
    overlap_tol: float = 1.5  # centres closer than r_i + r_j - this are interpenetrating
    area_tol: float = 0.35  # relative area change that counts as a size change
    size_skip: tuple[int, ...] = ()  # palette colours whose area is too noisy to check (probe-read bodies)
    colour_tol: float = 12.0  # ΔE76 of a blob's mean colour from its palette colour that counts as a colour change
    energy_tol: float = 0.3  # speed gain (px/step) in free flight that counts as energy from nothing (`energy_rise`)
    momentum_tol: float = 0.3  # relative momentum change of a free collision that counts as a violation
    contact_eps: float = 1.5  # gap (pixels) under which two discs, or a disc and a wall, are in visual contact
    sound_rms: float = 1e-3  # audio RMS above which a step can hold a sound onset
    touch_min: float = 1e-3  # total touch above which the agent is touched

    @property
    def teleport_jump(self) -> float:
        """Centroid jump (pixels/step) above which a move is a teleport: 1.2 x fastest GT motion + tolerance."""
        return 1.2 * self.v_max + self.teleport_tol

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "teleport_jump": self.teleport_jump}
