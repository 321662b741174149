"""KD-local (METRICS.md section 5): the kernel distance and its fixed frame encoder, on real bounce frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genworld.data.reader import Dataset
from genworld.evaluate.distribution import FrameEncoder, feature_scale, kd_local, kernel_distance


def test_kernel_distance_is_near_zero_for_one_distribution_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    same = [kernel_distance(rng.normal(size=(150, 16)), rng.normal(size=(200, 16))) for _ in range(5)]
    shifted = kernel_distance(rng.normal(size=(150, 16)), rng.normal(0.5, 1.0, size=(200, 16)))
    wider = kernel_distance(rng.normal(size=(150, 16)), rng.normal(0.0, 1.5, size=(200, 16)))
    assert abs(np.mean(same)) < 0.02 * shifted  # unbiased: centred on 0 when nothing differs
    assert shifted > 10 * max(abs(v) for v in same) and wider > 10 * max(abs(v) for v in same)
    with pytest.raises(ValueError, match="at least 2 samples"):
        kernel_distance(np.zeros((1, 4)), np.zeros((5, 4)))


def test_the_encoder_is_the_same_everywhere_and_checks_its_input() -> None:
    a, b = FrameEncoder(), FrameEncoder()
    assert a.sha256 == b.sha256 and len(a.sha256) == 64
    frames = np.random.default_rng(1).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    fa = a(frames)
    assert fa.shape == (5, 224) and np.isfinite(fa).all()
    np.testing.assert_array_equal(fa, b(frames))
    assert FrameEncoder(seed=1).sha256 != a.sha256
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        a(frames[..., 0])


def test_kd_local_separates_broken_frames_from_the_worlds_own(bounce_data: Path) -> None:
    ds = Dataset(bounce_data)
    key = "observation.images.top"
    eps = np.stack([ds.episode(i)[key][:32] for i in range(12)])  # (12, 32, 64, 64, 3)
    truth, other = eps[:6], eps[6:]
    background = np.broadcast_to(np.array(ds.spec.config["background"], np.uint8), truth.shape)
    faded = (truth.astype(np.float32) * 0.5 + background * 0.5).astype(np.uint8)  # every object half gone
    noisy = np.clip(truth.astype(np.int16) + np.random.default_rng(2).integers(-40, 41, truth.shape), 0, 255)
    res = kd_local({"other_episodes": other, "faded": faded, "noisy": noisy.astype(np.uint8),
                    "blank": background.copy()}, truth, first_h=17)
    kd = res["kd_local"]
    assert res["horizons"] == [17, 32] and res["samples"] == 6 * 16 and res["floor"] is not None
    real = max(abs(kd["other_episodes"]), abs(res["floor"]))  # the world against itself
    for broken in ("faded", "noisy", "blank"):
        assert kd[broken] > 5 * real, (broken, kd, res["floor"])
    with pytest.raises(ValueError, match="first_h"):
        kd_local({"x": truth}, truth, first_h=40)


def test_a_feature_the_world_never_varies_does_not_blow_the_distance_up() -> None:
    """A static Atari screen leaves some encoder channels dark in every frame (spread 0). A model whose frames
    light such a channel by a hair must not read as 10^20 away (a Pong report did, with spread + 1e-6)."""
    rng = np.random.default_rng(3)
    gt, same = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    gt[:, 0] = 0.0  # the dead channel
    same[:, 0] = 1e-3  # the other side lights it, barely
    scale = feature_scale(gt)
    assert scale[0] == pytest.approx(0.1 * np.median(gt.std(0)[1:])) and np.allclose(scale[1:], gt.std(0)[1:])
    mu = gt.mean(0)
    kd = kernel_distance((same - mu) / scale, (gt - mu) / scale)
    shifted = kernel_distance((rng.normal(0.5, 1.0, size=(200, 16)) - mu) / scale, (gt - mu) / scale)
    assert abs(kd) < 0.05 * shifted  # the hair counts for next to nothing; a real shift still counts
    assert kernel_distance((same - mu) / (gt.std(0) + 1e-6), (gt - mu) / (gt.std(0) + 1e-6)) > 1e6  # the old scale
    np.testing.assert_array_equal(feature_scale(np.zeros((5, 3))), np.ones(3))  # all frames alike: raw units


def test_reports_print_huge_distances_readably() -> None:
    from genworld.evaluate.report import _fmt

    assert _fmt(1.1684e15) == "1.17e+15" and _fmt(5.0671) == "5.067" and _fmt(-0.09) == "-0.090" and _fmt(None) == "–"
