"""Every world goes through the same `genworld collect` (workers, resume) and round-trips through the reader."""

from __future__ import annotations

import numpy as np
import pytest

from genworld.data import Dataset
from genworld.worlds import make_world
from genworld.worlds.collect import CollectConfig, collect, default_policy, record_episode

WORLDS = [
    pytest.param("tabletop", marks=pytest.mark.gl, id="tabletop"),
    pytest.param("arcade:Pong", id="arcade"),
    pytest.param("gym:CartPole-v1", id="gym"),
]


@pytest.mark.parametrize("name", WORLDS)
def test_collect_with_workers_resumes_and_round_trips(tmp_path, name: str) -> None:
    module = {"tabletop": "mujoco", "arcade": "ale_py", "gym": "gymnasium"}[name.partition(":")[0]]
    pytest.importorskip(module, reason=f"{name} needs {module} (its extra is not installed)")
    out = str(tmp_path / "ds")
    first = collect(CollectConfig(world=name, episodes=2, steps=12, out=out, workers=2, progress=False))
    assert first["complete"] and first["episodes"] == 2
    again = collect(CollectConfig(world=name, episodes=3, steps=12, out=out, workers=1, progress=False))
    assert again["resumed_at"] == 2 and again["episodes"] == 3
    ds = Dataset(out)
    world = make_world(name)
    assert ds.spec == world.spec and ds.num_episodes == 3
    policy = default_policy(name)
    for i in range(3):  # what was written (by workers, then after resuming) is what the world produces
        want = record_episode(world, policy, 0, i, 12)
        got = ds.episode(i)
        for m in world.spec.modalities:
            if m.kind == "video":
                assert np.abs(got[m.key].astype(int) - want[m.key]).max() <= 1, (i, m.key)
            elif m.kind == "audio":
                assert np.abs(got[m.key] - want[m.key]).max() < 1e-6, (i, m.key)
            else:
                assert np.array_equal(got[m.key], want[m.key].astype(m.dtype)), (i, m.key)
    world.close()
