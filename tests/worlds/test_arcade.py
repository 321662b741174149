"""arcade: ALE games by name, frames, the game's own sound against ALE's buffer, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest

from genworld.worlds import make_world

pytest.importorskip("ale_py", reason="arcade needs ale-py (pip install 'genworld[atari]')")

from genworld.worlds.arcade import ALE_SAMPLES_PER_FRAME, resample_kernel, rom_id  # noqa: E402


def rollout(world, seed: int, steps: int, policy: str = "sticky"):
    obs = world.reset(seed=seed)
    pol = world.policy(policy, np.random.default_rng(seed))
    out = []
    for _ in range(steps):
        a = pol(obs)
        nxt, r, d = world.step(a)
        out.append({**obs, "action": a, "next.reward": r, "next.done": d})
        obs = nxt
    return out


@pytest.fixture(scope="module")
def pong():
    w = make_world("arcade:Pong")
    yield w
    w.close()


def test_modalities_have_declared_shapes_and_rates(pong) -> None:
    spec = pong.spec
    assert spec.fps == 15  # 60 Hz / frameskip 4
    audio = spec["observation.audio.game"]
    assert audio.rate == 15360 and audio.shape == (1024,) and audio.rate % spec.fps == 0
    assert spec.action.discrete and spec.action.names[:2] == ("noop", "fire")
    assert spec["observation.images.screen"].shape == (64, 64, 3)
    for i, step in enumerate(rollout(pong, seed=0, steps=10)):
        spec.check_step(step, where=f"step {i}")
    assert step["observation.images.screen"].std() > 5


def test_configured_size_and_rate() -> None:
    w = make_world("arcade:Breakout", image_size=32, frameskip=2, audio_rate=16020)
    assert w.spec.fps == 30 and w.spec["observation.audio.game"].shape == (534,)
    obs = w.reset(seed=0)
    assert obs["observation.images.screen"].shape == (32, 32, 3)
    obs, _, _ = w.step(np.int64(1))
    assert obs["observation.audio.game"].shape == (534,)


def test_same_seed_same_data_and_seeds_differ(pong) -> None:
    a = rollout(pong, seed=3, steps=40)
    b = rollout(pong, seed=3, steps=40)  # the same world, reset again: the sound must not carry over
    for t, (sa, sb) in enumerate(zip(a, b)):
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k], err_msg=f"{k} differs at step {t}")
    assert any(s["observation.audio.game"].any() for s in a)  # the check covered real sound
    c = rollout(pong, seed=4, steps=40)
    assert any(not np.array_equal(x["gt.ram"], y["gt.ram"]) for x, y in zip(a, c))


def test_sound_follows_ales_buffer(pong) -> None:
    """Each step's audio is ALE's raw samples for that step's frames, resampled: sound where ALE had
    sound (onsets in the same step), silence where ALE was silent (but for a 1 ms filter tail)."""
    obs = pong.reset(seed=1)
    pol = pong.policy("sticky", np.random.default_rng(1))
    steps = []  # (audio of o_{t+1}, ALE's raw samples of the frames t -> t+1)
    for _ in range(150):
        obs, _, _ = pong.step(pol(obs))
        steps.append((obs["observation.audio.game"], pong.last_raw_audio.copy()))
    raw_on = np.array([(raw != 128).any() for _, raw in steps])
    out_rms = np.array([np.sqrt((audio**2).mean()) for audio, _ in steps])
    assert raw_on.sum() >= 5
    assert (out_rms[raw_on] > 0.02).all()  # every step with ALE sound has sound
    after_sound = np.r_[False, raw_on[:-1]]
    silent = ~raw_on & ~after_sound
    assert (out_rms[silent] == 0).all()  # silence stays exactly silent
    onsets = np.flatnonzero(raw_on & ~after_sound)
    assert len(onsets) >= 2
    for t in onsets:  # the onset sample sits where ALE's first non-silent sample does
        raw_first = np.flatnonzero(steps[t][1] != 128)[0] * 1024 / (4 * ALE_SAMPLES_PER_FRAME)
        out_first = np.flatnonzero(np.abs(steps[t][0]) > 0.01)[0]
        assert abs(out_first - raw_first) <= 24, (t, raw_first, out_first)


def test_resampler_keeps_a_tone_and_its_level() -> None:
    n_in, n_out = 4 * ALE_SAMPLES_PER_FRAME, 1024  # 30,720 Hz -> 15,360 Hz
    idx, w = resample_kernel(n_in, n_out)
    f = 1000.0
    t_in = np.arange(-64, n_in) / 30720.0  # 64 samples of history, as the world carries them
    y = (np.sin(2 * np.pi * f * t_in)[idx] * w).sum(axis=1)
    t_out = (np.arange(n_out) * 2 - 32) / 30720.0  # output j sits at raw sample 2 j, 32 samples late
    np.testing.assert_allclose(y[40:-40], np.sin(2 * np.pi * f * t_out)[40:-40], atol=0.02)


def test_get_state_set_state_replays_frames(pong) -> None:
    obs = pong.reset(seed=2)
    for a in [1, 2, 3] * 5:
        obs, _, _ = pong.step(np.int64(a))
    state = pong.get_state()
    first = [pong.step(np.int64(a))[0] for a in [2, 2, 3, 0, 1]]
    pong.set_state(state)
    again = [pong.step(np.int64(a))[0] for a in [2, 2, 3, 0, 1]]
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x["observation.images.screen"], y["observation.images.screen"])
        np.testing.assert_array_equal(x["gt.ram"], y["gt.ram"])


def test_rom_names_and_errors(pong) -> None:
    assert rom_id("SpaceInvaders") == "space_invaders" and rom_id("MsPacman") == "ms_pacman"
    assert rom_id("Pong") == "pong"
    with pytest.raises(ValueError, match="Known games include.*Breakout"):
        make_world("arcade:NotAGame")
    with pytest.raises(ValueError, match="did you mean.*breakout"):
        make_world("arcade:Breakot")
    with pytest.raises(ValueError, match="outside 0..5"):
        pong.step(np.int64(9))
    with pytest.raises(ValueError, match="whole multiple of fps"):
        make_world("arcade:Pong", audio_rate=16000)
    with pytest.raises(ValueError, match="unknown policy"):
        pong.policy("smart", np.random.default_rng(0))


def test_copies_and_sim_session(pong) -> None:
    import copy

    from genworld.rollout.sim import SimSession

    obs = pong.reset(seed=5)
    for _ in range(10):
        obs, _, _ = pong.step(np.int64(2))
    twin = copy.deepcopy(pong)
    for a in [1, 2, 3, 3, 2]:
        x, y = pong.step(np.int64(a))[0], twin.step(np.int64(a))[0]
        np.testing.assert_array_equal(x["gt.ram"], y["gt.ram"])
    session = SimSession("arcade:Pong", batch_size=2)
    out = session.step(np.array([0, 1]))
    assert out["observation.images.screen"].shape == (2, 64, 64, 3) and out["next.reward"].shape == (2,)
    session.close()
