"""Write/read round trips for every modality, appending, the window sampler and LeRobot v2.1 reading."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from genworld.data import Dataset, DatasetError, DatasetWriter, WindowSampler


def test_every_modality_round_trips(tmp_path, spec, make_episode) -> None:
    eps = [make_episode(spec, n, seed) for seed, n in enumerate([12, 7, 20, 9, 15])]
    with DatasetWriter(tmp_path / "ds", spec, episodes_per_file=2) as w:
        for ep in eps:
            w.add_episode(ep, task="test")
    ds = Dataset(tmp_path / "ds")
    assert ds.num_episodes == 5 and [ds.episode_length(i) for i in range(5)] == [12, 7, 20, 9, 15]
    assert ds.spec == spec and ds.fps == spec.fps and ds.version == "v3.0"
    for i, ep in enumerate(eps):
        got = ds.episode(i)
        assert set(got) == set(spec.keys())
        frames = got["observation.images.cam"].astype(int)
        assert np.abs(frames - ep["observation.images.cam"]).max() <= 2  # lossless codec; tolerance for safety
        assert np.abs(got["observation.audio.mic"] - ep["observation.audio.mic"]).max() < 2e-7  # 24-bit FLAC
        for k in ("observation.tactile.pad", "observation.state", "gt.objects", "action", "next.reward", "next.done"):
            assert got[k].dtype == ep[k].dtype and np.array_equal(got[k], ep[k]), k


def test_layout_is_lerobot_v3(tmp_path, spec, make_episode) -> None:
    with DatasetWriter(tmp_path / "ds", spec, episodes_per_file=2) as w:
        for s in range(3):
            w.add_episode(make_episode(spec, 10, s))
    root = tmp_path / "ds"
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 3 and info["total_frames"] == 30
    assert info["features"]["observation.audio.mic"]["dtype"] == "audio"
    assert sorted(p.name for p in (root / "videos/observation.images.cam/chunk-000").iterdir()) == \
        ["file-000.mp4", "file-001.mp4"]
    assert (root / "audio/observation.audio.mic/chunk-000/file-000.flac").exists()
    eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert eps["videos/observation.images.cam/from_timestamp"] == [0.0, 10 / spec.fps]
    stats = json.loads((root / "meta/stats.json").read_text())
    assert stats["observation.state"]["count"] == [30]
    assert pq.read_table(root / "meta/tasks.parquet").num_rows == 1


def test_append_resumes_and_other_spec_is_refused(tmp_path, spec, make_episode) -> None:
    root = tmp_path / "ds"
    with DatasetWriter(root, spec) as w:
        w.add_episode(make_episode(spec, 8, 0))
    with DatasetWriter(root, spec) as w:
        assert w.num_episodes == 1
        w.add_episode(make_episode(spec, 8, 1))
    ds = Dataset(root)
    assert ds.num_episodes == 2
    assert np.array_equal(ds.episode(1)["action"], make_episode(spec, 8, 1)["action"])
    other = type(spec)(name="other", fps=spec.fps, modalities=spec.modalities)
    with pytest.raises(DatasetError, match="different world"):
        DatasetWriter(root, other)


def test_sampler_windows_are_pure_and_inside_episodes(tmp_path, spec, make_episode) -> None:
    with DatasetWriter(tmp_path / "ds", spec, episodes_per_file=3) as w:
        for s, n in enumerate([6, 30, 4, 12]):
            ep = make_episode(spec, n, s)
            ep["observation.state"][:, 0] = s  # episode id, to check windows do not straddle episodes
            ep["observation.state"][:, 1] = np.arange(n)
            w.add_episode(ep)
    ds = Dataset(tmp_path / "ds")
    s1, s2 = WindowSampler(ds, 5, 16, seed=3), WindowSampler(ds, 5, 16, seed=3)
    for i in (0, 7, 100):
        a, b = s1.batch(i), s2.batch(i)
        assert all(np.array_equal(a[k], b[k]) for k in a)
        st = a["observation.state"]  # (B, L, 4)
        assert st.shape == (16, 5, 4) and a["observation.images.cam"].shape == (16, 5, 16, 16, 3)
        assert (st[:, :, 0] == st[:, :1, 0]).all()  # one episode per window
        assert (np.diff(st[:, :, 1], axis=1) == 1).all()  # consecutive steps
    assert not np.array_equal(s1.batch(0)["action"], s1.batch(1)["action"])
    assert set(np.unique(WindowSampler(ds, 5, 256, episodes=[0, 2, 3]).batch(0)["observation.state"][:, 0, 0])) \
        == {0.0, 3.0}  # episode 2 (4 steps) is too short for 5-step windows
    with pytest.raises(ValueError, match="long enough"):
        WindowSampler(ds, 31, 2)


def test_cache_is_built_once_and_rebuilt_when_the_data_change(tmp_path, spec, make_episode) -> None:
    root = tmp_path / "ds"
    with DatasetWriter(root, spec) as w:
        w.add_episode(make_episode(spec, 10, 0))
    Dataset(root).episode(0)
    caches = sorted(p.name for p in (root / ".cache").iterdir())
    assert "observation.images.cam-16x16.u8.bin" in caches and "observation.audio.mic.f32.bin" in caches
    with DatasetWriter(root, spec) as w:
        w.add_episode(make_episode(spec, 10, 1))
    ds = Dataset(root)
    assert np.array_equal(ds.episode(1)["observation.audio.mic"].shape, (10, 100))
    small = Dataset(root, image_size=(8, 8)).episode(1)["observation.images.cam"]
    assert small.shape == (10, 8, 8, 3)


def test_reads_lerobot_v21(tmp_path, make_v21) -> None:
    rng = np.random.default_rng(0)
    eps = []
    for n in (9, 13):
        frames = np.zeros((n, 16, 16, 3), np.uint8)
        frames[:, :, :8] = (20, 200, 90)
        eps.append({"observation.images.laptop": frames,
                    "observation.state": rng.normal(size=(n, 3)).astype(np.float32),
                    "action": rng.normal(size=(n, 3)).astype(np.float32)})
    make_v21(tmp_path / "v21", eps)
    ds = Dataset(tmp_path / "v21")
    assert ds.version == "v2.1" and ds.num_episodes == 2 and ds.fps == 10
    assert ds.spec.action.key == "action" and ds.spec["observation.state"].kind == "proprio"
    assert ds.spec["observation.state"].names == ("a", "b", "c")
    got = ds.episode(1)
    assert np.array_equal(got["action"], eps[1]["action"])
    assert np.abs(got["observation.images.laptop"].astype(int) - eps[1]["observation.images.laptop"]).max() <= 2
    assert ds.task(0) == "grasp"
    assert WindowSampler(ds, 8, 4).batch(0)["observation.state"].shape == (4, 8, 3)
