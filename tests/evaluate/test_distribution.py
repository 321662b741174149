"""KD-local (METRICS.md section 5): the kernel distance and its fixed frame encoder, on real bounce frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genworld.data.reader import Dataset
from genworld.evaluate.distribution import FrameEncoder, kd_local, kernel_distance


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
