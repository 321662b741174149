"""Modal impact synthesis: silence without hits, onsets where asked, tails across steps, pitch, state."""

from __future__ import annotations

import numpy as np
import pytest

from genworld.worlds.sound import CONTACT_CUTOFF_HZ, LIMIT, MATERIALS, ImpactSynth, Material, material

SR, N = 16000, 1000


def chunks(synth: ImpactSynth, n: int) -> np.ndarray:
    return np.concatenate([synth.next_chunk() for _ in range(n)])


def test_silence_is_exact_without_hits() -> None:
    s = ImpactSynth(SR, N)
    out = chunks(s, 5)
    assert out.dtype == np.float32 and out.shape == (5 * N,)
    assert not out.any()


def test_hit_starts_at_its_onset_and_rings_both_materials() -> None:
    s = ImpactSynth(SR, N)
    s.hit("metal", "wood", impulse=2.0, at_fraction=0.5)
    c = s.next_chunk()
    assert not c[:500].any(), "sound before the onset"
    assert np.abs(c[500:]).max() > 0.01
    spec = np.abs(np.fft.rfft(c[500:] * np.hanning(500), 8192))
    freqs = np.fft.rfftfreq(8192, 1 / SR)
    for f in (MATERIALS["metal"].freqs[0], MATERIALS["wood"].freqs[0]):  # both ring
        band = (freqs > f * 0.9) & (freqs < f * 1.1)
        assert spec[band].max() > 0.2 * spec.max(), f"no energy near {f} Hz"


def test_tail_carries_across_steps_like_one_long_ring() -> None:
    """Chunked output equals the closed-form damped sines of the material, sample for sample."""
    s = ImpactSynth(SR, N, materials=["glass"], gain=0.1, impulse_ref=1.0)
    s.hit("glass", "glass", impulse=1.0, at_fraction=0.3)
    got = chunks(s, 4)
    m = MATERIALS["glass"]
    t = np.arange(4 * N) - 300
    ref = np.zeros(4 * N)
    for f, t60, g in zip(m.freqs, m.t60, m.gains):
        g *= np.exp(-((f / (CONTACT_CUTOFF_HZ * m.hardness)) ** 2))
        decay = np.log(1000.0) / (t60 * SR)
        ref += np.where(t >= 0, 0.1 * g * np.exp(-decay * t) * np.sin(2 * np.pi * f / SR * t), 0.0)
    assert np.abs(ref).max() < LIMIT  # linear range: no limiter
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_tails_decay_to_exact_zero_and_energy_falls() -> None:
    s = ImpactSynth(SR, N)
    s.hit("metal", "metal", 4.0, 0.0)
    energy = [float(np.square(s.next_chunk()).sum()) for _ in range(40)]
    assert energy[0] > 0
    assert all(b <= a for a, b in zip(energy, energy[1:]))
    assert energy[-1] == 0.0, "tail never reaches exact silence"


def test_soft_contacts_sound_duller() -> None:
    """Metal struck by rubber puts less energy in its high modes than metal struck by metal."""
    def high_share(other: str) -> float:
        s = ImpactSynth(SR, N, materials=["metal", "rubber"], gain=0.05)
        s.hit("metal", other, 1.0)
        spec = np.abs(np.fft.rfft(chunks(s, 2))) ** 2
        freqs = np.fft.rfftfreq(2 * N, 1 / SR)
        return float(spec[freqs > 2000].sum() / spec.sum())

    assert high_share("rubber") < 0.5 * high_share("metal")


def test_loud_hits_stay_within_unit_range_and_quiet_ones_are_linear() -> None:
    s = ImpactSynth(SR, N)
    s.hit("metal", "glass", impulse=1000.0)
    assert np.abs(s.next_chunk()).max() <= 1.0
    a, b = ImpactSynth(SR, N), ImpactSynth(SR, N)
    a.hit("wood", "rubber", 0.5, 0.1)
    a.hit("wood", "rubber", 0.5, 0.1)
    b.hit("wood", "rubber", 1.0, 0.1)
    np.testing.assert_allclose(a.next_chunk(), b.next_chunk(), atol=1e-6)


def test_state_round_trip_replays_the_tail() -> None:
    s = ImpactSynth(SR, N)
    s.hit("glass", "stone", 3.0, 0.7)
    s.next_chunk()
    state = s.get_state()
    first = chunks(s, 3)
    s.set_state(state)
    np.testing.assert_array_equal(chunks(s, 3), first)
    with pytest.raises(ValueError, match="shape"):
        s.set_state(np.zeros(3))


def test_bad_input_is_named() -> None:
    s = ImpactSynth(SR, N, materials=["wood"])
    with pytest.raises(ValueError, match="impulse"):
        s.hit("wood", "wood", float("nan"))
    with pytest.raises(KeyError, match="not in this synth"):
        s.hit("wood", "metal", 1.0)
    with pytest.raises(KeyError, match="unknown material"):
        material("cheese")
    with pytest.raises(ValueError, match="same, non-zero length"):
        Material("x", 0.5, 0.5, 1.0, (100.0,), (0.1, 0.2), (1.0,))
    with pytest.raises(ValueError, match="positive"):
        ImpactSynth(0, N)


def test_modes_above_nyquist_are_left_out() -> None:
    low = ImpactSynth(8000, 500, materials=["metal"])
    assert low.n_modes < len(MATERIALS["metal"].freqs)
    low.hit("metal", "metal", 1.0)
    assert np.isfinite(low.next_chunk()).all()
