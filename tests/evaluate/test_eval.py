"""`genworld eval` end to end on a tiny trained model: the report contract, the GT reference, baselines, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genworld.cli import main

C, H = 4, 8
CONTRACT = [
    "schema", "world", "episodes", "context", "horizon", "valid_horizon",
    "per_horizon.psnr.model", "per_horizon.psnr.copy_last", "per_horizon.ssim.model", "per_horizon.ssim.copy_last",
    "identity.persistence", "identity.attribute_drift", "identity.id_switches_per_100",
    "physics.vanish_rate", "physics.spawn_rate", "physics.teleport_rate", "physics.overlap_rate",
    "causality.sound_without_contact_per_s", "causality.touch_without_contact_per_s",
    "surprise.accuracy", "controllability.ratio",
]


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        assert isinstance(d, dict) and part in d, f"report lacks {dotted!r} (stopped at {part!r})"
        d = d[part]
    return d


def _eval(run: Path, data: Path, out: Path, *extra: str) -> int:
    return main(["eval", "--run", str(run), "--data", str(data), "--out", str(out), "--context", str(C),
                 "--horizon", str(H), "--episodes", "3", "--surprise-pairs", "2", "--free-steps", "200", "--quiet",
                 *extra])


@pytest.fixture(scope="module")
def report_dir(tiny_run: Path, bounce_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert _eval(tiny_run, bounce_data, out) == 0
    return out


@pytest.fixture(scope="module")
def report(report_dir: Path) -> dict:
    return json.loads((report_dir / "report.json").read_text())


def test_report_has_every_contract_key(report: dict, report_dir: Path, tiny_run: Path) -> None:
    assert report["schema"] == "genworld.report/1"
    assert report["world"] == "bounce" and report["episodes"] == 3
    assert (report["context"], report["horizon"]) == (C, H)
    for key in CONTRACT:
        v = _get(report, key)
        assert v is not None, key
        if key.startswith("per_horizon"):
            assert len(v) == H and all(np.isfinite(v)), key
        if key.split(".")[0] in ("identity", "physics", "causality", "surprise", "controllability", "per_horizon"):
            assert _get(report["reference"], key.replace(".model", "").replace(".copy_last", "")) is not None, key
    assert len(report["per_horizon"]["psnr"]["tokenizer_ceiling"]) == H  # GT through the model's own tokenizer
    # the accuracy is the pair-weighted mean of the per-kind ones, each pair scoring 0, 1/2 or 1
    sur = report["surprise"]
    per = sur["per_type"].values()
    assert sur["pairs"] > 0 and sum(v["pairs"] for v in per) == sur["pairs"], sur
    assert sur["accuracy"] == pytest.approx(sum(v["accuracy"] * v["pairs"] for v in per) / sur["pairs"]), sur
    assert 2 * sur["pairs"] * sur["accuracy"] == pytest.approx(round(2 * sur["pairs"] * sur["accuracy"])), sur
    for name in ("report.md", "psnr.png", "ssim.png", "worst_episode.mp4", "typical_episode.mp4"):
        assert (report_dir / name).stat().st_size > 0, name
    md = (report_dir / "report.md").read_text()
    assert "![psnr](psnr.png)" in md and "| vanish_rate |" in md
    assert not list(report_dir.glob("*.tmp*")), "a temporary file was left behind"
    # the held-out episodes come first, and the report says where they came from
    val = json.loads((tiny_run / "split.json").read_text())["val"]
    assert report["episode_ids"][: min(3, len(val))] == val[:3]
    assert any("held-out" in n for n in report["notes"])


def test_reference_on_ground_truth_is_clean(report: dict) -> None:
    ref = report["reference"]
    for k, v in ref["physics"].items():
        if k.endswith("_rate"):
            assert v == 0.0, f"ground truth shows {k} = {v}"
    assert ref["identity"]["persistence"] == 1.0
    assert ref["identity"]["id_switches_per_100"] == 0.0
    assert ref["causality"]["sound_without_contact_per_s"] == 0.0
    assert ref["causality"]["touch_without_contact_per_s"] == 0.0
    assert ref["surprise"]["accuracy"] == 1.0  # the simulator is an ideal predictor
    assert ref["controllability"]["ratio"] == 1.0 and ref["controllability"]["direction"] == 1.0
    c = report["controllability"]  # a cosine with a zero change is 0: a model blind to actions has no direction
    assert (c["direction"] == 0.0) == (c["model_change"] == 0.0), c
    assert all(e == 0.0 for e in ref["per_horizon"]["state_error"] if e is not None)


def test_momentum_subject_consistency_and_motion_masks_are_reported(report: dict, report_dir: Path) -> None:
    phys, ref = report["physics"], report["reference"]
    for key in ("momentum_rate", "momentum_change", "free_collisions", "free_collisions_unseen"):
        assert key in phys and key in ref["physics"], key
    assert len(report["per_horizon"]["momentum_change"]["model"]) == H
    sc = report["subject"]
    assert 0.0 < sc["gt"] <= 1.0 and sc["gap"] == pytest.approx(sc["gt"] - sc["sc_local"])
    frozen = sc["baselines"]["copy_last"]
    assert frozen["sc_local"] == pytest.approx(1.0) and frozen["gap"] < 0  # SC rewards a frozen video; the gap shows it
    assert ref["subject"]["sc_local"] == sc["gt"]
    m = report["motion"]
    assert 0.0 < m["pv"]["spatiotemporal_iou"] <= 1.0
    # score = 100 x [mean IoU / PV - (MSE - PV_MSE)] clipped to [0, 100] (docs/evaluation.md), from the block's parts
    ious = ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou")
    ratio = np.mean([m[k] / m["pv"][k] if m["pv"][k] > 0 else 1.0 for k in ious])
    want = np.clip(100.0 * (ratio - (m["mse"] - m["pv"]["mse"])), 0.0, 100.0)
    assert m["physics_iq_local"] == pytest.approx(want), m
    assert m["baselines"]["copy_last"]["score"] == 0.0 and m["baselines"]["copy_last"]["spatiotemporal_iou"] == 0.0
    assert ref["motion"]["physics_iq_local"] == 100.0
    assert len(report["per_horizon"]["motion_mask_iou"]["model"]) == H
    md = (report_dir / "report.md").read_text()
    assert "## Subject consistency (local)" in md and "## Motion masks (physics_iq_local)" in md
    assert "| momentum_rate |" in md


def test_drift_summaries_are_reported(report: dict, report_dir: Path) -> None:
    d, ref = report["drift"], report["reference"]["drift"]
    for q in ("psnr", "ssim"):
        a = d["auc"][q]
        assert a["copy_last"] == 0.0 and ref["auc"][q] == 1.0, (q, a, ref)
        assert np.isfinite(a["model"]) and a["model"] <= 1.0 and a["horizons_used"] + len(a["excluded_h"]) == H
        assert len(report["per_horizon"][q]["physical_variance"]) == H
        assert set(d["slope"][q]) == {"model", "copy_last", "const_velocity", "physical_variance"}
    assert d["slope_horizons"] == [H // 4, H]
    assert d["slope"]["psnr"]["model"] == pytest.approx(report["summary"]["model"]["psnr_drift_slope_db_per_step"])
    md = (report_dir / "report.md").read_text()
    assert "## Drift" in md and "| AUC psnr (0 = copy-last, 1 = ceiling) |" in md
    # 3 episodes: subject consistency's note on its centring reaches report.md, not only the JSON
    assert report["subject"]["note"].startswith("only 3 episodes") and f"Note: {report['subject']['note']}" in md


def test_start_end_drift_of_free_runs_is_reported(report: dict, report_dir: Path) -> None:
    se, ref = report["drift"]["start_end"], report["reference"]["drift"]["start_end"]
    qs = {"sharpness", "colour_kl", "palette_purity"}
    assert se["steps"] == 200 and se["contexts"] == 3 and se["model"]["frames"] == [200] * 3
    assert set(se["model"]["delta"]) == qs and all(np.isfinite(v) for v in se["model"]["delta"].values())
    assert se["copy_last"]["delta"] == dict.fromkeys(qs, 0.0) and set(se["threshold"]) == qs
    assert "then uniform random actions" in se["actions"]  # 40-step episodes: their actions run out
    # the floor: 3 scored GT episodes of 40 frames, against thresholds from 8 unscored GT episodes
    assert se["ground_truth"]["frames"] == [40] * 3 and ref == {"delta": se["ground_truth"]["delta"],
                                                                 "flagged": se["ground_truth"]["flagged"]}
    assert ref["flagged"] == 0.0 and all(abs(ref["delta"][q]) < se["threshold"][q] for q in qs)
    cal = se["calibration"]["episodes"]
    assert len(cal) == 8 and not set(cal) & set(report["episode_ids"]) and "shorter span" in se["note"]
    # a run is flagged when any |Δ_q| exceeds its threshold: the share follows from the three runs' deltas
    runs = se["model"]["per_sequence"]
    want = np.mean([any(abs(x[q]) > se["threshold"][q] for q in qs) for x in runs])
    assert len(runs) == 3 and se["model"]["flagged"] == pytest.approx(want), (runs, se["threshold"])
    assert len(se["palette"]["colours"]) >= 2
    md = (report_dir / "report.md").read_text()
    assert "### Start-end drift of free runs" in md and "| Δ palette_purity |" in md


def test_free_run_beside_the_world_is_reported(report: dict, report_dir: Path) -> None:
    fr, ref = report["free_run"], report["reference"]["free_run"]
    assert fr["available"] and fr["steps"] == 200 and fr["contexts"] == 3 and fr["episodes"] == report["episode_ids"]
    assert fr["actions"] == report["drift"]["start_end"]["actions"]  # one free run feeds both blocks
    assert "state_from_gt" in fr["world"] and len(fr["quarters"]) == 4 and fr["quarters"][-1]["steps"] == [151, 200]
    q = fr["quarters"]  # the run's rates pool its quarters', weighted by their object-frames
    assert sum(x["object_frames"] for x in q) == fr["object_frames"] == ref["object_frames"] > 0, (fr, ref)
    for k in ("persistence", "spawn_rate", "colour_change_rate", "size_change_rate"):
        assert fr[k] == pytest.approx(sum(x[k] * x["object_frames"] for x in q) / fr["object_frames"]), k
        assert ref[k] == (1.0 if k == "persistence" else 0.0), k  # the world read against itself
    assert report["timing"]["free_run"] > 0
    md = (report_dir / "report.md").read_text()
    assert "## Long free run beside the world" in md
    assert "| metric | steps 1-200 | steps 1-50 | steps 51-100 | steps 101-150 | steps 151-200 | world vs itself |" in md


def test_copy_last_psnr_equals_a_direct_computation(report: dict, bounce_data: Path) -> None:
    from genworld.data import Dataset

    ds = Dataset(str(bounce_data))
    key = report["video_key"]
    per_ep = []
    for i in report["episode_ids"]:
        f = ds.episode(i, keys=[key])[key].astype(np.float64) / 255.0
        mse = ((f[C: C + H] - f[C - 1][None]) ** 2).mean((1, 2, 3))
        per_ep.append(np.minimum(60.0, 10 * np.log10(1.0 / np.maximum(mse, 1e-12))))
    np.testing.assert_allclose(report["per_horizon"]["psnr"]["copy_last"], np.mean(per_ep, 0), atol=1e-3)
    # and the valid horizon follows from the two curves
    m, b = np.array(report["per_horizon"]["psnr"]["model"]), np.array(report["per_horizon"]["psnr"]["copy_last"])
    worse = np.flatnonzero(m < b)
    assert report["valid_horizon"] == (int(worse[0]) if len(worse) else H)


def test_action_blind_session_has_zero_controllability(bounce_data: Path) -> None:
    from genworld.data import Dataset
    from genworld.evaluate.baselines import CopyLastSession
    from genworld.evaluate.controllability import (
        alternative_actions,
        direction,
        model_sensitivity,
        sim_rollouts,
        sim_sensitivity,
    )
    from genworld.worlds.bounce import world_from_spec_config

    ds = Dataset(str(bounce_data))
    eps = [ds.episode(i) for i in range(2)]
    acts = np.stack([ep["action"][C - 1: C + 5] for ep in eps])
    alt = alternative_actions(acts, ds.spec.action, np.random.default_rng(0))
    assert np.abs(alt - acts).max() > 0.2
    change, _ = model_sensitivity(CopyLastSession(ds.spec), eps, C, 6, alt, "observation.images.top")
    assert change == 0.0
    world = world_from_spec_config(ds.spec.config)
    assert sim_sensitivity(world, eps, C, 6, alt, "observation.images.top") > 1e-3
    # direction: 1 for the world's own change, ~0 for a change that belongs to another episode
    g_true, g_alt = sim_rollouts(world, eps, C, 6, alt, "observation.images.top")
    assert direction(g_true, g_alt, g_true, g_alt) == pytest.approx(1.0)
    assert abs(direction(g_true[::-1], g_alt[::-1], g_true, g_alt)) < 0.5


def test_surprise_pairs_differ_only_from_the_event_on(bounce_data: Path) -> None:
    from genworld.data import Dataset
    from genworld.evaluate.config import EvalConfig
    from genworld.evaluate.surprise import EVENT, KINDS, make_pairs

    ds = Dataset(str(bounce_data))
    eps = [ds.episode(i) for i in range(ds.num_episodes)]
    cfg = EvalConfig(context=C, surprise_pairs=2)
    pairs, missing = make_pairs(eps, ds.spec.config, cfg, np.random.default_rng(0))
    assert {p.kind for p in pairs} | set(missing) == set(KINDS)
    assert len(pairs) >= 6
    e = C + EVENT
    for p in pairs:
        gt = eps[p.episode]["gt.objects"][p.start: p.start + C + cfg.surprise_steps]
        np.testing.assert_array_equal(p.possible, gt.astype(np.float64))
        np.testing.assert_array_equal(p.possible[:e], p.impossible[:e])
        assert not np.array_equal(p.possible[e], p.impossible[e]), p.kind
        others = [k for k in range(gt.shape[1]) if k != p.obj]
        np.testing.assert_array_equal(p.possible[:, others], p.impossible[:, others])


def _without_gt(src: Path, dst: Path, n: int = 4) -> Path:
    from genworld.data import Dataset
    from genworld.data.writer import DatasetWriter
    from genworld.spec import WorldSpec

    ds = Dataset(str(src))
    spec = ds.spec
    keep = tuple(m for m in spec.modalities if m.kind != "gt")
    new = WorldSpec(spec.name, spec.fps, keep, spec.description, spec.config)
    with DatasetWriter(dst, new) as w:
        for i in range(n):
            w.add_episode(ds.episode(i, keys=[m.key for m in keep]))
    return dst


def test_dataset_without_gt_still_reports(tiny_run: Path, bounce_data: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = _without_gt(bounce_data, tmp_path / "nogt")
    assert _eval(tiny_run, data, tmp_path / "rep") == 0
    out = capsys.readouterr().out
    assert "PSNR drift AUC n/a (no physical-variance ceiling" in out
    assert "start-end drift over 200 free steps: Δ sharpness" in out and "runs flagged" in out
    ps = json.loads((tmp_path / "rep" / "report.json").read_text())["per_horizon"]["psnr"]["copy_last"]
    assert f"(copy-last {ps[0]:.2f}), h={H}" in out and f"(copy-last {ps[-1]:.2f}); valid horizon" in out
    assert "free run beside the world n/a (no object reader to score the free run with: the dataset has no" in out
    r = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert len(r["per_horizon"]["psnr"]["model"]) == H and len(r["per_horizon"]["ssim"]["copy_last"]) == H
    for key in ("identity", "physics", "causality", "surprise", "free_run"):
        assert r[key]["available"] is False and "gt.objects" in r[key]["reason"], key
        assert r["reference"][key]["available"] is False
    c = r["controllability"]  # the model's own sensitivity stays; with no GT sensitivity, no ratio or direction
    assert c["available"] is False and np.isfinite(c["model_change"]) and c["steps"] > 0, c
    assert not {"gt_change", "ratio", "direction"} & set(c), c
    assert "const_velocity" not in r["per_horizon"]["psnr"]
    assert r["drift"]["auc"]["psnr"]["available"] is False and "physical-variance" in r["drift"]["auc"]["psnr"]["reason"]
    assert set(r["drift"]["slope"]["psnr"]) == {"model", "copy_last"}  # slopes need no ceiling
    assert "Unavailable" in (tmp_path / "rep" / "report.md").read_text()


def test_bad_input_messages(tiny_run: Path, bounce_data: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert _eval(tmp_path / "no_such_run", bounce_data, tmp_path / "r1") == 1
    assert "no such run directory" in capsys.readouterr().err
    assert main(["eval", "--run", str(tiny_run), "--data", str(bounce_data), "--out", str(tmp_path / "r2"),
                 "--horizon", "60", "--episodes", "2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "lower --horizon to at most 36" in err and "40 steps" in err
    grav = tmp_path / "grav"
    assert main(["collect", "bounce-gravity", "--episodes", "2", "--steps", "16", "--out", str(grav), "--quiet"]) == 0
    capsys.readouterr()
    assert _eval(tiny_run, grav, tmp_path / "r3") == 1
    err = capsys.readouterr().err
    assert "'bounce'" in err and "'bounce-gravity'" in err
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r3").exists()


def test_help_is_useful(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = capsys.readouterr().out
    for word in ("--run", "--horizon", "held-out", "report.json", "surprise", "controllability"):
        assert word in out


@pytest.mark.slow
def test_full_config_on_fresh_episodes(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default protocol (20 episodes, horizon 32) on episodes the model never saw; GT stays clean."""
    from genworld.evaluate.report import _fmt

    data = tmp_path / "fresh"
    assert main(["collect", "bounce", "--episodes", "24", "--steps", "40", "--out", str(data), "--seed", "11",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", "--run", str(tiny_run), "--data", str(data), "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    r = json.loads((tmp_path / "rep" / "report.json").read_text())
    kd = r["distribution"]
    assert kd["floor"] is not None and kd["samples"] == 20 * 16  # 10 episodes a half
    out = capsys.readouterr().out
    assert f"KD-local at h=17..32: model {_fmt(kd['kd_local'])}" in out  # scientific notation from 1e6 on
    auc = r["drift"]["auc"]["psnr"]
    assert f"PSNR drift AUC {auc['model']:.3f} (0 = copy-last" in out and auc["horizons_used"] >= 24
    assert r["reference"]["drift"]["auc"] == {"psnr": 1.0, "ssim": 1.0}
    assert r["episodes"] == 20 and len(r["per_horizon"]["psnr"]["model"]) == 32
    assert r["episode_ids"] == list(range(20)) and any("every episode is unseen" in n for n in r["notes"])
    assert all(v == 0.0 for k, v in r["reference"]["physics"].items() if k.endswith("_rate"))
    assert r["surprise"]["pairs"] >= 24


def test_training_dataset_is_recognised(tiny_run: Path, bounce_data: Path, tmp_path: Path) -> None:
    from genworld.data import Dataset
    from genworld.evaluate.episodes import held_out, trained_on

    assert trained_on(tiny_run, Dataset(str(bounce_data))) is True
    other = tmp_path / "other"
    assert main(["collect", "bounce", "--episodes", "2", "--steps", "12", "--out", str(other), "--seed", "99",
                 "--quiet"]) == 0
    assert trained_on(tiny_run, Dataset(str(other))) is False
    val = json.loads((tiny_run / "split.json").read_text())["val"]
    ids, note = held_out(tiny_run, 12, len(val) + 2)
    assert ids[: len(val)] == val and len(set(ids)) == len(val) + 2 and "2 more that the model trained on" in note


@pytest.mark.slow
def test_occluder_world_reference_is_clean(tiny_run: Path, tmp_path: Path) -> None:
    """With the occluder, GT objects hide and re-emerge: the reference sees them all back, no violation."""
    data = tmp_path / "occ"
    assert main(["collect", "bounce", "--episodes", "8", "--steps", "48", "--out", str(data), "--seed", "4",
                 "--set", "occluder=true", "--quiet"]) == 0
    assert _eval(tiny_run, data, tmp_path / "rep", "--horizon", "32") == 0
    r = json.loads((tmp_path / "rep" / "report.json").read_text())
    occ = r["reference"]["occlusion"]
    assert occ["available"] and occ["events"] >= 3, occ
    assert occ["presence"] == 1.0 and occ["identity"] == 1.0 and occ["position_error"] == 0.0
    assert all(v == 0.0 for k, v in r["reference"]["physics"].items() if k.endswith("_rate"))
    assert any("['occluder']" in n for n in r["notes"])  # the run was trained without it


def test_report_scores_long_horizon_frames_as_a_distribution(report: dict, report_dir: Path) -> None:
    d = report["distribution"]
    assert d["horizons"] == [H // 2 + 1, H] and d["samples"] == 3 * (H // 2)
    assert np.isfinite(d["kd_local"]) and set(d["baselines"]) == {"copy_last", "const_velocity"}
    assert len(d["encoder"]["sha256"]) == 16 and d["encoder"]["dim"] == 224
    assert d["floor"] is None and report["reference"]["distribution"] == {"kd_local": None}  # 3 episodes: no halves
    md = (report_dir / "report.md").read_text()
    assert "## Distribution (KD-local)" in md and d["encoder"]["sha256"] in md
