"""Contact bookkeeping for tabletop: per-step impulse tables and impact events for sound.

Every physics sub-step, `ContactTracker.substep` reads MuJoCo's contact list and the normal force of
each contact (what `mj_contactForce` returns), sums them per pair of geoms, and

* adds force * dt to the step's impulse table (rows are the fingertip and the objects; columns the
  same plus the table and the rim), and
* watches for impacts: a pair that touches after being apart for more than `debounce` sub-steps, and
  approaches at more than `min_speed` along the contact normal, is an impact. Its impulse is that of a
  perfectly inelastic collision, m_eff * v_n (m_eff = m_a m_b / (m_a + m_b), a fixed body counting as
  infinitely heavy): the impulse the contact must deliver to stop the approach. Summing the contact
  force over the first milliseconds instead would also count the resting weight, so an object that
  rocks on the table (touching again at almost no speed) would ring like a dropped one.

The velocities are MuJoCo's from the same forward pass that found the contact (`mj_step` computes
`cvel` before it integrates), so they are the speeds just before the contact force acts. State
between steps is only `last_seen` (when each pair last touched) and the sub-step counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Impact:
    """A new contact between two geoms during a step."""

    geom_a: int
    geom_b: int
    impulse: float  # N*s, m_eff * approach speed
    speed: float  # m/s, approach speed along the contact normal
    t: float  # s since the start of the step at which it began


class ContactTracker:
    """Turns MuJoCo's per-sub-step contacts into step impulses and impact events."""

    def __init__(self, row_of_geom: dict[int, int], mass_of_geom: dict[int, float], n_rows: int, n_cols: int,
                 ignore: set[int], dt: float, min_speed: float, debounce: int = 2) -> None:
        """`row_of_geom` maps a geom id to its row/column in the impulse table; `mass_of_geom` its
        body's mass (inf for fixed geoms); geoms in `ignore` (the floor) never count."""
        self.row_of_geom, self.mass_of_geom, self.ignore = row_of_geom, mass_of_geom, set(ignore)
        self.n_rows, self.n_cols = n_rows, n_cols
        self.dt, self.min_speed, self.debounce = dt, min_speed, debounce
        self._v6 = np.zeros(6)
        self.reset()

    def reset(self) -> None:
        self.sub = 0  # sub-step counter since the episode began
        self.step_start = 0
        self.last_seen: dict[tuple[int, int], int] = {}
        self.begin_step()

    def begin_step(self) -> None:
        """Clear the per-step outputs."""
        self.step_start = self.sub
        self.impulses = np.zeros((self.n_rows, self.n_cols), np.float64)
        self.finger_force = False
        self.impacts: list[Impact] = []

    def prime(self, model: Any, data: Any) -> None:
        """Mark the contacts present now (objects resting on the table) as ongoing, not as impacts."""
        for pair in self._forces(model, data):
            self.last_seen[pair] = self.sub

    def _forces(self, model: Any, data: Any) -> dict[tuple[int, int], tuple[float, int]]:
        """{(geom_a, geom_b): (summed normal force, index of its strongest contact)} for this sub-step.

        The normal force of contact i is `efc_force[efc_address[i]]`: with elliptic friction cones
        (the scene's setting) that is exactly the normal component `mj_contactForce` returns, read
        for every contact at once instead of one call per contact."""
        n = data.ncon
        if n == 0:
            return {}
        con = data.contact
        adr = con.efc_address
        fn = np.zeros(n)  # excluded contacts have no constraint row (address -1): no force
        rows = adr >= 0
        if rows.any():  # when every contact is excluded, efc_force is empty
            fn[rows] = data.efc_force[adr[rows]]
        geoms = con.geom  # (n, 2)
        out: dict[tuple[int, int], tuple[float, int, float]] = {}
        for i in np.flatnonzero(fn > 0):  # excluded contacts have no constraint row: fn = 0
            g1, g2 = int(geoms[i, 0]), int(geoms[i, 1])
            if g1 in self.ignore or g2 in self.ignore:
                continue
            pair = (g1, g2) if g1 < g2 else (g2, g1)
            f = float(fn[i])
            total, best, best_f = out.get(pair, (0.0, int(i), f))
            if f > best_f:
                best, best_f = int(i), f
            out[pair] = (total + f, best, best_f)
        return {p: (total, best) for p, (total, best, _) in out.items()}

    def _approach_speed(self, model: Any, data: Any, i: int) -> float:
        """Speed at which contact i's two geoms approach along its normal (m/s, > 0 when closing)."""
        import mujoco

        c = data.contact[i]
        p, n = c.pos, c.frame[:3]  # normal points from geom1 to geom2
        vel = []
        for g in (int(c.geom1), int(c.geom2)):
            mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_GEOM, g, self._v6, 0)
            w, v = self._v6[:3], self._v6[3:]
            vel.append(v + np.cross(w, p - data.geom_xpos[g]))
        return float((vel[0] - vel[1]) @ n)

    def substep(self, model: Any, data: Any, finger_geom: int) -> None:
        """Account for the contacts of the sub-step just taken."""
        for pair, (fn, i) in self._forces(model, data).items():
            ra, rb = self.row_of_geom.get(pair[0], -1), self.row_of_geom.get(pair[1], -1)
            if ra >= 0 and rb >= 0:
                self.impulses[min(ra, rb), max(ra, rb)] += fn * self.dt
                if max(ra, rb) < self.n_rows:
                    self.impulses[max(ra, rb), min(ra, rb)] += fn * self.dt
            if finger_geom in pair:
                self.finger_force = True
            if self.sub - self.last_seen.get(pair, -10**9) > self.debounce:
                speed = self._approach_speed(model, data, i)
                if speed >= self.min_speed:
                    ma, mb = self.mass_of_geom[pair[0]], self.mass_of_geom[pair[1]]
                    m_eff = mb if np.isinf(ma) else ma if np.isinf(mb) else ma * mb / (ma + mb)
                    self.impacts.append(Impact(pair[0], pair[1], m_eff * speed, speed,
                                               (self.sub - self.step_start) * self.dt))
            self.last_seen[pair] = self.sub
        self.sub += 1

    def end_step(self) -> list[Impact]:
        """The impacts that began during this step; forgets pairs long apart."""
        stale = [p for p, s in self.last_seen.items() if self.sub - s > self.debounce + 1]
        for p in stale:
            del self.last_seen[p]
        return sorted(self.impacts, key=lambda e: (e.t, e.geom_a, e.geom_b))

    def get_state(self) -> tuple[int, dict[tuple[int, int], int]]:
        return self.sub, dict(self.last_seen)

    def set_state(self, state: tuple[int, dict[tuple[int, int], int]]) -> None:
        self.sub, last_seen = state
        self.last_seen = dict(last_seen)
        self.begin_step()
