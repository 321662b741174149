"""Dream videos and `DreamEnv` on a small untrained model (the plumbing, not the model's quality)."""

from __future__ import annotations

from dataclasses import replace

import av
import numpy as np
import pytest
import torch

from genworld.models import WorldModel
from genworld.models.dynamics import DynamicsConfig
from genworld.rollout.dream import dream_video
from genworld.rollout.dream_env import DreamEnv
from genworld.rollout.session import WorldSession
from genworld.train.config import tiny
from genworld.train.synthetic import synthetic_episode, synthetic_spec


def make_session(discrete: bool = False) -> WorldSession:
    torch.manual_seed(0)
    cfg = tiny(synthetic_spec(size=32, samples=200, discrete_action=discrete)).model
    model = WorldModel(replace(cfg, dynamics=DynamicsConfig(dim=64, depth=2, heads=4, window=4)))
    return WorldSession(model, temperature=1.0)


def test_dream_video_has_both_sides_sound_and_every_step(tmp_path) -> None:
    s = make_session()
    ep = synthetic_episode(s.spec, 20, 0)
    out = tmp_path / "dream.mp4"
    res = dream_video(s, ep, context=4, horizon=12, out=out)
    assert res["frames"] == 16 and np.isfinite(res["observation.images.top/psnr_mean"])
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        assert a.sample_rate == 8000  # 3200 Hz resampled to a rate AAC supports
        assert v.width >= 2 * 32 * 4 and v.height >= 32 * 4 + 24  # upscaled truth | model, touch strip below
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 16
    assert not list(tmp_path.glob("*.tmp*"))


def test_dream_refuses_a_horizon_beyond_the_episode(tmp_path) -> None:
    s = make_session()
    ep = synthetic_episode(s.spec, 10, 0)
    with pytest.raises(ValueError, match="needs 14 steps; the episode has 10"):
        dream_video(s, ep, context=4, horizon=10, out=tmp_path / "x.mp4")


@pytest.mark.parametrize("discrete", [False, True])
def test_dream_env_is_a_gymnasium_env(discrete: bool) -> None:
    from gymnasium.utils.env_checker import check_env

    s = make_session(discrete)
    ctx = {k: v[None] for k, v in synthetic_episode(s.spec, 4, 0).items()}
    s.contexts = ctx
    env = DreamEnv(s, context=3, max_steps=5)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    assert obs["observation.images.top"].shape == (32, 32, 3)
    total, steps, truncated = 0.0, 0, False
    while not truncated:
        obs, r, terminated, truncated, _ = env.step(env.action_space.sample())
        total += r
        steps += 1
    assert steps == 5 and np.isfinite(total)
    assert env.render().shape == (32, 32, 3)
