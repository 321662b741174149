"""`drive:<scenario>`: autonomous driving on highway-env, with a bumper ring of touch, engine and crash sound.

highway-env (Leurent, 2018) simulates vehicles on a road network with kinematic bicycle dynamics; the
other vehicles drive by IDM and MOBIL. One world step holds the action for `substeps` simulation steps
(`fps` steps per second). The camera is the simulator's own top-down rendering, following the ego vehicle
at the centre, area-resized from `render_size` to `image_size`. Every vehicle is painted in its own colour
of the spec's palette (the ego in row 0's), so a vehicle keeps one look for its whole life and the
evaluator can tell vehicles apart.

What the world adds on top of the simulator, in its frame (x forward, y to the right of the driver, m):

- **touch** `observation.tactile.bumper` (8,): taxels on the ego's outline (front, front-right, right,
  rear-right, rear, rear-left, left, front-left). A taxel reads `clip((reach - d) / (2 reach), 0, 1)` where
  d is its distance to the nearest other vehicle or obstacle (negative inside it): 0.5 at touching, 1 at
  `reach` of overlap; a taxel off the road (on road scenarios) reads 1 (the kerb).
- **sound** `observation.audio.car`: the engine note (a harmonic stack at 30 Hz + 3 Hz per m/s, louder
  with throttle), tyre noise in hard turns (steering times speed), a metal impact when a collision starts
  (the shared modal synth, `genworld.worlds.sound`) and the horn (two tones) while the horn action is on.
- **ground truth**: `gt.vehicles` in world coordinates, `gt.objects` (the evaluator's object table, in
  image pixels), `gt.contacts`, `gt.segmentation`, `gt.goal` and `gt.success` (parking).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from genworld.spec import OBJECT_COLUMNS, Modality, WorldSpec
from genworld.worlds.base import MissingExtraError, Policy
from genworld.worlds.gym import RandomPolicy, StickyPolicy, resize_frame

SCENARIOS = ("highway", "merge", "roundabout", "intersection", "parking")
META_ACTIONS = ("lane_left", "idle", "lane_right", "faster", "slower", "horn")
TAXELS = ("front", "front_right", "right", "rear_right", "rear", "rear_left", "left", "front_left")
VEHICLE_COLUMNS = ("x", "y", "heading", "speed", "length", "width", "lane", "exists", "visible", "crashed",
                   "on_road")
PROPRIO = ("x", "y", "vx", "vy", "cos_h", "sin_h", "speed", "lane_offset")
EGO_RGB = (50, 200, 0)
OTHER_RGB = ((230, 40, 40), (40, 90, 230), (240, 200, 30), (200, 60, 220), (30, 210, 210), (250, 130, 20),
             (255, 255, 255), (140, 70, 20), (250, 150, 200), (120, 120, 250), (20, 120, 60), (170, 220, 90),
             (90, 20, 120), (200, 200, 200), (30, 30, 30), (250, 220, 150))
ROAD_RGB = (100, 100, 100)


@dataclass
class DriveConfig:
    """A driving scenario and how it is sampled."""

    scenario: str = "highway"
    image_size: int = 64
    render_size: int = 128  # the simulator renders this square, then it is area-resized to image_size
    scaling: float = 3.0  # pixels per metre at render_size (128 px: a 43 m square around the ego)
    fps: int = 10
    substeps: int = 2  # simulation steps per world step (simulation at fps * substeps Hz)
    actions: str = "continuous"  # continuous: (acceleration, steering, horn) in [-1, 1]; meta: lane changes etc.
    max_vehicles: int = 12  # rows of other vehicles in the ground truth (recycled when a vehicle leaves)
    vehicles: int = 10  # other vehicles on the highway scenario
    lanes: int = 3  # highway lanes
    density: float = 2.0  # highway traffic density (highway-env's vehicles_density; 2: about 2.5 cars in view)
    sound: bool = True
    audio_rate: int = 8000  # Hz; a whole multiple of fps
    reach: float = 0.3  # m: a taxel reads contact from this distance
    draw: bool = True  # False: no frames or segmentation (physics only, for planning in the simulator)


def _highway_env() -> Any:
    try:
        import highway_env  # noqa: F401  (registers the environments)
        from highway_env import envs
    except ImportError as e:
        raise MissingExtraError("the drive world needs highway-env: pip install 'genworld[drive]'") from e
    return envs


def _env_class(scenario: str) -> Any:
    envs = _highway_env()
    cls = {"highway": envs.HighwayEnv, "merge": envs.MergeEnv, "roundabout": envs.RoundaboutEnv,
           "intersection": envs.IntersectionEnv, "parking": envs.ParkingEnv}[scenario]
    if scenario == "parking":
        return cls
    # The road scenarios' rewards index meta-actions; genworld's reward is its own (speed, collision), so the
    # simulator's is switched off (it fails on continuous actions on some releases).
    return type(f"Genworld{cls.__name__}", (cls,), {"_reward": lambda self, action: 0.0,
                                                     "_rewards": lambda self, action: {}})


def _point_rect_distance(p: np.ndarray, centre: np.ndarray, heading: float, half: np.ndarray) -> float:
    """Signed distance (m) from point p to a rotated rectangle (negative inside)."""
    c, s = np.cos(heading), np.sin(heading)
    d = p - centre
    local = np.abs(np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])) - half
    outside = np.linalg.norm(np.maximum(local, 0.0))
    return float(outside if outside > 0 else local.max())


class DriveWorld:
    """A highway-env scenario behind the World protocol (camera, bumper touch, sound, ego kinematics, GT)."""

    def __init__(self, cfg: DriveConfig) -> None:
        if cfg.scenario not in SCENARIOS:
            import difflib

            near = difflib.get_close_matches(cfg.scenario, SCENARIOS, n=1)
            raise ValueError(f"drive: unknown scenario {cfg.scenario!r}"
                             f"{'; did you mean ' + near[0] + '?' if near else ''}; scenarios: {', '.join(SCENARIOS)}")
        if cfg.actions not in ("continuous", "meta"):
            raise ValueError(f"drive: actions {cfg.actions!r} unknown; use continuous or meta")
        if cfg.actions == "meta" and cfg.scenario == "parking":
            raise ValueError("drive:parking: the parking scenario needs continuous actions (--set actions=continuous)")
        if cfg.sound and cfg.audio_rate % cfg.fps:
            raise ValueError(f"drive: audio_rate {cfg.audio_rate} must be a whole multiple of fps {cfg.fps}")
        if cfg.max_vehicles > len(OTHER_RGB):
            raise ValueError(f"drive: max_vehicles {cfg.max_vehicles} above the palette's {len(OTHER_RGB)} colours")
        self.cfg = cfg
        self.K = cfg.max_vehicles
        self.spp = cfg.audio_rate // cfg.fps
        self._cls = _env_class(cfg.scenario)
        self.env = self._make_env()
        self.palette = [EGO_RGB, *OTHER_RGB[: self.K]]
        self.spec = self._build_spec()
        self.synth = None
        if cfg.sound:
            from genworld.worlds.sound import ImpactSynth

            self.synth = ImpactSynth(cfg.audio_rate, self.spp, materials=("metal",), impulse_ref=20.0)
        self._obs: dict[str, np.ndarray] | None = None
        self._mine: dict[str, Any] = {}

    # -- construction -----------------------------------------------------------------------------
    def _env_config(self) -> dict[str, Any]:
        cfg = self.cfg
        out: dict[str, Any] = {
            "screen_width": cfg.render_size, "screen_height": cfg.render_size, "scaling": cfg.scaling,
            "centering_position": [0.5, 0.5], "offscreen_rendering": True, "policy_frequency": cfg.fps,
            "simulation_frequency": cfg.fps * cfg.substeps, "duration": 10**6, "real_time_rendering": False,
            "show_trajectories": False,
        }
        if cfg.actions == "continuous":
            out["action"] = {"type": "ContinuousAction"}
        else:
            out["action"] = {"type": "DiscreteMetaAction", "lateral": True, "longitudinal": True}
        if cfg.scenario != "parking":
            out["observation"] = {"type": "Kinematics"}
        if cfg.scenario == "highway":
            out.update({"vehicles_count": cfg.vehicles, "lanes_count": cfg.lanes, "vehicles_density": cfg.density,
                        "offroad_terminal": False})
        return out

    def _make_env(self) -> Any:
        env = self._cls(config=self._env_config(), render_mode="rgb_array" if self.cfg.draw else None)
        return env

    def _build_spec(self) -> WorldSpec:
        cfg, K, S = self.cfg, self.K, self.cfg.image_size
        mods = [Modality("observation.images.top", "video", (S, S, 3), cfg.fps, dtype="uint8",
                         description="highway-env's top-down view, centred on the ego vehicle")]
        if cfg.sound:
            mods.append(Modality("observation.audio.car", "audio", (self.spp,), cfg.audio_rate, low=-1.0, high=1.0,
                                 description="engine note, tyre noise, collision impact and horn"))
        mods += [
            Modality("observation.tactile.bumper", "touch", (len(TAXELS),), cfg.fps, low=0.0, high=1.0,
                     names=TAXELS, description="bumper ring: 0.5 at contact with a vehicle, obstacle or kerb"),
            Modality("observation.state", "proprio", (len(PROPRIO),), cfg.fps, names=PROPRIO,
                     units="m, m/s (position from the episode's start)",
                     description="ego kinematics: position from the start, velocity, heading, speed, lane offset"),
        ]
        if cfg.actions == "continuous":
            mods.append(Modality("action", "action", (3,), cfg.fps, low=-1.0, high=1.0,
                                 names=("acceleration", "steering", "horn"),
                                 description="acceleration and steering as fractions of highway-env's ranges "
                                             "(+-5 m/s^2, +-45 deg); the horn sounds while horn > 0"))
        else:
            mods.append(Modality("action", "action", (), cfg.fps, dtype="int64", discrete=True, names=META_ACTIONS,
                                 description="highway-env's meta-actions, and idle with the horn"))
        mods += [
            Modality("next.reward", "reward", (), cfg.fps),
            Modality("next.done", "done", (), cfg.fps, dtype="bool"),
            Modality("gt.vehicles", "gt", (K + 1, len(VEHICLE_COLUMNS)), cfg.fps, names=VEHICLE_COLUMNS,
                     description="row 0 the ego, rows 1.. other vehicles (world frame, m, rad, m/s; lane index)"),
            Modality("gt.objects", "gt", (K + 1, len(OBJECT_COLUMNS)), cfg.fps, names=OBJECT_COLUMNS,
                     description="the evaluator's object table: image position and motion (pixels, per step), "
                                 "radius (half the vehicle's diagonal, px), mass, colour id, visible, exists"),
            Modality("gt.contacts", "gt", (K + 1, K + 2), cfg.fps,
                     description="1 where two vehicles touch (symmetric); last column an obstacle or the kerb"),
            Modality("gt.segmentation", "gt", (S, S), cfg.fps, dtype="uint8",
                     description="per pixel: 0 scene, 1 + row of gt.vehicles"),
            Modality("gt.goal", "gt", (4,), cfg.fps, names=("x", "y", "cos_h", "sin_h"),
                     description="parking: the goal pose, from the episode's start (m); zeros elsewhere"),
            Modality("gt.success", "gt", (), cfg.fps, description="parking: 1 when the simulator counts the "
                                                                  "goal reached; elsewhere 0"),
        ]
        config = {"scenario": cfg.scenario, "image_size": S, "palette": [list(c) for c in self.palette],
                  "label_colours": list(range(-1, K + 1)),  # gt.segmentation label 1 + k: row k, palette k
                  "self_propelled": True,  # cars accelerate and brake: no energy check on them
                  "objects": ["ego"] + [f"vehicle_{i}" for i in range(K)], "fps": cfg.fps,
                  "metres_per_pixel": cfg.render_size / (cfg.scaling * S), "actions": cfg.actions,
                  "max_vehicles": K, "reach": cfg.reach}
        return WorldSpec(f"drive:{cfg.scenario}", cfg.fps, tuple(mods),
                         f"highway-env {cfg.scenario}: top-down camera, bumper touch, car sound", config)

    # -- ground truth -----------------------------------------------------------------------------
    def _assign_rows(self) -> None:
        """Give every vehicle on the road a row (and its colour) the first time it is seen."""
        u = self.env.unwrapped
        ego = u.vehicle
        ego.genworld_row, ego.color = 0, EGO_RGB
        live = [v for v in u.road.vehicles if v is not ego]
        taken = {getattr(v, "genworld_row", None) for v in live}
        free = [r for r in range(1, self.K + 1) if r not in taken]
        for v in live:
            if getattr(v, "genworld_row", None) is None:
                if free:
                    v.genworld_row = free.pop(0)
                    v.color = OTHER_RGB[v.genworld_row - 1]
                else:  # more vehicles than rows: it drives unrecorded (drawn grey)
                    v.genworld_row, v.color = -1, (160, 160, 160)

    def _rows(self) -> list[Any]:
        """The vehicle of each row (None where the row is empty)."""
        u = self.env.unwrapped
        rows: list[Any] = [None] * (self.K + 1)
        for v in u.road.vehicles:
            r = getattr(v, "genworld_row", -1)
            if 0 <= r <= self.K:
                rows[r] = v
        return rows

    def _on_road(self, p: np.ndarray) -> bool:
        net = self.env.unwrapped.road.network
        lane = net.get_lane(net.get_closest_lane_index(p))
        return bool(lane.on_lane(p))

    def _touch(self, rows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Taxel readings (8,) and the contact table (K+1, K+2)."""
        cfg, K = self.cfg, self.K
        u = self.env.unwrapped
        ego = u.vehicle
        c, s = np.cos(ego.heading), np.sin(ego.heading)
        fwd, right = np.array([c, s]), np.array([-s, c])
        L, W = ego.LENGTH / 2, ego.WIDTH / 2
        offs = [(L, 0), (L, W), (0, W), (-L, W), (-L, 0), (-L, -W), (0, -W), (L, -W)]
        taxels = np.zeros(len(TAXELS), np.float32)
        contacts = np.zeros((K + 1, K + 2), np.float32)
        others = [v for v in u.road.vehicles if v is not ego] + list(u.road.objects)
        near = [o for o in others if np.linalg.norm(o.position - ego.position) < 12.0]
        for i, (a, b) in enumerate(offs):
            p = ego.position + a * fwd + b * right
            d = min((_point_rect_distance(p, o.position, o.heading, np.array([o.LENGTH, o.WIDTH]) / 2)
                     for o in near), default=np.inf)
            val = float(np.clip((cfg.reach - d) / (2 * cfg.reach), 0.0, 1.0))
            if cfg.scenario != "parking" and not self._on_road(p):
                val = 1.0
            taxels[i] = val
        # contacts between recorded vehicles (and with obstacles / the kerb), from their outlines
        for i, v in enumerate(rows):
            if v is None:
                continue
            corners = self._corners(v)
            for j in range(i + 1, K + 1):
                w = rows[j]
                if w is None or np.linalg.norm(w.position - v.position) > 8.0:
                    continue
                half = np.array([w.LENGTH, w.WIDTH]) / 2
                if min(_point_rect_distance(p, w.position, w.heading, half) for p in corners) <= cfg.reach \
                        or min(_point_rect_distance(p, v.position, v.heading, np.array([v.LENGTH, v.WIDTH]) / 2)
                               for p in self._corners(w)) <= cfg.reach:
                    contacts[i, j] = contacts[j, i] = 1.0
            obst = any(min(_point_rect_distance(p, o.position, o.heading, np.array([o.LENGTH, o.WIDTH]) / 2)
                           for p in corners) <= cfg.reach for o in u.road.objects
                       if getattr(o, "collidable", True) and np.linalg.norm(o.position - v.position) < 12.0)
            kerb = cfg.scenario != "parking" and i == 0 and taxels.max() >= 1.0 and not any(
                contacts[0, 1:K + 1]) and not obst
            if obst or kerb:
                contacts[i, K + 1] = 1.0
        return taxels, contacts

    @staticmethod
    def _corners(v: Any) -> list[np.ndarray]:
        c, s = np.cos(v.heading), np.sin(v.heading)
        fwd, right = np.array([c, s]), np.array([-s, c])
        L, W = v.LENGTH / 2, v.WIDTH / 2
        return [v.position + a * fwd + b * right for a in (L, -L) for b in (W, -W)]

    def _view(self) -> tuple[np.ndarray, float]:
        """The render's world origin (m) and pixels per metre at image_size."""
        cfg = self.cfg
        viewer = getattr(self.env.unwrapped, "viewer", None)
        if viewer is not None:
            origin = np.asarray(viewer.sim_surface.origin, np.float64)
        else:  # physics only: where the viewer would centre
            origin = self.env.unwrapped.vehicle.position - 0.5 * cfg.render_size / cfg.scaling
        return origin, cfg.scaling * cfg.image_size / cfg.render_size

    def _segmentation(self, rows: list[Any], origin: np.ndarray, ppm: float) -> np.ndarray:
        S = self.cfg.image_size
        seg = np.zeros((S, S), np.uint8)
        yy, xx = np.mgrid[0:S, 0:S].astype(np.float64) + 0.5
        wx, wy = origin[0] + xx / ppm, origin[1] + yy / ppm
        for r in range(len(rows) - 1, -1, -1):  # the ego (row 0) last: drawn on top
            v = rows[r]
            if v is None:
                continue
            c, s = np.cos(v.heading), np.sin(v.heading)
            dx, dy = wx - v.position[0], wy - v.position[1]
            inside = (np.abs(c * dx + s * dy) <= v.LENGTH / 2) & (np.abs(-s * dx + c * dy) <= v.WIDTH / 2)
            seg[inside] = r + 1
        return seg

    def _gt(self, rows: list[Any], origin: np.ndarray, ppm: float) -> tuple[np.ndarray, np.ndarray]:
        K, S = self.K, self.cfg.image_size
        veh = np.zeros((K + 1, len(VEHICLE_COLUMNS)), np.float32)
        obj = np.zeros((K + 1, len(OBJECT_COLUMNS)), np.float32)
        prev = self._mine.get("uv")
        for r, v in enumerate(rows):
            obj[r, 6] = r
            if v is None:
                continue
            lane = v.lane_index[2] if getattr(v, "lane_index", None) else -1
            uv = (np.asarray(v.position) - origin) * ppm
            half_diag = 0.5 * np.hypot(v.LENGTH, v.WIDTH) * ppm
            visible = bool(-half_diag <= uv[0] <= S + half_diag and -half_diag <= uv[1] <= S + half_diag)
            veh[r] = (v.position[0], v.position[1], v.heading, v.speed, v.LENGTH, v.WIDTH, lane, 1.0, visible,
                      float(v.crashed), float(getattr(v, "on_road", True)))
            vel = uv - prev[r, :2] if prev is not None and prev[r, 2] > 0 else np.zeros(2)
            obj[r] = (uv[0], uv[1], vel[0], vel[1], half_diag, 1.0, r, float(visible), 1.0, 0.0)
        self._mine["uv"] = np.concatenate([obj[:, :2], obj[:, 8:9]], 1)
        return veh, obj

    def _proprio(self) -> np.ndarray:
        ego = self.env.unwrapped.vehicle
        start = self._mine["start"]
        v = ego.velocity
        offset = 0.0
        if self.cfg.scenario != "parking" and getattr(ego, "lane", None) is not None:
            offset = float(ego.lane.local_coordinates(ego.position)[1])
        return np.array([ego.position[0] - start[0], ego.position[1] - start[1], v[0], v[1], np.cos(ego.heading),
                         np.sin(ego.heading), ego.speed, offset], np.float32)

    # -- sound ------------------------------------------------------------------------------------
    def _sound(self, throttle: float, steering: float, horn: bool, impact: float) -> np.ndarray:
        n, rate = self.spp, self.cfg.audio_rate
        m = self._mine
        speed = float(self.env.unwrapped.vehicle.speed)
        f0, f1 = m["engine_f"], 30.0 + 3.0 * max(speed, 0.0)
        f = np.linspace(f0, f1, n, endpoint=False)
        phase = m["engine_phase"] + 2 * np.pi * np.cumsum(f) / rate
        amp = 0.05 + 0.1 * max(throttle, 0.0)
        out = amp * (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase))
        m["engine_f"], m["engine_phase"] = f1, float(phase[-1] % (2 * np.pi))
        skid = float(np.clip(abs(steering) * speed / 15.0 - 0.3, 0.0, 1.0))
        rng = np.random.default_rng(m["noise_seed"] + m["t"])
        if skid > 0:
            noise = rng.standard_normal(n)
            noise = np.convolve(noise, np.ones(4) / 4, mode="same")  # a little darker than white
            out = out + 0.15 * skid * noise
        if horn:
            t = (m["t"] * n + np.arange(n)) / rate
            out = out + 0.12 * (np.sign(np.sin(2 * np.pi * 440 * t)) + np.sign(np.sin(2 * np.pi * 554 * t)))
        if impact > 0 and self.synth is not None:
            self.synth.hit("metal", "metal", impact)
        if self.synth is not None:
            out = out + self.synth.next_chunk()
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    # -- protocol ---------------------------------------------------------------------------------
    def _observe(self, throttle: float = 0.0, steering: float = 0.0, horn: bool = False, impact: float = 0.0,
                 silent: bool = False) -> dict[str, np.ndarray]:
        cfg, S = self.cfg, self.cfg.image_size
        self._assign_rows()
        rows = self._rows()
        if cfg.draw:
            raw = self.env.render()
            viewer = getattr(self.env.unwrapped, "viewer", None)
            if viewer is not None and not viewer.enabled:
                # highway-env stops drawing when SDL_VIDEODRIVER is "dummy", which gymnasium's classic-control
                # renderers set for the whole process; genworld draws offscreen on purpose
                viewer.enabled = True
                raw = self.env.render()
            frame = resize_frame(raw, S)
        else:
            frame = np.zeros((S, S, 3), np.uint8)
        origin, ppm = self._view()
        veh, obj = self._gt(rows, origin, ppm)
        taxels, contacts = self._touch(rows)
        u = self.env.unwrapped
        goal = np.zeros(4, np.float32)
        success = 0.0
        if cfg.scenario == "parking":
            g, start = u.vehicle.goal, self._mine["start"]
            goal[:] = (g.position[0] - start[0], g.position[1] - start[1], np.cos(g.heading), np.sin(g.heading))
            obs = u.observation_type_parking.observe()
            success = float(u._is_success(obs["achieved_goal"], obs["desired_goal"]))
        out = {"observation.images.top": frame, "observation.tactile.bumper": taxels,
               "observation.state": self._proprio(), "gt.vehicles": veh, "gt.objects": obj, "gt.contacts": contacts,
               "gt.segmentation": self._segmentation(rows, origin, ppm) if cfg.draw else np.zeros((S, S), np.uint8),
               "gt.goal": goal, "gt.success": np.float32(success)}
        if cfg.sound:
            out["observation.audio.car"] = (np.zeros(self.spp, np.float32) if silent
                                            else self._sound(throttle, steering, horn, impact))
        self._mine["crashed"] = bool(u.vehicle.crashed)
        self._mine["contacts"] = contacts
        self._obs = out
        return out

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start an episode (traffic drawn from `seed`); returns o_0 (silent: nothing has happened yet)."""
        self.env.reset(seed=seed)
        u = self.env.unwrapped
        self._mine = {"start": np.asarray(u.vehicle.position, np.float64).copy(), "engine_phase": 0.0,
                      "engine_f": 30.0 + 3.0 * float(u.vehicle.speed), "t": 0,
                      "noise_seed": int(np.random.default_rng(seed).integers(2**31)), "uv": None}
        if self.synth is not None:
            self.synth.reset()
        return self._observe(silent=True)

    def _check_action(self, action: np.ndarray) -> tuple[Any, float, float, bool]:
        name = self.spec.name
        if self.cfg.actions == "meta":
            a = int(np.asarray(action).reshape(()))
            if not 0 <= a < len(META_ACTIONS):
                raise ValueError(f"{name}: action {a} outside 0..{len(META_ACTIONS) - 1} ({', '.join(META_ACTIONS)})")
            horn = META_ACTIONS[a] == "horn"
            idx = META_ACTIONS.index("idle") if horn else a
            throttle = {"faster": 1.0, "slower": -1.0}.get(META_ACTIONS[a], 0.0)
            steer = {"lane_left": -0.5, "lane_right": 0.5}.get(META_ACTIONS[a], 0.0)
            return idx, throttle, steer, horn
        a = np.asarray(action, np.float32).reshape(-1)
        if a.shape != (3,):
            raise ValueError(f"{name}: action has shape {a.shape}, expected (3,) (acceleration, steering, horn)")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}: action contains NaN or inf: {a.tolist()}")
        if np.any(np.abs(a) > 1.0 + 1e-6):
            raise ValueError(f"{name}: action {a.tolist()} outside [-1, 1]")
        return a[:2].copy(), float(a[0]), float(a[1]), bool(a[2] > 0)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool]:
        """Hold the action for `substeps` simulation steps; returns (o_{t+1}, reward, done)."""
        if self._obs is None:
            raise RuntimeError(f"{self.spec.name}: step() before reset()")
        env_action, throttle, steer, horn = self._check_action(action)
        was = self._mine["crashed"]
        _, env_reward, terminated, _, _ = self.env.step(env_action)
        self._mine["t"] += 1
        u = self.env.unwrapped
        crashed = bool(u.vehicle.crashed)
        impact = float(u.vehicle.speed) + 5.0 if crashed and not was else 0.0
        obs = self._observe(throttle, steer, horn, impact)
        if self.cfg.scenario == "parking":
            reward = float(env_reward)
        else:
            reward = -1.0 if crashed else float(np.clip(u.vehicle.speed / 30.0, 0.0, 1.0))
        return obs, reward, bool(terminated)

    def get_state(self) -> dict[str, Any]:
        """A copy of the simulator (vehicles, road, random generator) and of the world's own state."""
        if self._obs is None:
            raise RuntimeError(f"{self.spec.name}: get_state() before reset() has no state to copy")
        return {"env": copy.deepcopy(self.env.unwrapped), "mine": copy.deepcopy(self._mine),
                "synth": None if self.synth is None else self.synth.get_state(),
                "obs": {k: v.copy() for k, v in self._obs.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        """Return to a state from `get_state` (stepping on replays it)."""
        viewer = getattr(self.env.unwrapped, "viewer", None)
        env = copy.deepcopy(state["env"])
        env.render_mode = "rgb_array" if self.cfg.draw else None
        if viewer is not None:  # keep the drawing surface: building one costs more than a step
            viewer.env = env
            env.viewer = viewer
        self.env = env
        self._mine = copy.deepcopy(state["mine"])
        if self.synth is not None and state["synth"] is not None:
            self.synth.set_state(state["synth"])
        self._obs = {k: v.copy() for k, v in state["obs"].items()}

    def physics_copy(self) -> DriveWorld:
        """A world with the same settings that draws no frames (for planning in the simulator)."""
        return DriveWorld(replace(self.cfg, draw=False))

    def __deepcopy__(self, memo: dict) -> DriveWorld:
        other = DriveWorld(self.cfg)
        if self._obs is not None:
            other.set_state(self.get_state())
        return other

    def policy(self, name: str, rng: np.random.Generator) -> Policy:
        """`driver` (keeps a lane, changes lanes and speed now and then, honks rarely), `random`, `sticky`, or
        `mixed` (driver in 3 episodes of 4, sticky in the rest)."""
        if name == "mixed":
            name = "driver" if rng.random() < 0.75 else "sticky"
        if name == "driver":
            return DriverPolicy(self, rng)
        kw: dict[str, Any] = ({"n": len(META_ACTIONS)} if self.cfg.actions == "meta"
                              else {"low": -np.ones(3), "high": np.ones(3)})
        if name == "random":
            return RandomPolicy(rng, **kw)
        if name == "sticky":
            return StickyPolicy(rng, repeat=0.8, **kw)
        raise ValueError(f"{self.spec.name}: unknown policy {name!r}; choose driver, random, sticky or mixed")

    def close(self) -> None:
        self.env.close()


class DriverPolicy:
    """A noisy driver from the ego's own state: steers toward a target lane's centre (changed now and then),
    holds a target speed (redrawn now and then), honks rarely. On parking it drives toward the goal, noisily."""

    def __init__(self, world: DriveWorld, rng: np.random.Generator) -> None:
        self.world, self.rng = world, rng
        self.target_speed = rng.uniform(15, 30)
        self.lane: Any = None  # the lane index it keeps to
        self.t = 0

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        w, rng = self.world, self.rng
        self.t += 1
        if rng.random() < 0.03:
            self.target_speed = rng.uniform(10, 30)
        change = rng.random() < 0.04
        horn = rng.random() < 0.03
        if w.cfg.actions == "meta":
            if horn:
                return np.asarray(META_ACTIONS.index("horn"), np.int64)
            choice = int(rng.choice([1, 3, 4, 0, 2], p=[0.6, 0.15, 0.15, 0.05, 0.05]))
            return np.asarray(choice, np.int64)
        ego = w.env.unwrapped.vehicle
        if w.cfg.scenario == "parking":
            g = w.env.unwrapped.vehicle.goal
            d = g.position - ego.position
            want = np.arctan2(d[1], d[0])
            err = (want - ego.heading + np.pi) % (2 * np.pi) - np.pi
            steer = np.clip(err, -1, 1) * (1 if abs(err) < np.pi / 2 else -1)
            acc = np.clip(0.3 * np.linalg.norm(d) - ego.speed, -1, 1) * (1 if abs(err) < np.pi / 2 else -1)
        else:
            net = w.env.unwrapped.road.network
            here = ego.lane_index
            if change or self.lane is None or self.lane[:2] != here[:2]:
                side = net.all_side_lanes(here) if change else []
                self.lane = side[int(rng.integers(len(side)))] if side else here
            lane = net.get_lane(self.lane)
            s, lat = lane.local_coordinates(ego.position)
            heading_err = (lane.heading_at(s + max(ego.speed, 5.0) * 0.8) - ego.heading + np.pi) % (2 * np.pi) - np.pi
            steer = np.clip(1.5 * heading_err - 0.1 * lat, -1, 1)
            acc = np.clip(0.3 * (self.target_speed - ego.speed), -1, 1)
        a = np.array([acc, steer, 1.0 if horn else -1.0], np.float32) + np.array([0.1, 0.05, 0], np.float32) * \
            rng.standard_normal(3).astype(np.float32)
        return np.clip(a, -1, 1).astype(np.float32)
