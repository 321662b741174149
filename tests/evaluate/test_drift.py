"""Drift summaries (METRICS.md section 2): the normalised AUC between copy-last (0) and the physical-variance
ceiling (1), its guard against a ceiling no better than copy-last, and the drift slope.

The AUC is checked on held-out bounce episodes (collection seed 23) with systems whose true quality is known
by construction: the ground truth (1), copy-last (0), another independent ±0.5 px re-run (the ceiling's own
kind: near 1) and re-runs from states perturbed by ±1, ±2, ±4 px (each worse than the last: strictly between
0 and 1 and in that order).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from genworld.evaluate.drift import MIN_SPAN, drift_block, normalised_auc
from genworld.evaluate.episodes import collect
from genworld.evaluate.frames import drift_slope, psnr, ssim
from genworld.evaluate.motion import variance_runs

V = "observation.images.top"
C, H = 4, 32


def test_auc_is_0_at_base_1_at_the_ceiling_and_clipped_above_it() -> None:
    base, ceil = np.full(8, 10.0), np.linspace(20.0, 14.0, 8)
    assert normalised_auc(base, base, ceil, 0.5)["auc"] == 0.0
    assert normalised_auc(ceil, base, ceil, 0.5)["auc"] == pytest.approx(1.0)
    mid = normalised_auc((base + ceil) / 2, base, ceil, 0.5)
    assert mid["auc"] == pytest.approx(0.5) and mid["horizons_used"] == 8 and mid["excluded_h"] == []
    above = normalised_auc(ceil + 5.0, base, ceil, 0.5)
    assert above["auc"] == 1.0 and above["auc_unclipped"] > 1.0
    assert normalised_auc(base - 2.0, base, ceil, 0.5)["auc"] < 0  # worse than copy-last is not clipped


def test_auc_leaves_out_horizons_where_the_ceiling_does_not_beat_copy_last() -> None:
    base = np.full(8, 10.0)
    ceil = base + np.array([4, 4, 4, 4, 4, 4, 0.1, -1.0])  # the last two spans: near 0 and negative
    r = normalised_auc(base + 2.0, base, ceil, 0.5)
    assert r["excluded_h"] == [7, 8] and r["horizons_used"] == 6 and r["auc"] == pytest.approx(0.5)
    flat = normalised_auc(base + 2.0, base, base + np.r_[np.full(3, 4.0), np.zeros(5)], 0.5)
    assert flat["available"] is False and "3 of 8" in flat["reason"]


def test_drift_slope_fits_the_last_three_quarters() -> None:
    h = np.arange(1, 33)
    q = np.where(h < 8, 50.0 + 3.0 * h, 30.0 - 0.25 * h)  # h < H/4 = 8 rises: left out of the fit
    assert drift_slope(q) == pytest.approx(-0.25)
    assert drift_slope(np.full(32, 3.0)) == pytest.approx(0.0)


@pytest.fixture(scope="module")
def bounce() -> dict[str, Any]:
    """8 held-out bounce episodes (seed 23), the GT and copy-last windows and the ±0.5 px ceiling runs."""
    from genworld.worlds.bounce import world_from_spec_config

    spec, eps = collect("bounce", 8, C + H, seed=23, policy="mixed", n_objects=4)
    world = world_from_spec_config(spec.config, "bounce")
    true = np.stack([e[V][C: C + H] for e in eps])
    base = np.repeat(np.stack([e[V][C - 1] for e in eps])[:, None], H, 1)
    runs = variance_runs(world, eps, C, H, V, np.random.default_rng(0))
    return {"world": world, "eps": eps, "true": true, "base": base, "ceil": [r[:, 1:] for r in runs]}


def _curves(frames: dict[str, np.ndarray], true: np.ndarray) -> dict[str, dict[str, list[float]]]:
    return {q: {n: fn(f, true).mean(0).tolist() for n, f in frames.items()} for q, fn in (("psnr", psnr),
                                                                                        ("ssim", ssim))}


def test_auc_orders_systems_of_known_quality_on_held_out_bounce(bounce: dict[str, Any]) -> None:
    true = bounce["true"]
    others = {"independent_0.5px": 0.5, "perturbed_1px": 1.0, "perturbed_2px": 2.0, "perturbed_4px": 4.0}
    frames = {"copy_last": bounce["base"], "ground_truth": true}
    for name, amount in others.items():
        frames[name] = variance_runs(bounce["world"], bounce["eps"], C, H, V, np.random.default_rng(1),
                                     amount=amount)[0][:, 1:]
    curves = _curves(frames, true)
    ceil = _curves({"a": bounce["ceil"][0], "b": bounce["ceil"][1]}, true)
    for q in ("psnr", "ssim"):
        curves[q]["physical_variance"] = np.mean([ceil[q]["a"], ceil[q]["b"]], 0).tolist()
    systems = ["copy_last", "ground_truth", *others]
    out, ref = drift_block(curves, {q: curves[q]["ground_truth"] for q in curves}, systems)
    for q in ("psnr", "ssim"):
        a = out["auc"][q]
        assert a["horizons_used"] == H, a  # the ceiling beats copy-last at every horizon here
        assert a["copy_last"] == 0.0 and a["ground_truth"] == 1.0 and ref["auc"][q] == 1.0
        assert a["unclipped"]["ground_truth"] > 1.0  # GT is above the ceiling: that is what the clip is for
        assert 0.85 <= a["independent_0.5px"] <= 1.0, a
        order = [a[n] for n in ("perturbed_1px", "perturbed_2px", "perturbed_4px")]
        assert 1.0 > order[0] > order[1] > order[2] > 0.0, (q, order)
    assert out["slope_horizons"] == [H // 4, H]
    assert out["slope"]["psnr"]["copy_last"] < 0 and out["slope"]["psnr"]["physical_variance"] < 0  # both drift
    assert MIN_SPAN["psnr"] == 0.5


def test_without_a_ceiling_the_auc_is_unavailable_but_slopes_remain(bounce: dict[str, Any]) -> None:
    curves = _curves({"copy_last": bounce["base"], "model": bounce["base"]}, bounce["true"])
    out, ref = drift_block(curves, {q: curves[q]["copy_last"] for q in curves}, ["model", "copy_last"],
                           "no simulator for this world")
    assert out["auc"]["psnr"] == {"available": False, "reason": "no simulator for this world"}
    assert ref["auc"]["ssim"]["available"] is False
    assert set(out["slope"]["psnr"]) == {"model", "copy_last"}


# ---- start-end drift of long free runs (reference-free, `start_end.py`) ---------------------------------------

def _palette_frames(T: int, rng: np.random.Generator) -> np.ndarray:
    """(T, 32, 32, 3) flat-colour frames: a grey background and two moving squares in palette colours."""
    f = np.full((T, 32, 32, 3), 40, np.uint8)
    for t in range(T):
        x = int(rng.integers(0, 24))
        f[t, 4:12, x: x + 8] = (220, 60, 60)
        f[t, 20:28, 24 - x: 32 - x] = (60, 200, 90)
    return f


def test_start_end_qualities_read_each_corruption_in_its_direction() -> None:
    from genworld.evaluate import start_end as S

    rng = np.random.default_rng(0)
    gt = _palette_frames(40, rng)
    pal = S.Palette.fit(gt)
    assert len(pal.colours) == 3 and pal.delta == 8.0  # flat colours: every GT pixel on its palette colour
    q = S.qualities(gt, pal)
    assert np.all(q["palette_purity"] == 1.0) and q["colour_kl"].max() < 0.1
    assert S.deltas(np.repeat(gt[:1], 40, 0), pal) == dict.fromkeys(S.QUALITIES, 0.0)  # copy-last: exactly 0
    blur = S.deltas(S.corrupt(gt, "blur", rng), pal)
    assert blur["sharpness"] > 0.3 and blur["palette_purity"] > 0.05  # the end is blurrier and less pure
    bright = S.deltas(S.corrupt(gt, "brighten", rng), pal)
    assert bright["colour_kl"] < -0.5 and bright["palette_purity"] > 0.4  # the end's colours left the world's
    noise = S.deltas(S.corrupt(gt, "noise", rng), pal)
    assert noise["sharpness"] < -0.1 and noise["palette_purity"] > 0.5
    with pytest.raises(ValueError, match="unknown corruption"):
        S.corrupt(gt, "rotate", rng)


def test_start_end_thresholds_come_from_gt_with_a_floor() -> None:
    from genworld.evaluate import start_end as S

    rng = np.random.default_rng(1)
    seqs = [_palette_frames(30, rng) for _ in range(4)]
    pal = S.Palette.fit(np.concatenate(seqs))
    tau = S.calibrate(seqs, pal)
    worst = {q: max(abs(S.deltas(s, pal)[q]) for s in seqs) for q in S.QUALITIES}
    assert tau == {q: max(S.FLOOR[q], S.MARGIN * worst[q]) for q in S.QUALITIES}
    assert not S.flagged({q: 0.9 * tau[q] for q in S.QUALITIES}, tau)
    assert S.flagged({**dict.fromkeys(S.QUALITIES, 0.0), "colour_kl": -1.01 * tau["colour_kl"]}, tau)  # |Δ| counts
    r = S.summarise(seqs + [S.corrupt(seqs[0], "blur", rng)], pal, tau)
    assert r["flagged"] == pytest.approx(0.2) and r["sequences"] == 5 and r["frames"] == [30] * 5


def _start_end_validation(n_test: int, T: int) -> dict[str, Any]:
    """Thresholds calibrated on 8 GT bounce episodes (seed 11), applied to held-out ones (seed 23): GT and its
    four progressive corruptions."""
    from genworld.evaluate import start_end as S

    _, cal = collect("bounce", 8, T, seed=11, policy="mixed", n_objects=4)
    _, test = collect("bounce", n_test, T, seed=23, policy="mixed", n_objects=4)
    pal = S.Palette.fit(np.concatenate([e[V] for e in cal]))
    tau = S.calibrate([e[V] for e in cal], pal)
    rng = np.random.default_rng(0)
    out = {"ground_truth": S.summarise([e[V] for e in test], pal, tau)}
    for kind in S.CORRUPTIONS:
        out[kind] = S.summarise([S.corrupt(e[V], kind, rng) for e in test], pal, tau)
    return out


def test_start_end_flags_corrupted_held_out_bounce_not_its_ground_truth() -> None:
    r = _start_end_validation(8, 64)
    assert r["ground_truth"]["flagged"] == 0.0
    assert abs(r["ground_truth"]["delta"]["palette_purity"]) < 0.002 and abs(r["ground_truth"]["delta"]["colour_kl"]) < 0.002
    for kind in ("blur", "brighten", "colour_shift", "noise"):
        assert r[kind]["flagged"] == 1.0, (kind, r[kind]["delta"])


@pytest.mark.slow
def test_start_end_validation_on_long_held_out_bounce() -> None:
    """The documented figures: 32 held-out episodes of 200 steps."""
    r = _start_end_validation(32, 200)
    print({k: (v["flagged"], {q: round(x, 4) for q, x in v["delta"].items()}) for k, v in r.items()})
    assert r["ground_truth"]["flagged"] <= 0.05
    for kind in ("blur", "brighten", "colour_shift", "noise"):
        assert r[kind]["flagged"] >= 0.95, (kind, r[kind]["delta"])
