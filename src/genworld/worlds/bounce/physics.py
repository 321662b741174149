"""Disc physics in pixel units: sub-stepped integration, impulse collisions between discs and with walls.

Units are those of the rendered frame: positions in pixels (x right, y down, the arena is [0, S]^2),
velocities in pixels per step, accelerations in pixels per step^2. Each step runs `substeps` sub-steps
of semi-implicit Euler; after each sub-step every overlapping, approaching pair gets the exact impulse
of a collision with restitution e (Newton's law along the normal, Coulomb friction along the tangent,
no spin), and overlapping pairs are pushed apart along the normal in inverse proportion to mass. The
push moves positions only, so it changes no kinetic energy: with e = 1, no friction, no drag and no
action, kinetic energy is conserved (up to rounding) and never grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

WALL = -1  # the `j` of a contact with a wall
SLOP = 0.01  # pixels: a push-apart this small does not call for another contact pass


@dataclass
class Bodies:
    """The discs of one world, alive or not; row 0 is the agent. Arrays have K rows."""

    pos: np.ndarray  # (K, 2) float64 pixels
    vel: np.ndarray  # (K, 2) float64 pixels/step
    radius: np.ndarray  # (K,) float64 pixels
    mass: np.ndarray  # (K,) float64
    colour: np.ndarray  # (K,) int64 palette index
    material: np.ndarray  # (K,) int64 material index
    exists: np.ndarray  # (K,) bool

    def copy(self) -> Bodies:
        return Bodies(*(a.copy() for a in (self.pos, self.vel, self.radius, self.mass, self.colour,
                                           self.material, self.exists)))


class Contacts:
    """What touched what during one step: summed impulses, the agent's contacts, and the impacts."""

    def __init__(self, rest_speed: float) -> None:
        self.rest_speed = rest_speed
        self.impulse: dict[tuple[int, int], float] = {}  # (i, j) with i < j, or (i, WALL): summed impulse
        self.agent: list[tuple[float, float, float]] = []  # (nx, ny, impulse) on body 0; n points away from it
        self.impacts: list[tuple[int, int, float, float]] = []  # (i, j or WALL, impulse, fraction of the step)

    def add(self, i: int, j: int, impulse: float, speed: float, frac: float, nx: float, ny: float) -> None:
        """Record an impulse between bodies i < j (or i and `WALL`); (nx, ny) points from i toward j."""
        key = (i, j)
        self.impulse[key] = self.impulse.get(key, 0.0) + impulse
        if i == 0:
            self.agent.append((nx, ny, impulse))
        elif j == 0:
            self.agent.append((-nx, -ny, impulse))
        if speed > self.rest_speed:  # an impact, not a resting contact: it makes a sound
            self.impacts.append((i, j, impulse, frac))


@dataclass(frozen=True)
class Physics:
    """Constants of one arena; `restitution[a, b]` and `friction[a, b]` are per material pair."""

    size: float
    substeps: int
    gravity: float
    drag: float
    max_speed: float  # the agent's top speed (its motor's limit)
    speed_limit: float  # no body moves faster: a safety cap far above usual speeds
    rest_speed: float
    restitution: np.ndarray  # (n_materials, n_materials)
    friction: np.ndarray  # (n_materials, n_materials)
    wall_material: int
    passes: int = 10  # contact passes per sub-step at most (they stop as soon as nothing moves)

    def __post_init__(self) -> None:
        # nested lists: indexing them with Python ints is several times faster than indexing numpy
        object.__setattr__(self, "_e", np.asarray(self.restitution, float).tolist())
        object.__setattr__(self, "_mu", np.asarray(self.friction, float).tolist())

    def step(self, b: Bodies, accel: np.ndarray) -> Contacts:
        """Advance the bodies one step (in place) with agent acceleration `accel` (2,); returns contacts.

        Plain Python floats: with at most a handful of discs, numpy's per-call overhead would dominate.
        """
        ids = [int(i) for i in np.flatnonzero(b.exists)]
        n = len(ids)
        px, py = b.pos[ids, 0].tolist(), b.pos[ids, 1].tolist()
        vx, vy = b.vel[ids, 0].tolist(), b.vel[ids, 1].tolist()
        rad = b.radius[ids].tolist()
        inv_m = (1.0 / b.mass[ids]).tolist()
        mat = b.material[ids].tolist()
        dt = 1.0 / self.substeps
        ax, ay = [0.0] * n, [self.gravity * dt] * n  # velocity change per sub-step
        if n and ids[0] == 0:
            ax[0] += float(accel[0]) * dt
            ay[0] += float(accel[1]) * dt
        keep = (1.0 - self.drag) ** dt
        size, vlim = self.size, self.speed_limit
        cap = [vlim] * n  # the agent's motor holds it to max_speed; objects only meet the safety limit
        if n and ids[0] == 0:
            cap[0] = min(self.max_speed, vlim)
        # Broad phase, once per step: no body travels more than speed_limit in a step, so only pairs and
        # walls closer than that can touch; the sub-steps test those alone.
        reach = vlim + 0.5  # + room for the push-apart of overlaps
        pairs = []
        for i in range(n):
            for j in range(i + 1, n):
                rs = rad[i] + rad[j]
                if math.hypot(px[j] - px[i], py[j] - py[i]) - rs < 2 * reach:
                    pairs.append((i, j, rs * rs))
        walls = [i for i in range(n) if min(px[i], py[i], size - px[i], size - py[i]) - rad[i] < reach]
        may_cap = any(math.hypot(vx[i], vy[i]) + self.substeps * (abs(ax[i]) + abs(ay[i])) >= cap[i]
                      for i in range(n))
        contacts = Contacts(self.rest_speed)
        st = _State(px, py, vx, vy, rad, inv_m, mat)
        for s in range(self.substeps):
            frac = (s + 0.5) / self.substeps
            for i in range(n):
                x, y = (vx[i] + ax[i]) * keep, (vy[i] + ay[i]) * keep
                if may_cap:
                    sp = math.hypot(x, y)
                    if sp > cap[i]:
                        x, y = x * cap[i] / sp, y * cap[i] / sp
                vx[i], vy[i] = x, y
                px[i] += x * dt
                py[i] += y * dt
            # Contacts: a push-apart may press a disc into a wall or a third disc, so repeat (a few
            # passes at most) until a pass moves nothing by more than SLOP; overlaps stay far below a pixel.
            for _ in range(self.passes):
                touched = False
                for i, j, rs2 in pairs:
                    dx, dy = px[j] - px[i], py[j] - py[i]
                    d2 = dx * dx + dy * dy
                    if d2 < rs2 - 1e-9:
                        may_cap = True  # an impulse may speed a body past its cap
                        touched = touched or d2 < rs2 - SLOP
                        c = self._pair(st, i, j)
                        if c is not None:
                            contacts.add(ids[i], ids[j], c[0], c[1], frac, c[2], c[3])
                for i in walls:
                    r = rad[i]
                    lo, hi = r, size - r  # the disc's centre must stay within [lo, hi] on both axes
                    x, y = px[i], py[i]
                    if x < lo or x > hi or y < lo or y > hi:
                        for axis, side, out in ((0, -1, lo - x), (1, -1, lo - y), (0, 1, x - hi), (1, 1, y - hi)):
                            if out > 0:
                                touched = touched or out > SLOP
                                c = self._wall(st, i, axis, side)
                                if c is not None:
                                    contacts.add(ids[i], WALL, c[0], c[1], frac, c[2], c[3])
                if not touched:
                    break
        b.pos[ids, 0], b.pos[ids, 1] = px, py
        b.vel[ids, 0], b.vel[ids, 1] = vx, vy
        return contacts

    def _pair(self, st: _State, i: int, j: int) -> tuple[float, float, float, float] | None:
        """Separate and collide discs i and j; returns (impulse, approach speed, nx, ny) or None."""
        px, py, vx, vy = st.px, st.py, st.vx, st.vy
        dx, dy = px[j] - px[i], py[j] - py[i]
        dist = math.hypot(dx, dy)
        nx, ny = (dx / dist, dy / dist) if dist > 1e-9 else (1.0, 0.0)
        wi, wj = st.inv_m[i], st.inv_m[j]
        w = wi + wj
        overlap = st.rad[i] + st.rad[j] - dist  # separate first: positions only, no energy change
        px[i] -= nx * overlap * wi / w
        py[i] -= ny * overlap * wi / w
        px[j] += nx * overlap * wj / w
        py[j] += ny * overlap * wj / w
        rvx, rvy = vx[j] - vx[i], vy[j] - vy[i]
        vn = rvx * nx + rvy * ny
        if vn >= 0:  # already separating
            return None
        a, b = st.mat[i], st.mat[j]
        e = self._e[a][b] if -vn > self.rest_speed else 0.0
        jn = -(1.0 + e) * vn / w
        vt = -rvx * ny + rvy * nx  # along the tangent (-ny, nx)
        lim = self._mu[a][b] * jn
        jt = min(max(-vt / w, -lim), lim)
        ix, iy = jn * nx - jt * ny, jn * ny + jt * nx
        vx[i] -= ix * wi
        vy[i] -= iy * wi
        vx[j] += ix * wj
        vy[j] += iy * wj
        return math.hypot(jn, jt), -vn, nx, ny

    def _wall(self, st: _State, i: int, axis: int, side: int) -> tuple[float, float, float, float] | None:
        """Put disc i back inside the wall (axis, side) and bounce it; returns (impulse, speed, nx, ny) or None."""
        p, q = (st.px, st.py) if axis == 0 else (st.py, st.px)
        v, vt = (st.vx, st.vy) if axis == 0 else (st.vy, st.vx)
        r = st.rad[i]
        p[i] = r if side < 0 else self.size - r
        u = side * v[i]  # approach speed toward this wall
        if u <= 0:
            return None
        m = 1.0 / st.inv_m[i]
        mw = self.wall_material
        e = self._e[st.mat[i]][mw] if u > self.rest_speed else 0.0
        jn = (1.0 + e) * u * m
        v[i] -= side * jn / m
        lim = self._mu[st.mat[i]][mw] * jn
        jt = min(max(-vt[i] * m, -lim), lim)
        vt[i] += jt / m
        return math.hypot(jn, jt), u, (float(side) if axis == 0 else 0.0), (float(side) if axis == 1 else 0.0)


@dataclass
class _State:
    """The alive bodies of one step as Python lists (x, y, velocity, radius, 1/mass, material)."""

    px: list[float]
    py: list[float]
    vx: list[float]
    vy: list[float]
    rad: list[float]
    inv_m: list[float]
    mat: list[int]


def pair_table(values: np.ndarray, override: float | None, combine: str) -> np.ndarray:
    """(n, n) table of a per-material constant: `override` everywhere, else the pair's combination."""
    v = np.asarray(values, np.float64)
    if override is not None:
        return np.full((len(v), len(v)), float(override))
    if combine == "min":
        return np.minimum(v[:, None], v[None, :])
    return np.sqrt(v[:, None] * v[None, :])  # geometric mean
