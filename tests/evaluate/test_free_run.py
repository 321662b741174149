"""The long free run beside the true world (`evaluate/free_run.py`, `free_run` in report.json).

* the true world in place of the model reads clean: persistence 1, no spawn, colour or size change, in every
  quarter; a world started half a pixel away (a perfect model whose run diverges) reads clean too;
* a session that draws only the background has lost every object: persistence 0;
* the twin is the world placed where the context ends: rebuilt from ground truth (bounce), or replayed from the
  episode's collect seed (Atari), checked against the recorded step; worlds that cannot do either say why.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genworld.evaluate import free_run as F
from genworld.evaluate.baselines import CopyLastSession
from genworld.evaluate.config import EvalConfig
from genworld.rollout.sim import SimSession
from genworld.worlds import make_world

C, N, B = 4, 480, 3
RATES = ("spawn_rate", "colour_change_rate", "size_change_rate")


@pytest.fixture(scope="module")
def bounce(bounce_data: Path) -> tuple[Any, list[int], list[dict[str, np.ndarray]], Any]:
    """(dataset, scored ids, their episodes, the identity block's object reader as an ObjectCounter)."""
    from genworld.data import Dataset
    from genworld.evaluate import objects_eval
    from genworld.evaluate.evaluator import objects_eval_all
    from genworld.evaluate.rollout import truth

    ds = Dataset(str(bounce_data))
    ids = [0, 1, 2]
    eps = [ds.episode(i) for i in ids]
    spec = ds.spec
    vkey = spec.of_kind("video")[0].key
    obj = objects_eval_all(ds, ids, eps, {"model": truth(eps, C, 8)}, spec, vkey, C, 8, EvalConfig(context=C),
                           spec.config, objects_eval)
    return ds, ids, eps, obj["reader"]


def _stage(ds: Any, ids: list[int], eps: list[dict[str, np.ndarray]], counter: Any, sess: Any
           ) -> tuple[dict[str, Any], dict[str, Any], np.ndarray, str]:
    from genworld.evaluate.evaluator import free_run_stage

    cfg = EvalConfig(context=C, free_steps=N, free_contexts=B)
    return free_run_stage(sess, ds, ids, eps, ds.spec.of_kind("video")[0].key, C, cfg, counter, "", None)


class Nudged(SimSession):
    """The true world, rebuilt from the context's last GT table with every position moved by ±0.5 px."""

    def reset(self, context: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        g = np.array(context["gt.objects"], np.float64)
        g[:, -1, :, :2] += np.random.default_rng(5).uniform(-0.5, 0.5, g[:, -1, :, :2].shape)
        return super().reset({**context, "gt.objects": g.astype(np.float32)})


class Blank(CopyLastSession):
    """Draws the world's background and nothing else."""

    def step(self, action: np.ndarray) -> dict[str, np.ndarray]:
        out = super().step(action)
        for m in self.spec.of_kind("video"):
            out[m.key] = np.broadcast_to(np.asarray(self.spec.config["background"], np.uint8),
                                         out[m.key].shape).copy()
        return out


def test_the_true_world_in_place_of_the_model_reads_clean(bounce) -> None:
    ds, ids, eps, counter = bounce
    oracle = SimSession(lambda: make_world("bounce"), B)
    out, ref, runs, how = _stage(ds, ids, eps, counter, oracle)
    assert out["available"] and out["steps"] == N and out["contexts"] == B and out["episodes"] == ids
    assert runs.shape[:2] == (B, N) and how == out["actions"] and "then uniform random actions" in how
    assert "state_from_gt" in out["world"]
    assert out["object_frames"] >= 2 * B * N // out["scored_every"]  # the agent and an object at every scored step
    assert [q["steps"] for q in out["quarters"]] == [[1, 120], [121, 240], [241, 360], [361, 480]]
    assert out["scored_every"] == 2 and out["object_frames"] == ref["object_frames"]
    for block in [out, ref] + out["quarters"]:
        assert block["persistence"] == 1.0 and all(block[k] == 0.0 for k in RATES), block


def test_a_world_started_half_a_pixel_away_reads_clean_after_the_runs_diverge(bounce) -> None:
    ds, ids, eps, counter = bounce
    vkey = ds.spec.of_kind("video")[0].key
    acts, how = F.free_actions(eps, C, N, ds.spec.action, np.random.default_rng(3))
    twin, world = F.twin_session(F.recipe_world(ds), ds, ids, eps, C)
    model, steps = F.step_together(Nudged(lambda: make_world("bounce"), B), twin, eps, C, acts,
                                   lambda k: k == vkey or k.startswith("gt."))
    twin.close()
    last = slice(3 * N // 4, N)
    apart = np.abs(model["gt.objects"][:, last, :, :2] - steps["gt.objects"][:, last, :, :2]).mean()
    assert apart > 4.0, apart  # the runs diverged by pixels: a position-bound score would flag them
    anchor = lambda k: np.stack([ep[k][C - 1] for ep in eps])[:, None]  # noqa: E731
    truth = {k: np.concatenate([anchor(k), v], 1) for k, v in steps.items()}
    out, _ = F.free_run_block(counter, np.concatenate([anchor(vkey), model[vkey]], 1), truth[vkey], truth, ids,
                              how, world, C)
    for block in [out] + out["quarters"]:
        assert block["persistence"] >= 0.99 and all(block[k] <= 0.01 for k in RATES), block


def test_a_session_that_draws_only_the_background_loses_every_object(bounce) -> None:
    ds, ids, eps, counter = bounce
    out, ref, _, _ = _stage(ds, ids, eps, counter, Blank(ds.spec))
    assert out["persistence"] == 0.0 and out["spawn_rate"] == 0.0 and out["object_frames"] > 0
    assert all(q["persistence"] == 0.0 for q in out["quarters"])
    assert ref["persistence"] == 1.0  # the world itself still shows them


def test_without_an_object_reader_or_a_rewindable_world_the_free_run_says_why(bounce) -> None:
    ds, ids, eps, _ = bounce
    out, ref, runs, _ = _stage(ds, ids, eps, None, Blank(ds.spec))
    assert out == ref and out["available"] is False and "no object reader" in out["reason"]
    assert runs.shape[:2] == (B, N)  # the model still ran (start-end drift needs its frames)
    twin, why = F.twin_session(lambda: make_world("gym:CartPole-v1"), ds, ids, eps, C)
    assert twin is None and "get_state" in why


def test_atari_episodes_are_replayed_from_their_collect_seed(tmp_path: Path) -> None:
    pytest.importorskip("ale_py", reason="arcade worlds need ale-py (pip install 'genworld[atari]')")
    from genworld.cli import main
    from genworld.data import Dataset

    data = tmp_path / "pong"
    assert main(["collect", "arcade:Pong", "--episodes", "3", "--steps", "16", "--out", str(data), "--seed", "5",
                 "--set", "sound=false", "--quiet"]) == 0
    ds = Dataset(str(data))
    ids = [1, 2]
    eps = [ds.episode(i) for i in ids]
    twin, world = F.twin_session(F.recipe_world(ds), ds, ids, eps, C)
    assert twin is not None and "collect seed 5" in world, world
    vkey = ds.spec.of_kind("video")[0].key
    for t in range(C, 16):  # from step C-1 the twin goes on exactly as the recorded episodes did
        got = twin.step(np.stack([ep["action"][t - 1] for ep in eps]))
        np.testing.assert_array_equal(got[vkey], np.stack([ep[vkey][t] for ep in eps]))
        np.testing.assert_array_equal(got["gt.ram"], np.stack([ep["gt.ram"][t] for ep in eps]))
    twin.close()
    wrong = copy.copy(ds)
    wrong.info = {**ds.info, "genworld_collect": {**ds.info["genworld_collect"], "seed": 6}}
    twin, why = F.twin_session(F.recipe_world(wrong), wrong, ids, eps, C)
    assert twin is None and "did not reproduce" in why, why
