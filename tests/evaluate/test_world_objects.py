"""`genworld eval` reads the objects of worlds that record them in the detector schema (`gt.objects` in
pixels, with `gt.segmentation` and `gt.contacts`): drive and metaworld, through the segmentation probe.
On ground truth the detectors must report (almost) no violations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genworld.cli import main

WORLDS = [
    pytest.param("drive:highway", "driver", "highway_env", (), id="drive"),
    # Meta-World's puck is dark red like the arm and covers 4-8 of 4,096 pixels: the per-pixel probe never
    # learns its class (mask IoU 0 at 64 and at 96 px), so ground truth reads as "vanished" (persistence 0.50).
    # strict: the day the probe reads it, this fails and the mark must go.
    pytest.param("metaworld:push-v3", "expert", "metaworld", (), id="metaworld",
                 marks=[pytest.mark.gl, pytest.mark.xfail(strict=True, reason="the segmentation probe cannot read "
                                                          "Meta-World's puck on ground truth yet")]),
]


def _run(tmp: Path, world: str, policy: str, sets: tuple[str, ...]) -> tuple[Path, Path]:
    from genworld.train.config import tiny
    from genworld.train.data import load_dataset
    from genworld.train.distributed import DistInfo
    from genworld.train.run import train_run

    data = tmp / "data"
    assert main(["collect", world, "--episodes", "12", "--steps", "20", "--out", str(data), "--seed", "4",
                 "--policy", policy, "--quiet", *sets]) == 0
    store = load_dataset(str(data))
    cfg = tiny(store.spec)
    t = cfg.train
    t.tok_steps, t.dyn_steps, t.tok_batch_size, t.batch_size, t.warmup, t.val_every = 4, 4, 4, 2, 1, 1000
    t.device = "cpu"
    train_run(cfg, store, tmp / "run", resume=False, dist=DistInfo(), progress=False)
    return tmp / "run", data


@pytest.mark.parametrize("world, policy, module, sets", WORLDS)
def test_eval_reads_the_worlds_objects_and_ground_truth_is_clean(world: str, policy: str, module: str,
                                                                 sets: tuple[str, ...], tmp_path: Path) -> None:
    pytest.importorskip(module, reason=f"{world} needs its extra (see `genworld worlds`)")
    run, data = _run(tmp_path, world, policy, sets)
    out = tmp_path / "report"
    assert main(["eval", "--run", str(run), "--data", str(data), "--out", str(out), "--context", "4",
                 "--horizon", "8", "--episodes", "3", "--free-steps", "60", "--quiet"]) == 0
    r = json.loads((out / "report.json").read_text())
    assert r["objects"]["method"] == "probe"
    pr = r["objects"]["probe"]
    assert pr["pixel_accuracy"] > pr["scene_only_accuracy"], pr
    ref = r["reference"]
    for block in (r, ref):
        assert block["physics"]["object_frames"] > 0
        assert block["identity"]["persistence"] is not None
        assert block["causality"]["seconds"] == pytest.approx(3 * 8 / r["fps"]), block["causality"]
    assert ref["identity"]["persistence"] >= 0.95, ref["identity"]
    assert all(ref["physics"][k] <= 0.05 for k in ("spawn_rate", "teleport_rate", "vanish_rate")), ref["physics"]
    assert r["free_run"].get("persistence") is not None or "reason" in r["free_run"]
