"""`genworld imagine`: a stable-baselines3 policy trained inside a (tiny, briefly trained) model and in the real
world, scored in the real world; the report, the saved policies and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genworld.cli import main

pytest.importorskip("stable_baselines3", reason="imagination needs stable-baselines3 (pip install 'genworld[rl]')")
pytest.importorskip("pygame", reason="CartPole renders with pygame (pip install 'genworld[gym]')")


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from genworld.train.config import tiny
    from genworld.train.data import load_dataset
    from genworld.train.distributed import DistInfo
    from genworld.train.run import train_run

    root = tmp_path_factory.mktemp("imagine")
    assert main(["collect", "gym:CartPole-v1", "--episodes", "8", "--steps", "32", "--out", str(root / "data"),
                 "--quiet"]) == 0
    store = load_dataset(str(root / "data"))
    cfg = tiny(store.spec)
    t = cfg.train
    t.tok_steps, t.dyn_steps, t.tok_batch_size, t.batch_size, t.warmup, t.val_every = 4, 6, 8, 4, 2, 1000
    t.device = "cpu"
    train_run(cfg, store, root / "run", resume=False, dist=DistInfo(), progress=False)
    return root / "run"


@pytest.mark.parametrize("where", ["model", "world"])
def test_trains_scores_in_the_real_world_and_saves_the_policy(cartpole_run: Path, tmp_path: Path, where: str) -> None:
    from stable_baselines3 import PPO

    from genworld.rollout.imagine import ImagineConfig, imagine

    r = imagine(ImagineConfig(run=str(cartpole_run), out=str(tmp_path), steps=128, seeds=2, eval_episodes=2,
                              max_steps=30, in_world=where == "world"), progress=None)
    assert r["trained_in"] == where and r["observation_keys"] == ["observation.state"]
    assert len(r["real_return_per_seed"]) == 2
    # CartPole pays 1 per step until the pole falls: real returns lie in [1, max_steps]
    assert all(1.0 <= x <= 30.0 for x in r["real_return_per_seed"])
    assert r["real_return_mean"] == pytest.approx(np.mean(r["real_return_per_seed"]))
    lo, hi = r["real_return_ci95"]
    spread = np.std(r["real_return_per_seed"], ddof=1) / np.sqrt(2)
    assert hi - lo == pytest.approx(2 * 1.96 * spread, abs=1e-6)
    assert json.loads((tmp_path / "imagine.json").read_text())["steps"] == 128
    policy = PPO.load(str(tmp_path / "policy_seed0.zip"), device="cpu")
    a, _ = policy.predict(np.zeros(4, np.float32), deterministic=True)
    assert int(a) in (0, 1)


def test_bad_requests_are_named(cartpole_run: Path, tmp_path: Path) -> None:
    from genworld.rollout.imagine import ImagineConfig, ImagineError, imagine

    with pytest.raises(ImagineError, match="unknown; choose one of ppo"):
        imagine(ImagineConfig(run=str(cartpole_run), out=str(tmp_path), algo="dqn3"), progress=None)
    with pytest.raises(ImagineError, match="sac needs continuous actions"):
        imagine(ImagineConfig(run=str(cartpole_run), out=str(tmp_path), algo="sac"), progress=None)
    with pytest.raises(ImagineError, match=">= 1"):
        imagine(ImagineConfig(run=str(cartpole_run), out=str(tmp_path), steps=0), progress=None)
    with pytest.raises(ImagineError, match="not modalities"):
        imagine(ImagineConfig(run=str(cartpole_run), out=str(tmp_path), obs_keys=("observation.nope",)),
                progress=None)
    assert main(["imagine", "--run", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) != 0


def test_dreams_start_from_the_datasets_windows(cartpole_run: Path, tmp_path: Path) -> None:
    from genworld.rollout.imagine import ImagineConfig, imagine

    r = imagine(ImagineConfig(run=str(cartpole_run), out=str(tmp_path), steps=64, seeds=1, eval_episodes=1,
                              max_steps=20, data=str(cartpole_run.parent / "data")), progress=None)
    assert r["imagined_episode_steps"] == 8 and "8 episodes" in r["imagined_starts"]
    assert 1.0 <= r["real_return_mean"] <= 20.0
