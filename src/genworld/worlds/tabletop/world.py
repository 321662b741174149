"""`TabletopWorld`: MuJoCo pushing on a table, with fingertip touch, contact sound and ground truth.

One world step holds the action (target fingertip velocity, as a fraction of `max_speed`) for
`substeps` physics steps. During those sub-steps the world sums the fingertip's touch sensors (their
mean force over the step is the taxel image), the contact impulses between bodies (`gt.contacts`)
and the impacts (new contacts), which ring the two materials involved through the shared modal
synth (`genworld.worlds.sound`); tails carry into later steps. The frame is rendered after the last
sub-step from the fixed camera.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genworld.worlds.base import Policy
from genworld.worlds.tabletop.contacts import ContactTracker
from genworld.worlds.tabletop.gl import import_mujoco, make_renderer
from genworld.worlds.tabletop.scene import (
    MATERIAL_IDS,
    SHAPE_IDS,
    TabletopConfig,
    build_mjcf,
    camera_params,
    parking_spot,
)
from genworld.worlds.tabletop.spec import BODY_COLUMNS, ENV_MATERIAL, FINGER_MATERIAL, build_spec


class TabletopWorld:
    """A fingertip pushing blocks and balls on a table (implements the World protocol)."""

    def __init__(self, cfg: TabletopConfig) -> None:
        mujoco = self.mj = import_mujoco()
        self.cfg = cfg
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(cfg))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.finger_geom = m.geom("finger").id
        self.obj_geoms = [m.geom(o.name).id for o in cfg.objects]
        self.obj_bodies = [m.body(o.name).id for o in cfg.objects]
        self.obj_qpos = [int(m.joint(f"{o.name}_free").qposadr[0]) for o in cfg.objects]
        self.obj_qvel = [int(m.joint(f"{o.name}_free").dofadr[0]) for o in cfg.objects]
        self.finger_body = m.body("finger").id
        K = len(cfg.objects)
        self.K = K
        rim = [m.geom(f"rim{i}").id for i in range(4)]
        row = {self.finger_geom: 0, m.geom("table").id: K + 1, **{g: K + 2 for g in rim}}
        row.update({g: 1 + i for i, g in enumerate(self.obj_geoms)})
        self.material_of_geom = {self.finger_geom: FINGER_MATERIAL, m.geom("table").id: ENV_MATERIAL,
                                 **{g: ENV_MATERIAL for g in rim},
                                 **{g: o.material for g, o in zip(self.obj_geoms, cfg.objects)}}
        self._row_of_geom = row
        mass = {g: float(m.body_mass[m.geom_bodyid[g]]) for g in [self.finger_geom, *self.obj_geoms]}
        mass.update({g: np.inf for g in row if g not in mass})
        self.tracker = ContactTracker(row, mass, K + 1, K + 3, {m.geom("floor").id}, cfg.timestep, cfg.min_speed, cfg.debounce)
        self.renderer = make_renderer(mujoco, self.model, cfg.image_size)
        self.seg_renderer = None
        self._seg_label = np.zeros(m.ngeom + 1, np.uint8)  # geom id -> label; index -1 (no geom) -> 0
        self._seg_label[self.finger_geom] = 1
        self._seg_label[self.obj_geoms] = np.arange(2, K + 2)
        self.cam = camera_params(cfg)
        x_ax, y_ax = np.asarray(self.cam["x_axis"]), np.asarray(self.cam["y_axis"])
        self._cam_axes = np.stack([x_ax, y_ax, np.cross(x_ax, y_ax)])  # (3, 3) rows: camera x, y, z
        self._cam_pos = np.asarray(self.cam["pos"])
        self._focal = 0.5 * cfg.image_size / np.tan(np.radians(self.cam["fovy"]) / 2)  # pixels
        self.spp = cfg.audio_rate // cfg.fps
        self.synth = None
        if cfg.sound:
            from genworld.worlds.sound import ImpactSynth

            self.synth = ImpactSynth(cfg.audio_rate, self.spp, materials=sorted(set(self.material_of_geom.values())),
                                     impulse_ref=cfg.impulse_ref)
        self.active = np.zeros(K, bool)
        self.last_impacts: list = []  # the impacts of the last step (ContactTracker.Impact), for tests
        self.spec = build_spec(cfg, self.cam)
        self._obs: dict[str, np.ndarray] | None = None

    # -- episode ----------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """New episode: 2-4 objects (drawn from `seed`) at random places with random velocities."""
        mj, cfg, d = self.mj, self.cfg, self.data
        rng = np.random.default_rng(seed)
        mj.mj_resetData(self.model, d)
        n = int(rng.integers(cfg.n_objects[0], cfg.n_objects[1] + 1))
        self.active[:] = False
        self.active[rng.choice(self.K, size=n, replace=False)] = True
        lim = cfg.table_half - cfg.finger_half - 0.02
        fxy = rng.uniform(-lim, lim, 2)
        d.qpos[:2] = fxy
        placed = [(fxy, cfg.finger_half * 1.5)]
        for i, o in enumerate(cfg.objects):
            q, v = self.obj_qpos[i], self.obj_qvel[i]
            if not self.active[i]:
                d.qpos[q:q + 3] = np.add(parking_spot(i), (0, 0, o.size))
                d.qpos[q + 3:q + 7] = (1, 0, 0, 0)
                continue
            r = o.size * 1.5
            for _ in range(200):
                xy = rng.uniform(-(cfg.table_half - r - 0.01), cfg.table_half - r - 0.01, 2)
                if all(np.linalg.norm(xy - p) > r + pr + 0.01 for p, pr in placed):
                    break
            placed.append((xy, r))
            yaw = rng.uniform(0, 2 * np.pi) if o.shape == "block" else 0.0
            d.qpos[q:q + 3] = (*xy, o.size)
            d.qpos[q + 3:q + 7] = (np.cos(yaw / 2), 0, 0, np.sin(yaw / 2))
            speed, ang = rng.uniform(0, cfg.launch_speed), rng.uniform(0, 2 * np.pi)
            d.qvel[v:v + 2] = speed * np.cos(ang), speed * np.sin(ang)
        mj.mj_forward(self.model, d)
        self.tracker.reset()
        self.tracker.prime(self.model, d)
        if self.synth is not None:
            self.synth.reset()
        self._obs = self._observe(np.zeros((cfg.touch_rows, 4)))
        return {k: v.copy() for k, v in self._obs.items()}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool]:
        """Hold the target velocity for `substeps` physics steps; returns (o_{t+1}, 0.0, False)."""
        if self._obs is None:
            raise RuntimeError("tabletop: call reset() before step()")
        a = np.asarray(action, np.float64).reshape(-1)
        if a.shape != (2,) or not np.all(np.isfinite(a)):
            raise ValueError(f"tabletop: action must be 2 finite numbers (vx, vy) in [-1, 1], got {action!r}")
        mj, m, d, cfg = self.mj, self.model, self.data, self.cfg
        d.ctrl[:] = np.clip(a, -1.0, 1.0) * cfg.max_speed
        touch = np.zeros(m.nsensordata)
        self.tracker.begin_step()
        for _ in range(cfg.substeps):
            mj.mj_step(m, d)
            touch += d.sensordata
            self.tracker.substep(m, d, self.finger_geom)
        touch = (touch / cfg.substeps).reshape(cfg.touch_rows, 4)
        self._obs = self._observe(touch)
        return {k: v.copy() for k, v in self._obs.items()}, 0.0, False

    # -- observation ------------------------------------------------------------------------------
    def _observe(self, touch: np.ndarray) -> dict[str, np.ndarray]:
        d, cfg = self.data, self.cfg
        self.renderer.update_scene(d, "top")
        obs = {
            "observation.images.top": self.renderer.render().copy(),
            **self._segmentation(),
            "observation.tactile.finger": touch.astype(np.float32),
            "observation.state": np.array([d.qpos[0], d.qpos[1], d.qvel[0], d.qvel[1]], np.float32),
            "gt.bodies": self._bodies(),
            "gt.contacts": self.tracker.impulses.astype(np.float32),
            "gt.finger_contact": np.float32(self.tracker.finger_force),
        }
        impacts = self.tracker.end_step()
        self.last_impacts = impacts
        if self.synth is not None:
            step_s = 1.0 / cfg.fps
            for ev in impacts:
                self.synth.hit(self.material_of_geom[ev.geom_a], self.material_of_geom[ev.geom_b],
                               ev.impulse, at_fraction=ev.t / step_s)
            obs["observation.audio.contact"] = self.synth.next_chunk()
        return obs

    def _segmentation(self) -> dict[str, np.ndarray]:
        """`gt.segmentation`: which body each pixel shows (0 scene, 1 fingertip, 2.. the objects)."""
        if not self.cfg.segmentation:
            return {}
        if self.seg_renderer is None:  # its own renderer: switching one back and forth costs more
            self.seg_renderer = make_renderer(self.mj, self.model, self.cfg.image_size)
            self.seg_renderer.enable_segmentation_rendering()
        self.seg_renderer.update_scene(self.data, "top")
        ids = self.seg_renderer.render()  # (H, W, 2): object id, object type
        is_geom = ids[..., 1] == int(self.mj.mjtObj.mjOBJ_GEOM)  # an int: comparing with the enum is slow
        label = self._seg_label[np.where(is_geom, ids[..., 0], -1)]
        return {"gt.segmentation": label}

    def _bodies(self) -> np.ndarray:
        mj, m, d, cfg = self.mj, self.model, self.data, self.cfg
        out = np.zeros((self.K + 1, len(BODY_COLUMNS)), np.float64)
        v6 = np.zeros(6)
        objs = [(self.finger_body, None)] + [(b, o) for b, o in zip(self.obj_bodies, cfg.objects)]
        for r, (b, o) in enumerate(objs):
            mj.mj_objectVelocity(m, d, mj.mjtObj.mjOBJ_BODY, b, v6, 0)  # (wx, wy, wz, vx, vy, vz) world frame
            u, v = self._project(d.xpos[b])
            exists = 1.0 if o is None else float(self.active[r - 1])
            inside = 0 <= u < cfg.image_size and 0 <= v < cfg.image_size
            out[r, :15] = (*d.xpos[b], *d.xquat[b], *v6[3:], *v6[:3], u, v)
            out[r, 15:] = (exists * inside, exists, m.body_mass[b],
                           MATERIAL_IDS.index(o.material if o else FINGER_MATERIAL),
                           r - 1 if o else self.K, SHAPE_IDS.index(o.shape) if o else SHAPE_IDS.index("finger"),
                           o.size if o else cfg.finger_half)
        return out.astype(np.float32)

    def _project(self, p: np.ndarray) -> tuple[float, float]:
        """Pixel position (x right, y down) of world point `p` in the fixed camera's image."""
        x, y, z = self._cam_axes @ (np.asarray(p) - self._cam_pos)  # camera frame; it looks along -z
        half = 0.5 * self.cfg.image_size
        return half + self._focal * x / -z, half - self._focal * y / -z

    # -- rewinding ---------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """A copy of everything the future depends on: MuJoCo's integration state (time, qpos, qvel,
        act, warm start, ctrl), the objects in play, the contact history and the ringing sound."""
        if self._obs is None:
            raise RuntimeError("tabletop: get_state() before reset() has no state to copy")
        mj = self.mj
        spec = mj.mjtState.mjSTATE_INTEGRATION
        state = np.zeros(mj.mj_stateSize(self.model, spec))
        mj.mj_getState(self.model, self.data, state, spec)
        return {"mjstate": state, "active": self.active.copy(), "tracker": self.tracker.get_state(),
                "synth": None if self.synth is None else self.synth.get_state(),
                "obs": {k: v.copy() for k, v in self._obs.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        """Return to a state from `get_state` (stepping on gives bit-identical results)."""
        mj = self.mj
        mj.mj_setState(self.model, self.data, np.asarray(state["mjstate"]), mj.mjtState.mjSTATE_INTEGRATION)
        mj.mj_forward(self.model, self.data)
        # mj_forward's solver writes the warm start on some MuJoCo releases (3.3): restore it, so stepping on is
        # bit-identical on every release
        mj.mj_setState(self.model, self.data, np.asarray(state["mjstate"]), mj.mjtState.mjSTATE_INTEGRATION)
        self.active[:] = state["active"]
        self.tracker.set_state(state["tracker"])
        if self.synth is not None and state["synth"] is not None:
            self.synth.set_state(state["synth"])
        self._obs = {k: v.copy() for k, v in state["obs"].items()}

    def state_from_gt(self, step: dict[str, np.ndarray]) -> dict[str, Any]:
        """A state rebuilt from one recorded step's `gt.bodies` (poses and velocities of every body).

        The sound's ringing tails and the contact history are not in the ground truth: they start
        silent and empty."""
        if "gt.bodies" not in step:
            raise KeyError("gt.bodies")
        g = np.asarray(step["gt.bodies"], np.float64)
        if g.shape != (self.K + 1, len(BODY_COLUMNS)):
            raise ValueError(f"tabletop.state_from_gt: gt.bodies has shape {g.shape}, expected "
                             f"{(self.K + 1, len(BODY_COLUMNS))}")
        mj, d = self.mj, self.data
        mj.mj_resetData(self.model, d)
        col = {c: i for i, c in enumerate(BODY_COLUMNS)}
        d.qpos[:2] = g[0, col["x"]], g[0, col["y"]]
        d.qvel[:2] = g[0, col["vx"]], g[0, col["vy"]]
        for i in range(self.K):
            row, q, v = g[i + 1], self.obj_qpos[i], self.obj_qvel[i]
            self.active[i] = row[col["exists"]] > 0.5
            d.qpos[q:q + 7] = row[col["x"]:col["qz"] + 1]
            quat = row[col["qw"]:col["qz"] + 1] / np.linalg.norm(row[col["qw"]:col["qz"] + 1])
            rot = np.zeros(9)
            mj.mju_quat2Mat(rot, quat)
            d.qvel[v:v + 3] = row[col["vx"]:col["vz"] + 1]
            d.qvel[v + 3:v + 6] = rot.reshape(3, 3).T @ row[col["wx"]:col["wz"] + 1]  # free-joint spin is local
        mj.mj_forward(self.model, d)
        self.tracker.reset()
        self.tracker.prime(self.model, d)
        if self.synth is not None:
            self.synth.reset()
        self._obs = self._observe(np.zeros((self.cfg.touch_rows, 4)))
        return self.get_state()

    # -- policies and clean-up --------------------------------------------------------------------
    def policy(self, name: str, rng: np.random.Generator) -> Policy:
        """`random`, `persistent`, `seek` (drives the fingertip into objects) or `mixed` (one of them)."""
        from genworld.worlds.tabletop.policies import make_policy

        return make_policy(name, rng, self.K)

    def close(self) -> None:
        for name in ("renderer", "seg_renderer"):
            if getattr(self, name, None) is not None:
                getattr(self, name).close()
                setattr(self, name, None)

    def __deepcopy__(self, memo: dict) -> TabletopWorld:
        # A GL context cannot be copied: build a fresh world and move it to this one's state.
        other = TabletopWorld(self.cfg)
        if self._obs is not None:
            other.set_state(self.get_state())
        return other
