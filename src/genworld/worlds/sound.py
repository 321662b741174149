"""Modal impact synthesis: every contact rings the two materials involved, and tails carry across steps.

A struck solid rings as a sum of exponentially damped sinusoids (its modes). Each `Material` lists its
modal frequencies, their decay times (T60: time to fall by 60 dB) and gains, and its hardness (a soft
contact lasts longer and so excites high modes less: rubber on metal sounds duller than metal on
metal), next to the mechanical constants a simulator needs (restitution, friction, density). `ImpactSynth` keeps one complex amplitude
per mode of every material it knows; the sound of a step is the real part of those modes rolled forward
sample by sample. A hit adds amplitude to the modes of both materials at a sample offset inside the
step, so a ring that starts late in one step goes on in the next without a click.

    synth = ImpactSynth(16000, 1000)               # 16 kHz, 16 steps per second
    synth.hit("metal", "wood", impulse=2.0, at_fraction=0.25)
    chunk = synth.next_chunk()                     # (1000,) float32 in [-1, 1]

Silence is exact: with no hit, and once a tail has decayed below `floor`, chunks are exactly zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LIMIT = 0.5  # the output is linear below this amplitude, soft-limited above
# A contact lasting tau excites frequencies up to about 1 / tau: mode gains are scaled by
# exp(-(f / (CONTACT_CUTOFF_HZ * hardness))^2) with the softer material's hardness.
CONTACT_CUTOFF_HZ = 8000.0


@dataclass(frozen=True)
class Material:
    """A solid's mechanical constants and the modes it rings with when struck."""

    name: str
    restitution: float  # bounce coefficient against a material of the same kind
    friction: float  # Coulomb coefficient against a material of the same kind
    density: float  # mass per unit area (relative)
    freqs: tuple[float, ...]  # modal frequencies, Hz
    t60: tuple[float, ...]  # seconds for each mode to decay by 60 dB
    gains: tuple[float, ...]  # relative amplitude of each mode
    hardness: float = 1.0  # in (0, 1]: soft contacts last longer and excite high modes less

    def __post_init__(self) -> None:
        if not (len(self.freqs) == len(self.t60) == len(self.gains)) or not self.freqs:
            raise ValueError(f"material {self.name!r}: freqs, t60 and gains need the same, non-zero length")
        if not 0 < self.hardness <= 1:
            raise ValueError(f"material {self.name!r}: hardness {self.hardness} must be within (0, 1]")


# Presets. Frequencies are those of small objects (a few centimetres), kept below 8 kHz so that they
# survive a 16 kHz sample rate; hard materials ring long and high, soft ones thud low and short.
MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        Material("wood", 0.55, 0.45, 0.7, (420.0, 1150.0, 2250.0), (0.12, 0.08, 0.05), (1.0, 0.6, 0.3), 0.5),
        Material("metal", 0.75, 0.25, 1.6, (1250.0, 2950.0, 4550.0, 6300.0), (0.9, 0.6, 0.45, 0.3),
                 (1.0, 0.7, 0.5, 0.3), 1.0),
        Material("rubber", 0.9, 0.8, 0.9, (180.0, 420.0), (0.04, 0.03), (1.0, 0.4), 0.1),
        Material("glass", 0.8, 0.2, 1.2, (1850.0, 3900.0, 5600.0), (0.5, 0.35, 0.25), (1.0, 0.6, 0.4), 1.0),
        Material("plastic", 0.8, 0.35, 1.0, (700.0, 1700.0, 3300.0), (0.1, 0.07, 0.05), (1.0, 0.5, 0.3), 0.5),
        Material("stone", 0.85, 0.5, 2.5, (95.0, 260.0, 610.0), (0.08, 0.06, 0.04), (1.0, 0.6, 0.3), 0.8),
    )
}


def material(m: Material | str) -> Material:
    """A material by name (or the material itself)."""
    if isinstance(m, Material):
        return m
    try:
        return MATERIALS[m]
    except KeyError:
        raise KeyError(f"unknown material {m!r}; presets: {sorted(MATERIALS)}") from None


class ImpactSynth:
    """A bank of damped modes for a set of materials, read out one step (`samples_per_step`) at a time."""

    def __init__(
        self,
        sample_rate: int,
        samples_per_step: int,
        materials: Sequence[Material | str] = tuple(MATERIALS),
        impulse_ref: float = 4.0,
        gain: float = 0.5,
        floor: float = 1e-4,
    ) -> None:
        """`impulse_ref`: the impulse that rings a mode of gain 1 at amplitude `gain` before the soft limiter;
        `floor`: mode amplitudes below it are cut to zero, so silence is exact."""
        if sample_rate <= 0 or samples_per_step <= 0:
            raise ValueError(f"ImpactSynth: sample_rate ({sample_rate}) and samples_per_step "
                             f"({samples_per_step}) must be positive")
        self.sample_rate, self.samples_per_step = int(sample_rate), int(samples_per_step)
        self.impulse_ref, self.gain, self.floor = float(impulse_ref), float(gain), float(floor)
        self.materials = {material(m).name: material(m) for m in materials}
        freqs, decays, gains, self._slices = [], [], [], {}
        for name, mat in self.materials.items():
            start = len(freqs)
            for f, t60, g in zip(mat.freqs, mat.t60, mat.gains):
                if f < 0.45 * self.sample_rate:  # a mode above Nyquist would alias: leave it out
                    freqs.append(f)
                    decays.append(np.log(1000.0) / (t60 * self.sample_rate))  # nepers per sample
                    gains.append(g)
            self._slices[name] = slice(start, len(freqs))
        w = 2 * np.pi * np.asarray(freqs) / self.sample_rate
        self._pole = np.exp(-np.asarray(decays) + 1j * w)  # (M,) one sample of each mode's rotation
        self._gains = np.asarray(gains)  # (M,)
        self._freqs = np.asarray(freqs, np.float64)  # (M,)
        n = np.arange(self.samples_per_step + 1)
        self._powers = self._pole[:, None] ** n[None, :]  # (M, N + 1): pole^0 .. pole^N
        # Real and imaginary parts apart: Re(c z^n) = Re(c) Re(z^n) - Im(c) Im(z^n). einsum, not @: a BLAS
        # call this small wakes OpenBLAS's threads, which costs milliseconds on a busy machine.
        self._pow_re = np.ascontiguousarray(self._powers.real[:, :samples_per_step])  # (M, N)
        self._pow_im = np.ascontiguousarray(self._powers.imag[:, :samples_per_step])  # (M, N)
        self.reset()

    @property
    def n_modes(self) -> int:
        return len(self._gains)

    def reset(self) -> None:
        """Silence every mode."""
        self._amp = np.zeros(self.n_modes, np.complex128)  # mode amplitudes at the first sample of this step
        self._onsets: dict[int, np.ndarray] = {}  # hits of this step: sample offset -> (M,) amplitudes

    def hit(self, a: Material | str, b: Material | str, impulse: float, at_fraction: float = 0.0) -> None:
        """Ring materials `a` and `b` with `impulse` (same units as `impulse_ref`) at a fraction of this step."""
        if not math.isfinite(impulse) or impulse < 0:
            raise ValueError(f"ImpactSynth.hit: impulse must be finite and >= 0, got {impulse}")
        if impulse == 0:
            return
        n = self.samples_per_step
        n0 = min(max(int(at_fraction * n), 0), n - 1)
        level = self.gain * impulse / self.impulse_ref
        ma, mb = material(a), material(b)
        cutoff = CONTACT_CUTOFF_HZ * min(ma.hardness, mb.hardness)  # the softer side sets the contact time
        vec = self._onsets.get(n0)
        if vec is None:
            vec = self._onsets[n0] = np.zeros(self.n_modes, np.complex128)
        for name in {ma.name, mb.name}:
            sl = self._slices.get(name)
            if sl is None:
                raise KeyError(f"ImpactSynth: material {name!r} is not in this synth; it has {list(self._slices)}")
            excite = self._gains[sl] * np.exp(-np.square(self._freqs[sl] / cutoff))  # (m,) soft contact: duller
            vec[sl] -= 1j * level * excite  # a sine start (amplitude -i) begins at zero: no click

    def next_chunk(self) -> np.ndarray:
        """The sound of this step `(samples_per_step,)` float32 in [-1, 1]; then move on to the next step."""
        n = self.samples_per_step
        out = np.zeros(n)
        nxt = np.zeros(self.n_modes, np.complex128)  # amplitudes at the next step's first sample
        for n0, vec in [(0, self._amp), *self._onsets.items()]:
            live = np.flatnonzero(vec)
            if not len(live):
                continue
            v = vec[live]  # each mode rings as Re(v * pole^(t - n0)) from sample n0 on
            out[n0:] += np.einsum("m,mn->n", v.real, self._pow_re[live, : n - n0])
            out[n0:] -= np.einsum("m,mn->n", v.imag, self._pow_im[live, : n - n0])
            nxt[live] += v * self._powers[live, n - n0]
        nxt[np.abs(nxt) < self.floor] = 0.0
        self._amp, self._onsets = nxt, {}
        peak = float(np.abs(out).max())
        if peak > LIMIT:  # soft knee above LIMIT: loud impacts saturate toward 1 instead of clipping
            loud = np.abs(out) > LIMIT
            over = np.abs(out[loud]) - LIMIT
            out[loud] = np.sign(out[loud]) * (LIMIT + (1 - LIMIT) * np.tanh(over / (1 - LIMIT)))
        return out.astype(np.float32)

    def get_state(self) -> np.ndarray:
        """A copy of the ringing state (mode amplitudes at the start of the next chunk)."""
        if self._onsets:
            raise RuntimeError("ImpactSynth.get_state: call it between steps (after next_chunk), not mid-step")
        return self._amp.copy()

    def set_state(self, state: np.ndarray) -> None:
        """Return to a state from `get_state`."""
        amp = np.asarray(state, np.complex128)
        if amp.shape != (self.n_modes,):
            raise ValueError(f"ImpactSynth.set_state: state has shape {amp.shape}, expected ({self.n_modes},)")
        self.reset()
        self._amp = amp.copy()
