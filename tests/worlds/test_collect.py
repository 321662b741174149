"""`genworld collect`: determinism (seed, workers), resume after SIGKILL, refusal of another dataset, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genworld.cli import main
from genworld.data import Dataset, DatasetError
from genworld.worlds.collect import CollectConfig, collect

GENWORLD = [sys.executable, "-m", "genworld.cli"]


def _content(root: Path) -> dict[str, np.ndarray]:
    ds = Dataset(root)
    return {k: ds.array(k) for k in ds.spec.keys()}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_same_seed_same_data_whatever_the_workers(tmp_path) -> None:
    base = dict(world="bounce", episodes=4, steps=24, seed=5, progress=False)
    collect(CollectConfig(out=str(tmp_path / "w1"), workers=1, **base))
    collect(CollectConfig(out=str(tmp_path / "w2"), workers=2, episodes_per_file=3, **base))
    t1 = pq.read_table(tmp_path / "w1/data/chunk-000/file-000.parquet")
    t2 = pa.concat_tables([pq.read_table(p) for p in sorted((tmp_path / "w2/data").rglob("*.parquet"))])
    assert t1.column_names == t2.column_names
    for name in t1.column_names:  # Parquet column contents identical, value for value
        assert t1.column(name).combine_chunks().equals(t2.column(name).combine_chunks()), name
    assert _same(_content(tmp_path / "w1"), _content(tmp_path / "w2"))
    collect(CollectConfig(out=str(tmp_path / "other"), workers=1, **{**base, "seed": 6}))
    assert not np.array_equal(_content(tmp_path / "other")["action"], _content(tmp_path / "w1")["action"])


def test_recorded_step_is_observation_action_then_outcome(tmp_path) -> None:
    collect(CollectConfig(world="bounce", episodes=1, steps=30, out=str(tmp_path / "d"), progress=False))
    ep = Dataset(tmp_path / "d").episode(0)
    assert len(ep["action"]) == 30 and not ep["next.done"][:-1].any()
    # the agent's state at t+1 follows from its state at t: position moves by the recorded velocity
    s = ep["observation.state"]
    assert np.abs(s[1:, :2] - s[:-1, :2]).max() > 0


def test_resume_after_sigkill_gives_the_uninterrupted_result(tmp_path) -> None:
    args = ["collect", "bounce", "--episodes", "14", "--steps", "48", "--episodes-per-file", "2", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*GENWORLD, *args, "--out", str(tmp_path / "killed")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info = tmp_path / "killed/meta/info.json"
    deadline = time.time() + 60
    while time.time() < deadline:
        if info.exists() and json.loads(info.read_text())["total_episodes"] >= 4:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = Dataset(tmp_path / "killed").num_episodes
    assert 4 <= done < 14, f"the kill came too late to test resume ({done} episodes)"
    Dataset(tmp_path / "killed").episode(done - 1)  # readable as it stands
    assert main([*args, "--out", str(tmp_path / "killed")]) == 0
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert Dataset(tmp_path / "killed").num_episodes == 14
    assert _same(_content(tmp_path / "killed"), _content(tmp_path / "whole"))


def test_sigterm_commits_finished_episodes(tmp_path) -> None:
    out = tmp_path / "t"
    proc = subprocess.Popen([*GENWORLD, "collect", "bounce", "--episodes", "200", "--steps", "64",
                             "--episodes-per-file", "50", "--quiet", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "meta").exists():
        time.sleep(0.05)
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout
    n = Dataset(out).num_episodes
    assert 0 < n < 200 and "run the same command to continue" in stdout


def test_another_dataset_in_out_is_refused(tmp_path, capsys) -> None:
    out = str(tmp_path / "d")
    assert main(["collect", "bounce", "--episodes", "1", "--steps", "8", "--out", out, "--quiet"]) == 0
    with pytest.raises(DatasetError, match="different world"):
        collect(CollectConfig(world="bounce-gravity", episodes=1, steps=8, out=out, progress=False))
    assert main(["collect", "bounce", "--episodes", "1", "--steps", "8", "--out", out, "--quiet",
                 "--set", "n_objects=2"]) == 1
    assert "choose another --out directory" in capsys.readouterr().err
    assert main(["collect", "bounce", "--episodes", "1", "--steps", "8", "--out", out, "--quiet"]) == 0
    assert "already complete" in capsys.readouterr().out


def test_bad_arguments_are_named(tmp_path, capsys) -> None:
    out = str(tmp_path / "d")
    assert main(["collect", "nowhere", "--episodes", "1", "--steps", "8", "--out", out]) == 1
    assert "unknown world 'nowhere'" in capsys.readouterr().err
    assert main(["collect", "bounce", "--episodes", "1", "--steps", "8", "--out", out, "--set", "n_objects"]) == 1
    assert "expected key=value" in capsys.readouterr().err
    assert main(["collect", "bounce", "--episodes", "1", "--steps", "8", "--out", out, "--set", "colour=3"]) == 1
    assert "unknown config keys ['colour']" in capsys.readouterr().err
    assert main(["collect", "bounce", "--episodes", "1", "--steps", "8", "--out", out, "--policy", "psychic"]) == 1
    assert "no policy 'psychic'" in capsys.readouterr().err


def test_cli_worlds_info_and_export(tmp_path, capsys) -> None:
    assert main(["worlds", "bounce"]) == 0
    text = capsys.readouterr().out
    assert "observation.audio.mic" in text and "16000 Hz" in text and "seek" in text
    out = str(tmp_path / "d")
    assert main(["collect", "bounce", "--episodes", "2", "--steps", "16", "--out", out, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["data", "info", out]) == 0
    text = capsys.readouterr().out
    assert "episodes 2, frames 32, fps 16" in text and "observation.tactile.ring" in text
    assert main(["data", "export-video", out, "--episode", "1", "--out", str(tmp_path / "e.mp4")]) == 0
    import av

    with av.open(str(tmp_path / "e.mp4")) as c:
        kinds = {s.type: s for s in c.streams}
        assert kinds["video"].codec_context.width == 256 and "audio" in kinds
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 16
