"""`genworld data import-video` and the latent-action pipeline it feeds: real MP4 / GIF / image-folder files in,
a dataset without actions out, then `train --actions latent`, a Discrete(K) session, and `eval` on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genworld.cli import main
from genworld.data import Dataset
from genworld.data.import_video import AUDIO_KEY, VIDEO_KEY, decode, parse_size


def moving_square(n: int, size: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, size, size, 3), np.uint8)
    x, y, vx, vy = 10.0, 20.0, rng.uniform(1, 3), rng.uniform(-2, 2)
    for t in range(n):
        x, y = (x + vx) % (size - 8), (y + vy) % (size - 8)
        frames[t, int(y):int(y) + 8, int(x):int(x) + 8] = (250, 60, 30)
    return frames


def write_mp4(path: Path, frames: np.ndarray, fps: int, sound: bool) -> None:
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as box:
        vs = box.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        a = box.add_stream("aac", rate=16000) if sound else None
        if a is not None:
            a.layout = "mono"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            box.mux(vs.encode(vf))
        box.mux(vs.encode(None))
        if a is not None:
            n = int(len(frames) / fps * 16000)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000)).astype(np.float32)
            for s in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(tone[None, s:s + 1024], format="flt", layout="mono")
                af.sample_rate, af.pts = 16000, s
                box.mux(a.encode(af))
            box.mux(a.encode(None))


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    write_mp4(root / "a.mp4", moving_square(60, seed=1), 20, sound=True)  # 3 s at 20 fps
    write_mp4(root / "b.mp4", moving_square(40, size=64, seed=2), 20, sound=False)
    frames = moving_square(12, seed=3)
    Image.fromarray(frames[0]).save(root / "c.gif", save_all=True, duration=100, loop=0,
                                    append_images=[Image.fromarray(f) for f in frames[1:]])
    (root / "broken.mp4").write_bytes(b"not a video at all")
    (root / "empty.mp4").write_bytes(b"")
    return root


def test_import_resamples_cuts_episodes_keeps_sound_and_skips_bad_files(sources: Path, tmp_path: Path,
                                                                        capsys) -> None:  # noqa: ANN001
    out = tmp_path / "clips"
    assert main(["data", "import-video", str(sources), "--out", str(out), "--fps", "10", "--size", "32x32",
                 "--clip-steps", "10", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "broken.mp4" in text and "empty.mp4" in text and "2 skipped" in text
    ds = Dataset(out)
    assert ds.spec[VIDEO_KEY].shape == (32, 32, 3) and ds.spec.fps == 10
    assert ds.spec[AUDIO_KEY].shape == (1600,)  # 16 kHz / 10 fps: a's sound; b and c get silence
    assert not ds.spec.of_kind("action")
    # a: 3 s -> 30 steps -> 3 episodes of 10; b: 2 s -> 2 episodes; c: 12 frames of 0.1 s -> 1.2 s -> 1 episode
    assert ds.num_episodes == 6 and sorted(set(ds.tasks)) == ["a.mp4", "b.mp4", "c.gif"]
    ep = ds.episode(0)
    assert ep[VIDEO_KEY].shape == (10, 32, 32, 3) and ep[VIDEO_KEY].std() > 5
    assert np.abs(ep[AUDIO_KEY]).max() > 0.1  # the tone survived AAC and the resampler
    assert np.abs(ds.episode(3)[AUDIO_KEY]).max() == 0  # b has no sound track: silence
    # re-running resumes: nothing is imported twice
    assert main(["data", "import-video", str(sources), "--out", str(out), "--fps", "10", "--size", "32x32",
                 "--clip-steps", "10", "--quiet"]) == 0
    assert Dataset(out).num_episodes == 6 and "3 already imported" in capsys.readouterr().out


def test_time_resampling_follows_the_timestamps(sources: Path) -> None:
    frames, audio = decode(sources / "a.mp4", 5, (32, 32), None)
    assert len(frames) == 15 and audio is None  # 3 s at 5 fps
    frames10, _ = decode(sources / "a.mp4", 10, (32, 32), None)
    np.testing.assert_allclose(frames10[::2].astype(float), frames.astype(float), atol=3)  # same instants


def test_bad_requests_are_named(sources: Path, tmp_path: Path) -> None:
    from genworld.data.import_video import ImportConfig, import_videos
    from genworld.data.layout import DatasetError

    with pytest.raises(DatasetError, match="broken.mp4"):
        import_videos(ImportConfig(paths=(str(sources / "broken.mp4"),), out=str(tmp_path / "x"), strict=True,
                                   progress=False), log=lambda s: None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_videos(ImportConfig(paths=(str(tmp_path / "nope.mp4"),), out=str(tmp_path / "y"), progress=False))
    with pytest.raises(ValueError, match="HxW"):
        parse_size("big")
    with pytest.raises(ValueError, match="multiple of --fps"):
        import_videos(ImportConfig(paths=(str(sources / "a.mp4"),), out=str(tmp_path / "z"), fps=7,
                                   audio_rate=16000, progress=False))


def test_latent_actions_train_play_as_discrete_and_evaluate(sources: Path, tmp_path: Path) -> None:
    from genworld.rollout.dream_env import DreamEnv
    from genworld.rollout.session import WorldSession

    data = tmp_path / "clips"
    assert main(["data", "import-video", str(sources / "a.mp4"), str(sources / "b.mp4"), "--out", str(data),
                 "--fps", "10", "--size", "32x32", "--clip-steps", "10", "--quiet"]) == 0
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "plain"), "--max-steps", "4",
                 "--no-progress"]) != 0  # no actions: says to use --actions latent
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--actions", "latent:4", "--latent-steps", "20",
                 "--max-steps", "6", "--no-progress"]) == 0
    rec = json.loads((run / "actions.json").read_text())
    assert rec["kind"] == "latent" and rec["k"] == 4 and sum(rec["usage"]) == 50
    sess = WorldSession.load(run)
    assert sess.spec.action.discrete and sess.spec.action.names == ("latent_0", "latent_1", "latent_2", "latent_3")
    env = DreamEnv(sess, context=2, max_steps=3)
    assert env.action_space.n == 4
    env.reset(seed=0)
    obs, *_ = env.step(3)
    assert obs[VIDEO_KEY].shape == (32, 32, 3)
    # play: keys 1..4 are the latent actions; contexts from the dataset carry inferred latent actions
    from genworld.serve.protocol import ActionMap
    from genworld.serve.source import Source, SourceConfig

    src = Source.open(SourceConfig(run=str(run), data=str(data)))
    assert ActionMap.from_spec(src.spec).bindings() == {f"Digit{i + 1}": f"latent_{i}" for i in range(4)}
    assert "latent" in src.reality_reason
    ctx = src.context(1)
    assert ctx.steps["action"].dtype == np.int64 and ctx.steps["action"].max() < 4
    play = src.new_session()
    src.start(play, ctx)
    assert play.step(np.array([2]))[VIDEO_KEY].shape == (1, 32, 32, 3)
    assert main(["dream", "--run", str(run), "--data", str(data), "--episode", "0", "--context", "2", "--horizon", "4",
                 "--latent-actions", "3,1", "--out", str(tmp_path / "d.mp4")]) == 0
    assert (tmp_path / "d.mp4").stat().st_size > 1000
    assert main(["dream", "--run", str(run), "--data", str(data), "--latent-actions", "9", "--out",
                 str(tmp_path / "e.mp4")]) != 0  # outside 0..3
    out = tmp_path / "eval"
    assert main(["eval", "--run", str(run), "--data", str(data), "--out", str(out), "--horizon", "4",
                 "--episodes", "2", "--quiet"]) == 0
    r = json.loads((out / "report.json").read_text())
    la = r["latent_actions"]
    assert r["actions"] == "latent" and la["k"] == 4 and la["probe_accuracy"] is None and sum(la["usage"]) == 2 * 10
    assert len(r["per_horizon"]["psnr"]["model"]) == 4 and r["free_run"]["available"] is False
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "bad"), "--actions", "latent:1"]) != 0


def test_latent_probe_and_nmi_on_known_labels() -> None:
    from genworld.evaluate.latent import nmi, probe

    a = np.array([0, 1, 2, 0, 1, 2] * 10)
    z = (a + 1) % 3  # a relabelling: everything carried
    r = probe(z, a, z, a, k=3)
    assert r["probe_accuracy"] == 1.0 and abs(r["nmi"] - 1.0) < 1e-9
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 3, 6000)
    assert nmi(rng.integers(0, 3, 6000), noise) < 0.01


def test_map_actions_binds_the_true_actions_keys_to_latents(tmp_path: Path) -> None:
    from genworld.serve.source import Source, SourceConfig

    data = tmp_path / "bounce"
    assert main(["collect", "bounce", "--set", "action_mode=discrete", "--episodes", "6", "--steps", "12",
                 "--out", str(data), "--quiet"]) == 0
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--actions", "latent:4", "--latent-steps", "20",
                 "--max-steps", "4", "--no-progress"]) == 0
    rec = json.loads((run / "actions.json").read_text())
    assert rec["true_action"] == "action" and set(rec["latent_of_true"]) <= {
        "none", "up", "down", "left", "right", "up-left", "up-right", "down-left", "down-right"}
    src = Source.open(SourceConfig(run=str(run), data=str(data), map_actions=True))
    amap = src.action_map()
    keys = {"up": ["ArrowUp"], "down": ["ArrowDown"], "left": ["ArrowLeft"], "right": ["ArrowRight"],
            "up-left": ["ArrowUp", "ArrowLeft"]}
    assert set(keys) <= set(rec["latent_of_true"])  # 66 random steps press every direction
    for name, held in keys.items():
        assert int(amap.parse({"keys": held})) == rec["latent_of_true"][name], name
    assert amap.bindings()["Digit1"] == "latent_0"
    plain = tmp_path / "plain"
    assert main(["train", "--data", str(data), "--out", str(plain), "--max-steps", "4", "--no-progress"]) == 0
    with pytest.raises(ValueError, match="nothing to map"):
        Source.open(SourceConfig(run=str(plain), data=str(data), map_actions=True))
