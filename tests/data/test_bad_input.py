"""Bad input gets one clear error naming the path/key/episode, and nothing already written is lost."""

from __future__ import annotations

import numpy as np
import pytest

from genworld.data import Dataset, DatasetError, DatasetWriter


@pytest.fixture
def two_files(tmp_path, spec, make_episode):
    root = tmp_path / "ds"
    with DatasetWriter(root, spec, episodes_per_file=1) as w:
        w.add_episode(make_episode(spec, 10, 0))
        w.add_episode(make_episode(spec, 10, 1))
    return root


def test_missing_info_and_directory(tmp_path) -> None:
    with pytest.raises(DatasetError, match="no such dataset directory"):
        Dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"meta/info\.json: missing"):
        Dataset(tmp_path / "empty")


def test_corrupt_info_json(two_files) -> None:
    (two_files / "meta/info.json").write_text("{ not json")
    with pytest.raises(DatasetError, match=r"info\.json: not valid JSON"):
        Dataset(two_files)


def test_truncated_parquet_names_the_file(two_files) -> None:
    p = two_files / "data/chunk-000/file-001.parquet"
    p.write_bytes(p.read_bytes()[:100])
    ds = Dataset(two_files)
    with pytest.raises(DatasetError, match=r"file-001\.parquet: not a readable Parquet file"):
        ds.episode(0, keys=["action"])


def test_unreadable_video_names_the_file(two_files) -> None:
    p = two_files / "videos/observation.images.cam/chunk-000/file-000.mp4"
    p.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(DatasetError, match=r"file-000\.mp4: cannot (open|decode) video"):
        Dataset(two_files).episode(0)


def test_missing_audio_file(two_files) -> None:
    (two_files / "audio/observation.audio.mic/chunk-000/file-001.flac").unlink()
    with pytest.raises(DatasetError, match=r"file-001\.flac: media file missing"):
        Dataset(two_files).episode(1, keys=["observation.audio.mic"])


def test_unknown_key_and_episode(two_files) -> None:
    ds = Dataset(two_files)
    with pytest.raises(KeyError, match="unknown keys"):
        ds.episode(0, keys=["observation.smell"])
    with pytest.raises(IndexError, match="episode 5 does not exist"):
        ds.episode(5)


def test_writer_rejects_bad_episodes_and_keeps_the_good_ones(two_files, spec, make_episode) -> None:
    w = DatasetWriter(two_files, spec)
    ep = make_episode(spec, 10, 2)
    with pytest.raises(DatasetError, match="missing \\['action'\\]"):
        w.add_episode({k: v for k, v in ep.items() if k != "action"})
    with pytest.raises(DatasetError, match="unknown \\['observation.smell'\\]"):
        w.add_episode({**ep, "observation.smell": ep["action"]})
    with pytest.raises(DatasetError, match="different .*lengths"):
        w.add_episode({**ep, "action": ep["action"][:5]})
    bad = {**ep, "observation.state": ep["observation.state"].copy()}
    bad["observation.state"][3, 1] = np.nan
    with pytest.raises(DatasetError, match="episode 2, key 'observation.state': NaN or inf at step 3"):
        w.add_episode(bad)
    with pytest.raises(DatasetError, match="per-step shape"):
        w.add_episode({**ep, "action": np.zeros((10, 3), np.float32)})
    w.close()
    ds = Dataset(two_files)
    assert ds.num_episodes == 2 and np.array_equal(ds.episode(1)["action"], make_episode(spec, 10, 1)["action"])


def test_directory_with_other_files_is_refused(tmp_path, spec) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="holds other files"):
        DatasetWriter(tmp_path, spec)


def test_uncommitted_flush_is_ignored_and_cleaned(two_files, spec, make_episode) -> None:
    """A flush killed before meta/info.json was rewritten leaves files the reader ignores."""
    import shutil

    info = (two_files / "meta/info.json").read_text()
    with DatasetWriter(two_files, spec, episodes_per_file=1) as w:
        w.add_episode(make_episode(spec, 10, 2))
    (two_files / "meta/info.json").write_text(info)  # as if killed just before the commit point
    shutil.rmtree(two_files / ".cache", ignore_errors=True)
    ds = Dataset(two_files)
    assert ds.num_episodes == 2 and len(ds.array("action")) == 20
    with DatasetWriter(two_files, spec, episodes_per_file=1) as w:  # leftovers removed, then appended
        w.add_episode(make_episode(spec, 10, 3))
    ds = Dataset(two_files)
    assert ds.num_episodes == 3
    assert np.array_equal(ds.episode(2)["action"], make_episode(spec, 10, 3)["action"])
