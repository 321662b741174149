"""`BounceWorld`: the agent disc, the object discs and the walls, seen, heard and felt.

Per step: the action pushes the agent, physics runs its sub-steps, then the frame is rendered from the
ground-truth table (`render_objects`), the contacts of the step ring the synth (each impact rings both
materials at the sub-step where it happened, amplitude from the impulse) and press the touch ring
(impulse on the agent per 45-degree sector, by the direction from the agent's centre to the contact).
Resting contacts (approach speed below `rest_speed`) press but make no sound.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from genworld.spec import SpecError
from genworld.worlds.base import Policy
from genworld.worlds.bounce.config import (
    AGENT_COLOUR_ID,
    DISCRETE_ACTIONS,
    DISCRETE_FORCES,
    GT_COLUMNS,
    MATERIAL_NAMES,
    N_TAXELS,
    OBJECT_COLOUR_IDS,
    WALL_MATERIAL,
    BounceConfig,
    build_spec,
    colour_material,
)
from genworld.worlds.bounce.physics import WALL, Bodies, Physics, pair_table
from genworld.worlds.bounce.render import Painter, visible
from genworld.worlds.sound import MATERIALS, ImpactSynth


class BounceWorld:
    """A 2-D arena of discs behind the World protocol, rewindable with `get_state` / `set_state`."""

    def __init__(self, cfg: BounceConfig, name: str = "bounce") -> None:
        self.cfg = cfg
        self.spec = build_spec(name, cfg)
        self.k = 1 + cfg.max_objects
        mats = [MATERIALS[n] for n in MATERIAL_NAMES]
        self.physics = Physics(
            size=float(cfg.image_size), substeps=cfg.substeps, gravity=cfg.gravity, drag=cfg.drag,
            max_speed=cfg.max_speed, speed_limit=cfg.speed_limit, rest_speed=cfg.rest_speed,
            restitution=pair_table(np.array([m.restitution for m in mats]), cfg.restitution, "min"),
            friction=pair_table(np.array([m.friction for m in mats]), cfg.friction, "geo"),
            wall_material=MATERIAL_NAMES.index(WALL_MATERIAL),
        )
        self.synth = ImpactSynth(cfg.sample_rate, cfg.samples_per_step, MATERIAL_NAMES,
                                 impulse_ref=4.0, gain=cfg.sound_gain)
        self._seeds = np.random.default_rng(cfg.seed)
        self._painter = Painter(self.spec.config)
        self._occluder = cfg.occluder_rect
        self.bodies: Bodies | None = None
        self.t = 0

    # ---- episode -------------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start an episode with discs placed from `seed` (same seed, same episode)."""
        if seed is None:
            seed = int(self._seeds.integers(2**31))
        rng = np.random.default_rng(seed)
        cfg, k = self.cfg, self.k
        b = Bodies(np.zeros((k, 2)), np.zeros((k, 2)), np.zeros(k), np.ones(k), np.zeros(k, np.int64),
                   np.zeros(k, np.int64), np.zeros(k, bool))
        n_obj = cfg.n_objects
        if cfg.n_objects_min is not None:
            n_obj = int(rng.integers(cfg.n_objects_min, cfg.n_objects + 1))
        n = 1 + n_obj
        b.exists[:n] = True
        b.radius[0], b.mass[0] = cfg.agent_radius, cfg.agent_mass
        b.colour[0], b.material[0] = AGENT_COLOUR_ID, colour_material(AGENT_COLOUR_ID)
        colours = rng.choice(OBJECT_COLOUR_IDS, size=n_obj, replace=False)
        for i, c in enumerate(colours, start=1):
            b.colour[i], b.material[i] = int(c), colour_material(int(c))
            b.radius[i] = rng.uniform(cfg.min_radius, cfg.max_radius)
            density = MATERIALS[MATERIAL_NAMES[b.material[i]]].density
            b.mass[i] = density * (b.radius[i] / 5.0) ** 2
        self._place(b, n, rng)
        ang = rng.uniform(0, 2 * np.pi, n - 1)
        speed = rng.uniform(0, cfg.init_speed, n - 1)
        b.vel[1:n] = np.stack([np.cos(ang), np.sin(ang)], 1) * speed[:, None]
        self._bind(b)
        self.t = 0
        self.synth.reset()
        zeros_contacts = np.zeros((k, k + 1), np.float32)
        return self._obs(np.zeros(cfg.samples_per_step, np.float32), np.zeros(N_TAXELS, np.float32),
                         zeros_contacts)

    def _place(self, b: Bodies, n: int, rng: np.random.Generator) -> None:
        """Put n discs at random places that do not touch each other or the walls."""
        s = float(self.cfg.image_size)
        for i in range(n):
            r = b.radius[i]
            for _ in range(1000):
                p = rng.uniform(r + 0.5, s - r - 0.5, 2)
                gap = np.hypot(*(b.pos[:i] - p).T) - b.radius[:i] - r
                if i == 0 or gap.min() > 1.0:
                    b.pos[i] = p
                    break
            else:
                raise RuntimeError(f"bounce: could not place {n} discs in a {s:.0f}px arena; "
                                   "lower n_objects or max_radius")

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool]:
        """Apply `action` (a force in [-1, 1]^2, or a discrete choice); returns (o_{t+1}, 0.0, False)."""
        if self.bodies is None:
            raise RuntimeError("bounce: call reset(seed) before step(action)")
        contacts = self.physics.step(self.bodies, self._accel(action))
        self.t += 1
        k = self.k
        table = np.zeros((k, k + 1), np.float32)
        for (i, j), impulse in contacts.impulse.items():
            if j == WALL:
                table[i, k] = impulse
            else:
                table[i, j] = table[j, i] = impulse
        ring = np.zeros(N_TAXELS, np.float32)
        for nx, ny, impulse in contacts.agent:
            ring[round(math.atan2(ny, nx) / (2 * math.pi / N_TAXELS)) % N_TAXELS] += impulse
        names = self._material_names
        for i, j, impulse, frac in contacts.impacts:
            self.synth.hit(names[i], WALL_MATERIAL if j == WALL else names[j], impulse, frac)
        return self._obs(self.synth.next_chunk(), ring, table), 0.0, False

    def _accel(self, action: np.ndarray) -> tuple[float, float]:
        """The agent's acceleration (px/step^2) for an action, checked."""
        act = np.asarray(action)
        if self.cfg.action_mode == "discrete":
            if act.size != 1 or not 0 <= int(act.reshape(())) < len(DISCRETE_ACTIONS):
                raise SpecError(f"bounce: discrete action must be one int in 0..{len(DISCRETE_ACTIONS) - 1} "
                                f"({', '.join(DISCRETE_ACTIONS)}), got {action!r}")
            fx, fy = DISCRETE_FORCES[int(act.reshape(()))].tolist()
        else:
            fx, fy = act.tolist() if act.shape == (2,) else (math.nan, math.nan)
            if not (math.isfinite(fx) and math.isfinite(fy)):
                raise SpecError(f"bounce: continuous action must be 2 finite numbers (fx, fy), got {action!r}")
            fx, fy = min(max(fx, -1.0), 1.0), min(max(fy, -1.0), 1.0)
        return fx * self.cfg.agent_accel, fy * self.cfg.agent_accel

    def _bind(self, bodies: Bodies) -> None:
        """Make `bodies` the world's state and cache what does not move (gt columns, material names)."""
        self.bodies = bodies
        self._material_names = [MATERIAL_NAMES[m] for m in bodies.material.tolist()]
        static = np.zeros((self.k, len(GT_COLUMNS)), np.float64)
        static[:, 4], static[:, 5], static[:, 6] = bodies.radius, bodies.mass, bodies.colour
        static[:, 7] = static[:, 8] = bodies.exists
        static[:, 9] = bodies.material
        static[~bodies.exists] = 0.0
        self._static, self._absent = static, ~bodies.exists

    # ---- observation ---------------------------------------------------------------------------

    def gt_objects(self) -> np.ndarray:
        """The (K, 10) ground-truth table of the current state (columns `GT_COLUMNS`)."""
        t = self._static.copy()
        t[:, 0:2], t[:, 2:4] = self.bodies.pos, self.bodies.vel
        t[self._absent, :4] = 0.0
        if self._occluder is not None:
            t[:, 7] = visible(t, self._occluder)
        return t

    def _obs(self, audio: np.ndarray, ring: np.ndarray, contacts: np.ndarray) -> dict[str, np.ndarray]:
        table = self.gt_objects()
        gt = table.astype(np.float32)
        return {
            "observation.images.top": self._painter.paint(gt),  # exactly what render_objects(gt) gives
            "observation.audio.mic": audio,
            "observation.tactile.ring": ring,
            "observation.state": gt[0, :4].copy(),
            "gt.objects": gt,
            "gt.contacts": contacts,
        }

    def render(self) -> np.ndarray:
        """The current frame (H, W, 3) uint8."""
        return self._painter.paint(self.gt_objects().astype(np.float32))

    # ---- rewinding -----------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """An exact copy of the world's state (bodies, ringing sound, step count)."""
        if self.bodies is None:
            raise RuntimeError("bounce: get_state() before reset(); call reset(seed) first")
        return {"bodies": self.bodies.copy(), "synth": self.synth.get_state(), "t": self.t}

    def set_state(self, state: dict[str, Any]) -> None:
        """Return to a state from `get_state` (or `state_from_gt`)."""
        b = state["bodies"]
        if b.pos.shape != (self.k, 2):
            raise ValueError(f"bounce: state has {b.pos.shape[0]} bodies, this world has {self.k} "
                             f"(max_objects = {self.cfg.max_objects})")
        self._bind(b.copy())
        self.synth.set_state(state["synth"])
        self.t = int(state["t"])

    def state_from_gt(self, step: dict[str, np.ndarray] | np.ndarray) -> dict[str, Any]:
        """A world state from one step's `gt.objects` table (or a step dict holding it); sound starts silent."""
        table = step["gt.objects"] if isinstance(step, dict) else step
        return state_from_gt(table, self.k, self.synth.n_modes)

    def policy(self, name: str, rng: np.random.Generator) -> Policy:
        """An exploration policy: random, persistent, seek or mixed (see `bounce.policies`)."""
        from genworld.worlds.bounce.policies import make_policy

        return make_policy(name, rng, self.cfg)

    def close(self) -> None:
        self.bodies = None  # type: ignore[assignment]


def state_from_gt(gt_objects: np.ndarray, k: int | None = None, n_modes: int = 0) -> dict[str, Any]:
    """Build a world state (for `set_state`) from a `(K, 10)` gt.objects table."""
    t = np.asarray(gt_objects, np.float64)
    if t.ndim != 2 or t.shape[1] != len(GT_COLUMNS) or (k is not None and t.shape[0] != k):
        raise ValueError(f"state_from_gt: gt.objects has shape {t.shape}, expected ({k or 'K'}, "
                         f"{len(GT_COLUMNS)}) with columns {GT_COLUMNS}")
    if not np.all(np.isfinite(t)):
        raise ValueError("state_from_gt: gt.objects holds NaN or inf")
    exists = t[:, 8] > 0.5
    mass = np.where(exists, t[:, 5], 1.0)
    if np.any(mass <= 0):
        raise ValueError(f"state_from_gt: masses must be > 0, got {t[:, 5].tolist()}")
    bodies = Bodies(t[:, 0:2].copy(), t[:, 2:4].copy(), t[:, 4].copy(), mass, t[:, 6].astype(np.int64),
                    t[:, 9].astype(np.int64), exists)
    return {"bodies": bodies, "synth": np.zeros(n_modes, np.complex128), "t": 0}
