"""`metaworld:<task>`: Meta-World's Sawyer arm tasks (MuJoCo) behind the World protocol.

Any of Meta-World's v3 tasks (`push-v3`, `pick-place-v3`, `drawer-open-v3`, `button-press-v3`, `reach-v3`, ...):
the goal and object placement are drawn from the episode's seed as Meta-World draws them. Per step
(`repeat` Meta-World steps of 5 x 2.5 ms MuJoCo each: 20 steps per second by default):

- `observation.images.<camera>`: the scene from one of Meta-World's cameras, rendered by MuJoCo
  (`image_size`, default 64);
- `observation.state`: the gripper's centre x, y, z (m), its velocity (m/s) and the finger opening;
- `observation.tactile.fingers`: normal contact force (N) on each finger pad and claw, mean over the step;
- `observation.audio.contact`: modal impact sound of every new contact (gripper metal, objects plastic,
  the table wood), as in tabletop;
- `action`: (dx, dy, dz, grip) in [-1, 1]; `next.reward`: Meta-World's dense reward (0..10);
- ground truth: `gt.bodies` (every object body: position, quaternion, velocity), `gt.objects` (the
  detector schema in image pixels), `gt.segmentation`, `gt.contacts` (impulse table) and `gt.success`
  (Meta-World's own success flag).
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from genworld.spec import OBJECT_COLUMNS, Modality, WorldSpec
from genworld.worlds.base import MissingExtraError, Policy
from genworld.worlds.gym import RandomPolicy, StickyPolicy, resize_frame

TAXELS = ("left_pad", "right_pad", "left_claw", "right_claw")
PROPRIO = ("x", "y", "z", "vx", "vy", "vz", "opening")
BODY_COLUMNS = ("x", "y", "z", "qw", "qx", "qy", "qz", "vx", "vy", "vz")
CAMERAS = ("front", "corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")
MATERIALS = ("metal", "plastic", "wood")  # gripper, objects, table
_PADS = ("leftpad_geom", "rightpad_geom", "leftclaw_it", "rightclaw_it")

# What each task asks, in words (the dataset's task description); tasks not listed are named from their id.
DESCRIPTIONS = {
    "reach-v3": "move the gripper to the goal position",
    "push-v3": "push the puck to the goal",
    "pick-place-v3": "pick up the puck and place it at the goal",
    "door-open-v3": "open the door by its handle",
    "drawer-open-v3": "open the drawer",
    "drawer-close-v3": "close the drawer",
    "button-press-v3": "press the button from the front",
    "button-press-topdown-v3": "press the button from the top",
    "peg-insert-side-v3": "insert the peg into the hole from the side",
    "window-open-v3": "slide the window open",
    "window-close-v3": "slide the window closed",
    "faucet-open-v3": "turn the faucet handle to open it",
    "lever-pull-v3": "pull the lever up",
    "shelf-place-v3": "pick up the puck and place it on the shelf",
    "basketball-v3": "dunk the ball into the basket",
    "sweep-into-v3": "sweep the puck into the hole",
}


def _metaworld() -> Any:
    try:
        import metaworld  # noqa: F401
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS
    except ImportError as e:
        raise MissingExtraError("the metaworld world needs Meta-World: pip install 'genworld[metaworld]'") from e
    return ALL_V3_ENVIRONMENTS


def task_names() -> tuple[str, ...]:
    """Meta-World's v3 task ids."""
    return tuple(sorted(_metaworld()))


def describe(task: str) -> str:
    """The task in words."""
    return DESCRIPTIONS.get(task, task.removesuffix("-v3").replace("-", " "))


@dataclass
class MetaWorldConfig:
    """A Meta-World task and how it is observed."""

    task: str = "push-v3"
    image_size: int = 64
    camera: str = "front"  # front: genworld's view of the table from the front left; or one of Meta-World's
    render_size: int = 0  # 0: render at image_size; larger renders then area-resizes (smoother edges)
    sound: bool = True
    audio_rate: int = 16000  # Hz; a whole multiple of fps
    repeat: int = 4  # Meta-World steps (each 5 x 2.5 ms of MuJoCo) per world step: 80 / repeat fps
    min_impact_speed: float = 0.05  # m/s: slower new contacts are silent
    draw: bool = True  # False: no frames or segmentation (physics only, for planning in the simulator)


class MetaWorldWorld:
    """A Meta-World task: camera, proprio, finger touch, contact sound, ground truth."""

    def __init__(self, cfg: MetaWorldConfig) -> None:
        from genworld.worlds.tabletop.gl import import_mujoco, make_renderer

        mujoco = import_mujoco()  # MUJOCO_GL=egl before Meta-World imports mujoco
        envs = _metaworld()
        if cfg.task not in envs:
            near = difflib.get_close_matches(cfg.task, list(envs), n=3)
            raise ValueError(f"metaworld: task {cfg.task!r} does not exist"
                             f"{'; did you mean ' + ', '.join(near) + '?' if near else ''} "
                             f"(`genworld worlds` lists Meta-World's {len(envs)} tasks)")
        if cfg.camera not in CAMERAS:
            raise ValueError(f"metaworld: camera {cfg.camera!r} unknown; cameras: {', '.join(CAMERAS)}")
        if cfg.image_size < 16:
            raise ValueError(f"metaworld: image_size {cfg.image_size} too small (at least 16)")
        if cfg.repeat < 1 or 80 % cfg.repeat:
            raise ValueError(f"metaworld: repeat {cfg.repeat} must divide 80 (Meta-World runs 80 steps a second)")
        self.fps = 80 // cfg.repeat
        if cfg.sound and cfg.audio_rate % self.fps:
            raise ValueError(f"metaworld: audio_rate {cfg.audio_rate} must be a whole multiple of fps {self.fps}")
        self.mj, self.cfg = mujoco, cfg
        env = envs[cfg.task]()
        env._freeze_rand_vec = False  # each reset draws the goal and object placement from the seed
        env._set_task_called = True
        env._partially_observable = False
        env.max_path_length = 10**9  # episode length is the collector's
        env._step_mujoco_simulation = self._simulate  # per-sub-step contacts for touch and sound
        self.env = env
        m = self.model = env.model
        self.data = env.data
        self._geoms()
        size = cfg.render_size or cfg.image_size
        m.vis.quality.offsamples = 0  # multisampling costs most of a software-rendered frame
        self.renderer = self.seg_renderer = None
        if cfg.draw:
            self.renderer = make_renderer(mujoco, m, size)
            self.seg_renderer = make_renderer(mujoco, m, size)
            self.seg_renderer.enable_segmentation_rendering()
        if cfg.camera == "front":
            cam = mujoco.MjvCamera()
            cam.type = mujoco.mjtCamera.mjCAMERA_FREE
            cam.lookat[:], cam.distance, cam.azimuth, cam.elevation = (0.0, 0.65, 0.05), 1.0, 135.0, -35.0
            self.camera: Any = cam
        else:
            self.camera = m.camera(cfg.camera).id
        self.spp = cfg.audio_rate // self.fps
        self.synth = None
        if cfg.sound:
            from genworld.worlds.sound import ImpactSynth

            self.synth = ImpactSynth(cfg.audio_rate, self.spp, materials=MATERIALS, impulse_ref=0.05)
        from genworld.worlds.tabletop.contacts import ContactTracker

        K = len(self.objects)
        self.tracker = ContactTracker(self.row_of_geom, self.mass_of_geom, K + 1, K + 2, ignore=set(),
                                      dt=float(m.opt.timestep), min_speed=cfg.min_impact_speed)
        self._touch_acc = np.zeros(len(TAXELS))
        self._subs = 0
        self.spec = self._build_spec()
        self._obs: dict[str, np.ndarray] | None = None
        self._prev_tcp = np.zeros(3)

    # -- model structure --------------------------------------------------------------------------
    def _geoms(self) -> None:
        """Rows: 0 the gripper, then every object body (a body with a joint outside the arm); columns add
        the table (everything fixed) last."""
        m, mj = self.model, self.mj
        arm_root = m.body("right_arm_base_link").id
        arm = set()
        for b in range(m.nbody):
            p = b
            while p > 0 and p != arm_root:
                p = m.body_parentid[p]
            if p == arm_root:
                arm.add(b)
        self.objects = [b for b in range(1, m.nbody) if b not in arm and m.body_jntnum[b] > 0
                        and m.body(b).name != "mocap"]
        row_of_body = {b: i + 1 for i, b in enumerate(self.objects)}
        K = len(self.objects)
        self.row_of_geom, self.mass_of_geom, self.material_of_geom = {}, {}, {}
        self.body_of_row = {}
        for g in range(m.ngeom):
            b = int(m.geom_bodyid[g])
            root = b
            while root > 0 and root not in row_of_body and root not in arm:
                root = int(m.body_parentid[root])
            if b in arm:
                row, mat, mass = 0, "metal", 1.0  # the arm: about a kilogram moves with the gripper
            elif root in row_of_body:
                row, mat, mass = row_of_body[root], "plastic", float(m.body_subtreemass[root])
            else:
                row, mat, mass = K + 1, "wood", float("inf")
            self.row_of_geom[g], self.mass_of_geom[g], self.material_of_geom[g] = row, mass, mat
        self.pad_geoms = [m.geom(n).id for n in _PADS]
        # Segmentation: the gripper (the hand and its fingers) is row 0; the rest of the arm is scene, as the
        # table is: the object reader follows the gripper, whose centre is row 0 of gt.objects.
        hand = m.body("hand").id
        def under_hand(b: int) -> bool:
            while b > 0 and b != hand:
                b = int(m.body_parentid[b])
            return b == hand
        self.geom_row = np.array([self.row_of_geom[g] if self.row_of_geom[g] > 0 or under_hand(int(m.geom_bodyid[g]))
                                  else K + 1 for g in range(m.ngeom)], np.int32)
        self.object_names = [m.body(b).name for b in self.objects]
        mj.mj_forward(m, self.data)
        self.radius = [self._body_radius(b) for b in self.objects]

    def _body_radius(self, body: int) -> float:
        m = self.model
        rb = [float(m.geom_rbound[g]) for g in range(m.ngeom) if self.row_of_geom[g] == self.objects.index(body) + 1]
        return max(rb) if rb else 0.02

    def _build_spec(self) -> WorldSpec:
        cfg, S, K = self.cfg, self.cfg.image_size, len(self.objects)
        cam = f"observation.images.{cfg.camera}"
        mods = [Modality(cam, "video", (S, S, 3), self.fps, dtype="uint8",
                         description=f"Meta-World's {cfg.camera} camera")]
        if cfg.sound:
            mods.append(Modality("observation.audio.contact", "audio", (self.spp,), cfg.audio_rate, low=-1.0,
                                 high=1.0, description="impact sound of new contacts (gripper, objects, table)"))
        mods += [
            Modality("observation.tactile.fingers", "touch", (len(TAXELS),), self.fps, names=TAXELS, units="N",
                     low=0.0, description="normal contact force on each finger pad and claw, mean over the step"),
            Modality("observation.state", "proprio", (len(PROPRIO),), self.fps, names=PROPRIO,
                     units="m, m/s, opening 0..1", description="gripper centre, its velocity, finger opening"),
            Modality("action", "action", (4,), self.fps, low=-1.0, high=1.0, names=("dx", "dy", "dz", "grip"),
                     description="gripper motion (x, y, z) and grip (-1 open, 1 close)"),
            Modality("next.reward", "reward", (), self.fps, description="Meta-World's dense reward (0..10)"),
            Modality("next.done", "done", (), self.fps, dtype="bool", description="never: episodes end by length"),
            Modality("gt.bodies", "gt", (K, len(BODY_COLUMNS)), self.fps, names=BODY_COLUMNS,
                     description=f"object bodies ({', '.join(self.object_names)}): pose (m) and velocity (m/s)"),
            Modality("gt.objects", "gt", (K + 1, len(OBJECT_COLUMNS)), self.fps, names=OBJECT_COLUMNS,
                     description="row 0 the gripper, then the objects, in image pixels (detector schema): the "
                                 "centre of its pixels where it shows, else its projected centre"),
            Modality("gt.segmentation", "gt", (S, S), self.fps, dtype="uint8",
                     description="0 scene (table, walls, the arm above the wrist), 1 the gripper, 2 + k object "
                                 "row k + 1"),
            Modality("gt.contacts", "gt", (K + 1, K + 2), self.fps, names=("gripper", *self.object_names, "table"),
                     description="normal impulse (N s) of this step between rows (gripper, objects) and columns "
                                 "(the same and the table)"),
            Modality("gt.success", "gt", (), self.fps, description="Meta-World's success flag for the task"),
        ]
        S0 = cfg.render_size or S
        config = {"task": cfg.task, "description": describe(cfg.task), "camera": cfg.camera, "image_size": S,
                  "render_size": S0, "repeat": cfg.repeat, "sound": cfg.sound, "audio_rate": cfg.audio_rate,
                  "objects": ["gripper", *self.object_names], "palette": [[200, 200, 200]] + [[255, 0, 0]] * K,
                  "label_colours": list(range(-1, K + 1))}  # gt.segmentation label 1 + k: row k, palette k
        return WorldSpec(name=f"metaworld:{cfg.task}", fps=self.fps, modalities=tuple(mods), config=config)

    # -- simulation -------------------------------------------------------------------------------
    def _simulate(self, ctrl: Any, n_frames: int) -> None:
        """Meta-World's `_step_mujoco_simulation`, one MuJoCo step at a time so contacts are read each one."""
        mj, m, d = self.mj, self.model, self.data
        d.ctrl[:] = ctrl
        for _ in range(n_frames):
            mj.mj_step(m, d)
            self.tracker.substep(m, d, self.pad_geoms[0])
            for i, g in enumerate(self.pad_geoms):
                self._touch_acc[i] += self._geom_force(g)
            self._subs += 1
        mj.mj_rnePostConstraint(m, d)

    def _geom_force(self, geom: int) -> float:
        d = self.data
        if d.ncon == 0:
            return 0.0
        c = d.contact
        mask = (c.geom1[: d.ncon] == geom) | (c.geom2[: d.ncon] == geom)
        adr = c.efc_address[: d.ncon][mask]
        adr = adr[adr >= 0]
        return float(np.abs(d.efc_force[adr]).sum()) if len(adr) else 0.0

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start an episode: goal and objects placed as Meta-World draws them from `seed`."""
        from gymnasium.utils import seeding

        env = self.env
        env.np_random, _ = seeding.np_random(seed)
        env.seeded_rand_vec = True
        self.mj.mj_resetData(self.model, self.data)  # no warm start or contact carried over from the last episode
        env.reset()
        self.tracker.reset()
        self.tracker.prime(self.model, self.data)
        self.tracker.begin_step()
        if self.synth is not None:
            self.synth.reset()
        self._touch_acc[:], self._subs = 0.0, 0
        self._prev_tcp = np.asarray(env.tcp_center, np.float64).copy()
        self._success = 0.0
        self._obs = self._observe()
        return {k: v.copy() for k, v in self._obs.items()}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool]:
        """`repeat` Meta-World steps with the action held; returns (o_{t+1}, Meta-World's reward after them, False)."""
        if self._obs is None:
            raise RuntimeError(f"{self.spec.name}: step() before reset()")
        a = np.asarray(action, np.float32).reshape(-1)
        if a.shape != (4,):
            raise ValueError(f"{self.spec.name}: action has shape {a.shape}, expected (4,) (dx, dy, dz, grip)")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{self.spec.name}: action contains NaN or inf: {a.tolist()}")
        if np.any(np.abs(a) > 1.0 + 1e-6):
            raise ValueError(f"{self.spec.name}: action {a.tolist()} outside [-1, 1]")
        self.tracker.begin_step()
        self._touch_acc[:], self._subs = 0.0, 0
        success = 0.0
        for _ in range(self.cfg.repeat):
            _, reward, _, _, info = self.env.step(a)
            success = max(success, float(info.get("success", 0.0)))
        self._success = success
        self._obs = self._observe()
        return {k: v.copy() for k, v in self._obs.items()}, float(reward), False

    # -- observation ------------------------------------------------------------------------------
    def _observe(self) -> dict[str, np.ndarray]:
        cfg, S = self.cfg, self.cfg.image_size
        if cfg.draw:
            frame, labels = self._render()
        else:
            frame, labels = np.zeros((S, S, 3), np.uint8), np.zeros((S, S), np.uint8)
        tcp = np.asarray(self.env.tcp_center, np.float64)
        vel = (tcp - self._prev_tcp) * self.fps
        self._prev_tcp = tcp.copy()
        opening = float(np.clip(self.env._get_obs()[3], 0.0, 1.0))
        touch = self._touch_acc / max(self._subs, 1)
        obs = {
            f"observation.images.{cfg.camera}": frame,
            "observation.tactile.fingers": touch.astype(np.float32),
            "observation.state": np.array([*tcp, *vel, opening], np.float32),
            "gt.bodies": self._bodies(),
            "gt.objects": self._objects(tcp, vel, labels) if cfg.draw else np.zeros(self.spec["gt.objects"].shape,
                                                                                  np.float32),
            "gt.segmentation": labels,
            "gt.contacts": self.tracker.impulses.astype(np.float32),
            "gt.success": np.float32(self._success),
        }
        impacts = self.tracker.end_step()
        if self.synth is not None:
            step_s = 1.0 / self.fps
            for ev in impacts:
                self.synth.hit(self.material_of_geom[ev.geom_a], self.material_of_geom[ev.geom_b], ev.impulse,
                               at_fraction=ev.t / step_s)
            obs["observation.audio.contact"] = self.synth.next_chunk()
        return obs

    def _render(self) -> tuple[np.ndarray, np.ndarray]:
        """The camera frame and the segmentation labels (0 scene, 1 the gripper, 2 + k object row k + 1)."""
        d, S = self.data, self.cfg.image_size
        self.renderer.update_scene(d, self.camera)
        flags = self.renderer.scene.flags
        flags[self.mj.mjtRndFlag.mjRND_SHADOW] = flags[self.mj.mjtRndFlag.mjRND_REFLECTION] = 0  # 8x faster
        frame = resize_frame(self.renderer.render(), S)
        gl = self.renderer.scene.camera[0]
        self._view = (np.array(gl.pos, np.float64), np.array(gl.forward, np.float64), np.array(gl.up, np.float64),
                      float(gl.frustum_near), float(gl.frustum_top))
        self.seg_renderer.update_scene(d, self.camera)
        flags = self.seg_renderer.scene.flags
        flags[self.mj.mjtRndFlag.mjRND_SHADOW] = flags[self.mj.mjtRndFlag.mjRND_REFLECTION] = 0
        seg = self.seg_renderer.render()
        ids = seg[..., 0].astype(np.int64)
        geom = seg[..., 1] == self.mj.mjtObj.mjOBJ_GEOM
        rows = np.where(geom & (ids >= 0), self.geom_row[np.clip(ids, 0, len(self.geom_row) - 1)], -1)
        K = len(self.objects)
        labels = np.where(rows == 0, 1, np.where((rows >= 1) & (rows <= K), rows + 1, 0)).astype(np.uint8)
        if labels.shape[0] != S:
            step = labels.shape[0] // S
            labels = labels[step // 2::step, step // 2::step][:S, :S]
        return frame, labels

    def _bodies(self) -> np.ndarray:
        d = self.data
        out = np.zeros((len(self.objects), len(BODY_COLUMNS)), np.float32)
        for i, b in enumerate(self.objects):
            out[i, :3] = d.xpos[b]
            out[i, 3:7] = d.xquat[b]
            out[i, 7:10] = d.cvel[b][3:]  # linear part of the body's spatial velocity
        return out

    def project(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image pixels (x right, y down) of world points `(..., 3)` through the camera, and their depth (m)."""
        pos, fwd, up, near, top = self._view
        right = np.cross(fwd, up)
        q = np.asarray(p, np.float64) - pos
        depth = np.maximum(q @ fwd, 1e-6)
        f = 0.5 * self.cfg.image_size * near / top  # pixels per unit of x / depth
        half = 0.5 * self.cfg.image_size
        return np.stack([half + f * (q @ right) / depth, half - f * (q @ up) / depth], -1), depth

    def _objects(self, tcp: np.ndarray, vel: np.ndarray, labels: np.ndarray) -> np.ndarray:
        d, S, K = self.data, self.cfg.image_size, len(self.objects)
        out = np.zeros((K + 1, len(OBJECT_COLUMNS)), np.float32)
        pts = np.stack([tcp, *[d.xpos[b] for b in self.objects]])
        vels = np.stack([vel, *[d.cvel[b][3:] for b in self.objects]])
        uv, depth = self.project(pts)
        uv_next, _ = self.project(pts + vels / self.fps)
        pos, fwd, up, near, top = self._view
        radii = np.array([0.03, *self.radius]) * (0.5 * S * near / top) / depth
        for k in range(K + 1):
            mask = labels == k + 1
            visible = bool(mask.any())
            xy = uv[k]
            if visible:  # where it is drawn: the centre of its pixels (the gripper's hand and fingers sit above
                yy, xx = np.nonzero(mask)  # the point between the pads, its tcp)
                xy = np.array([xx.mean() + 0.5, yy.mean() + 0.5])
            out[k] = (*xy, *(uv_next[k] - uv[k]), radii[k], 0.0 if k == 0 else 1.0, k, float(visible), 1.0,
                      0 if k == 0 else 1)
        return out

    # -- state ------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """MuJoCo's full integration state, Meta-World's task attributes and the world's own state."""
        if self._obs is None:
            raise RuntimeError(f"{self.spec.name}: get_state() before reset() has no state to copy")
        mj, m, d = self.mj, self.model, self.data
        sim = np.zeros(mj.mj_stateSize(m, mj.mjtState.mjSTATE_INTEGRATION))
        mj.mj_getState(m, d, sim, mj.mjtState.mjSTATE_INTEGRATION)
        attrs = {k: copy.deepcopy(v) for k, v in vars(self.env).items()
                 if isinstance(v, (np.ndarray, float, int, bool, np.floating, np.integer, tuple))}
        return {"sim": sim, "attrs": attrs, "tracker": self.tracker.get_state(),
                "synth": None if self.synth is None else self.synth.get_state(),
                "prev_tcp": self._prev_tcp.copy(), "success": self._success,
                "obs": {k: v.copy() for k, v in self._obs.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        """Return to a state from `get_state` (stepping on replays it exactly)."""
        mj, m, d = self.mj, self.model, self.data
        mj.mj_setState(m, d, state["sim"], mj.mjtState.mjSTATE_INTEGRATION)
        mj.mj_forward(m, d)
        mj.mj_setState(m, d, state["sim"], mj.mjtState.mjSTATE_INTEGRATION)  # mj_forward writes the warm start
        for k, v in state["attrs"].items():
            setattr(self.env, k, copy.deepcopy(v))
        self.tracker.set_state(state["tracker"])
        if self.synth is not None and state["synth"] is not None:
            self.synth.set_state(state["synth"])
        self._prev_tcp = state["prev_tcp"].copy()
        self._success = state["success"]
        self._obs = {k: v.copy() for k, v in state["obs"].items()}

    def physics_copy(self) -> MetaWorldWorld:
        """A world with the same settings that renders nothing (for planning in the simulator)."""
        return MetaWorldWorld(replace(self.cfg, draw=False))

    def __deepcopy__(self, memo: dict) -> MetaWorldWorld:
        other = MetaWorldWorld(self.cfg)
        if self._obs is not None:
            other.reset(0)
            other.set_state(self.get_state())
        return other

    # -- data collection --------------------------------------------------------------------------
    def policy(self, name: str, rng: np.random.Generator) -> Policy:
        """`mixed` (Meta-World's scripted expert for the task with noise, half the episodes; else sticky),
        `expert`, `random` or `sticky`."""
        box = {"low": -np.ones(4), "high": np.ones(4)}
        if name == "random":
            return RandomPolicy(rng, **box)
        if name == "sticky":
            return StickyPolicy(rng, repeat=0.8, **box)
        if name == "expert":
            return ExpertPolicy(self, rng)
        if name == "mixed":
            return ExpertPolicy(self, rng) if rng.random() < 0.5 else StickyPolicy(rng, repeat=0.8, **box)
        raise ValueError(f"{self.spec.name}: unknown policy {name!r}; policies: mixed, expert, random, sticky")

    def close(self) -> None:
        for r in (getattr(self, "renderer", None), getattr(self, "seg_renderer", None)):
            if r is not None:
                r.close()
        self.renderer = self.seg_renderer = None


class ExpertPolicy:
    """Meta-World's scripted policy for the task, with Gaussian action noise (data that reaches the goal)."""

    def __init__(self, world: MetaWorldWorld, rng: np.random.Generator, noise: float = 0.1) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        cls = ENV_POLICY_MAP.get(world.cfg.task)
        if cls is None:
            raise ValueError(f"{world.spec.name}: Meta-World has no scripted policy for {world.cfg.task!r}")
        self.world, self.rng, self.noise, self.policy = world, rng, noise, cls()

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        a = self.policy.get_action(self.world.env._get_obs())
        a = a + self.rng.normal(0, self.noise, a.shape)
        return np.clip(a, -1.0, 1.0).astype(np.float32)
