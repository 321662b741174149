"""Training runs end to end: files of a run, resume after a kill, bad input, held-out split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from genworld.train.checkpoint import latest_checkpoint, load_checkpoint
from genworld.train.config import read_run_config
from genworld.train.data import check_compatible, from_episodes
from genworld.train.distributed import DistInfo
from genworld.train.logger import Logger
from genworld.train.run import train_run
from genworld.train.synthetic import synthetic_episode, synthetic_spec


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    weights, _, _ = load_checkpoint(latest_checkpoint(run))
    return weights


def test_a_run_holds_what_a_session_needs(tmp_path, store, small_cfg) -> None:
    run = tmp_path / "run"
    res = train_run(small_cfg(store), store, run, False, DistInfo(), progress=False)
    assert res["done"] and res["global_step"] == 10
    for name in ("config.json", "spec.json", "stats.json", "split.json", "contexts.safetensors", "metrics.jsonl"):
        assert (run / name).exists(), name
    split = json.loads((run / "split.json").read_text())
    assert len(split["val"]) == 2 and not set(split["val"]) & set(split["train"])
    assert read_run_config(run).model.dynamics.dim == 32
    ctx = load_file(str(run / "contexts.safetensors"))
    assert ctx["observation.images.top"].shape[1:] == (4, 32, 32, 3)
    assert not any(k.startswith("gt.") for k in ctx)  # ground truth never enters a model run
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val/loss" in r for r in recs) and all(np.isfinite(r.get("loss", 0.0)) for r in recs)


def test_contact_thresholds_are_calibrated_on_training_episodes_and_applied_by_sessions(tmp_path, store,
                                                                                      small_cfg) -> None:
    from genworld.rollout.session import WorldSession
    from genworld.train.quality import open_loop

    run = tmp_path / "run"
    res = train_run(small_cfg(store), store, run, False, DistInfo(), progress=False)
    cal = json.loads((run / "calibration.json").read_text())["contact"]
    split, stats = json.loads((run / "split.json").read_text()), json.loads((run / "stats.json").read_text())
    touch = [m.key for m in store.spec.of_kind("touch")]
    assert set(cal) == set(touch) and res["contact_calibration"] == cal
    session = WorldSession.load(run)
    assert session.model.contact_p == {k: cal[k]["contact_p"] for k in touch}
    for k in touch:  # the chosen threshold is the best of the grid, 0.5 (the default) included
        assert cal[k]["f1"] >= cal[k]["f1_at_0.5"]
        # a fresh session with the stored threshold reproduces the calibration's F1 on the same windows
        q = open_loop(session, store, split["train"], context=cal[k]["context"], horizon=4, stride=8,
                      touch_threshold={k: stats[k]["threshold"]})
        assert q[f"{k}/contact_f1_h1_4"] == pytest.approx(cal[k]["f1"])
    change = json.loads((run / "calibration.json").read_text())["change"]
    video = [m.key for m in store.spec.of_kind("video")]
    assert set(change) == set(video) and session.model.change_p == {k: change[k]["change_p"] for k in video}
    for k in video:  # the change threshold is the best of its grid by the frames' PSNR, and sessions reproduce it
        assert change[k]["psnr"] >= change[k]["psnr_at_0.5"]
        q = open_loop(session, store, split["train"], context=change[k]["context"], horizon=change[k]["horizon"],
                      stride=8)
        assert float(np.mean(q[f"{k}/psnr"])) == pytest.approx(change[k]["psnr"])
    (run / "calibration.json").write_text('{"contact": {"observation.tactile.x": {"contact_p": 0.2}}}')
    with pytest.raises(ValueError, match="keys this model lacks"):
        WorldSession.load(run)
    (run / "calibration.json").write_text('{"contact": [1, 2')
    with pytest.raises(ValueError, match="calibration.json is corrupt"):
        WorldSession.load(run)


def test_the_clock_counts_tokenizing_and_validation_not_only_steps(tmp_path, store, small_cfg, monkeypatch) -> None:
    """--max-minutes is wall time: tokenizing the dataset and the validations in the loop spend the budget.

    Both are made a known amount slower (the real work plus a sleep); the run's clock must hold those
    seconds, and a budget smaller than the tokenizing leaves stage 2 no steps instead of running over."""
    import time

    from genworld.train.tokens import TokenCache
    from genworld.train.trainer import Trainer

    build, validate = TokenCache.build.__func__, Trainer.validate

    def slow_build(cls, *a, **kw):
        time.sleep(1.0)
        return build(cls, *a, **kw)

    def slow_validate(self, *a, **kw):
        time.sleep(0.5)
        return validate(self, *a, **kw)

    monkeypatch.setattr(TokenCache, "build", classmethod(slow_build))
    monkeypatch.setattr(Trainer, "validate", slow_validate)
    cfg = small_cfg(store)  # 4 + 6 steps, validation every 3: 1 + 2 validations in the loop, 1 after it
    res = train_run(cfg, store, tmp_path / "run", False, DistInfo(), progress=False)
    assert res["global_step"] == 10 and res["elapsed_s"] >= 1.0 + 3 * 0.5, res["elapsed_s"]

    cfg = small_cfg(store, tok_steps=10**9, dyn_steps=10**9)
    cfg.train.max_minutes, cfg.train.val_every = 0.01, 10**9  # 0.6 s: 0.12 s for stage 1, less than tokenizing
    res = train_run(cfg, store, tmp_path / "short", False, DistInfo(), progress=False)
    recs = [json.loads(line) for line in (tmp_path / "short" / "metrics.jsonl").read_text().splitlines()]
    assert not any(r.get("stage") == 2 and "loss" in r for r in recs)  # stage 2 took no step
    assert res["done"] and 1.0 <= res["elapsed_s"] < 0.6 + 1.0 + 0.5


@pytest.mark.parametrize("kill_at", [3, 9])  # stage 1 (tokenizers) and stage 2 (dynamics)
def test_kill_and_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path, store, small_cfg, monkeypatch,
                                                                   kill_at) -> None:
    whole = tmp_path / "whole"
    train_run(small_cfg(store), store, whole, False, DistInfo(), progress=False)

    killed = tmp_path / "killed"
    real_metrics = Logger.metrics

    def die(self, rec):  # a kill after step `kill_at`, past the last checkpoint (saved every 2 steps)
        real_metrics(self, rec)
        if rec.get("global_step") == kill_at and "lr" in rec:  # a training record
            raise KeyboardInterrupt

    monkeypatch.setattr(Logger, "metrics", die)
    with pytest.raises(KeyboardInterrupt):
        train_run(small_cfg(store), store, killed, False, DistInfo(), progress=False)
    monkeypatch.setattr(Logger, "metrics", real_metrics)
    assert latest_checkpoint(killed) is not None
    with pytest.raises(ValueError, match="--resume"):
        train_run(small_cfg(store), store, killed, False, DistInfo(), progress=False)
    train_run(small_cfg(store), store, killed, True, DistInfo(), progress=False)
    a, b = final_weights(whole), final_weights(killed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_nan_in_data_is_refused_naming_episode_key_and_step() -> None:
    spec = synthetic_spec(size=32, samples=200)
    eps = [synthetic_episode(spec, 10, s) for s in range(2)]
    eps[1]["observation.state"][7, 2] = np.nan
    with pytest.raises(ValueError, match=r"episode 1, observation.state: NaN or inf at step 7"):
        from_episodes(spec, eps)


def test_wrong_shape_in_data_is_refused() -> None:
    spec = synthetic_spec(size=32, samples=200)
    ep = synthetic_episode(spec, 10, 0)
    ep["observation.tactile.ring"] = ep["observation.tactile.ring"][:, :3]
    with pytest.raises(ValueError, match=r"observation.tactile.ring: per-step shape \(3,\), spec says \(4,\)"):
        from_episodes(spec, [ep])


def test_a_dataset_with_other_modalities_does_not_fit_a_run(tmp_path, store, small_cfg) -> None:
    run = tmp_path / "run"
    train_run(small_cfg(store), store, run, False, DistInfo(), progress=False)
    other = synthetic_spec(size=32, samples=200, discrete_action=True)
    with pytest.raises(ValueError, match="do not match the run's.*action"):
        check_compatible(store.spec, other, "here")
    other_store = from_episodes(other, [synthetic_episode(other, 16, s) for s in range(4)])
    with pytest.raises(ValueError, match="do not match"):
        train_run(small_cfg(store), other_store, run, True, DistInfo(), progress=False)


def test_corrupt_truncated_and_incompatible_checkpoints_are_clear_errors(tmp_path, store, small_cfg) -> None:
    from genworld.rollout.session import WorldSession

    run = tmp_path / "run"
    train_run(small_cfg(store), store, run, False, DistInfo(), progress=False)
    path = latest_checkpoint(run)
    tensors = path.with_suffix(".safetensors")
    data = tensors.read_bytes()
    tensors.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        WorldSession.load(run)
    tensors.write_bytes(data)
    WorldSession.load(run)  # intact again

    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["dynamics"]["dim"] = 64
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="does not fit the model"):
        WorldSession.load(run)
    cfg["format_version"] = 999
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="format version 999"):
        WorldSession.load(run)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        load_checkpoint(path)
