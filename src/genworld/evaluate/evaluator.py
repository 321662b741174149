"""`evaluate`: roll a run's model open loop on held-out episodes and score it against ground truth.

Systems: `model` (WorldSession, temperature 0, true actions), `copy_last` (the last real frame forever),
`const_velocity` (GT discs, or tabletop bodies, moved on with their last GT velocity, rendered) and the ground
truth itself (`reference`: the floor every violation detector must read as clean). Metrics that need
ground truth the dataset lacks are reported as {"available": false, "reason": ...}; the rest still run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from genworld.evaluate.config import EvalConfig
from genworld.evaluate.drift import drift_block
from genworld.evaluate.frames import drift_slope, psnr, ssim, valid_horizon
from genworld.spec import OBJECT_COLUMNS

SCHEMA = "genworld.report/1"


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def check_world(run_spec: Any, data_spec: Any, run_dir: Path, data_dir: Path) -> list[str]:
    """Raise ValueError when run and dataset come from different worlds; returns notes on config differences."""
    from genworld.train.data import check_compatible

    if run_spec.name != data_spec.name:
        raise ValueError(f"--run {run_dir} was trained on world {run_spec.name!r}, but --data {data_dir} holds "
                         f"world {data_spec.name!r}; evaluate on a dataset of {run_spec.name!r} "
                         f"(genworld collect {run_spec.name} ...)")
    check_compatible(run_spec, data_spec, f"eval --run {run_dir} --data {data_dir}")
    a, b = run_spec.config or {}, data_spec.config or {}
    diff = sorted(k for k in set(a) & set(b) if a[k] != b[k] and k != "seed")
    return [f"the dataset's world config differs from the run's in {diff}: the model is evaluated out of "
            "its training distribution"] if diff else []


def _window(episodes: list[dict[str, np.ndarray]], key: str, C: int, H: int) -> np.ndarray:
    """(N, H+1, ...) steps C-1 .. C+H-1: the last real context step, then the predicted steps."""
    return np.stack([ep[key][C - 1: C + H] for ep in episodes])


def _with_anchor(episodes: list[dict[str, np.ndarray]], key: str, C: int, pred: np.ndarray) -> np.ndarray:
    """(N, H+1, ...) the last real context step followed by predictions (N, H, ...)."""
    return np.concatenate([np.stack([ep[key][C - 1] for ep in episodes])[:, None], pred], 1)


def _mean_curve(x: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(x, np.float64).mean(0)]


def proprio_error(pred: dict[str, np.ndarray], true: dict[str, np.ndarray], keys: list[str],
                  episodes: list[dict[str, np.ndarray]]) -> np.ndarray:
    """(N, H) RMS over dimensions of the error normalised by each dimension's GT std (over the episodes)."""
    errs = []
    for k in keys:
        std = np.concatenate([ep[k] for ep in episodes]).reshape(-1, int(np.prod(true[k].shape[2:]) or 1)).std(0)
        d = (pred[k] - true[k]).reshape(*true[k].shape[:2], -1) / np.maximum(std, 1e-6)
        errs.append(np.sqrt((d**2).mean(-1)))
    return np.mean(errs, 0)


def tokenizer_ceiling(sess: Any, true: dict[str, np.ndarray], vkey: str, chunk: int = 256) -> np.ndarray | str:
    """GT frames (N, H, ...) passed through the model's own tokenizer and decoder: the best it can draw.

    Returns the frames, or the reason they could not be computed (the report then goes on without them).
    """
    import torch

    from genworld.models.sampling import decode_step

    try:
        N, H = true[vkey].shape[:2]
        batch = {k: torch.as_tensor(true[k]).to(sess.device) for k in sess.obs_keys + [sess.spec.action.key]}
        with torch.inference_mode():
            tok = sess.model.tokenize(batch)
            flat = {k: tok[k].reshape(N * H, 1, *tok[k].shape[2:]) for k in sess.obs_keys}
            out = [decode_step(sess.model, {k: v[i: i + chunk] for k, v in flat.items()})[vkey].cpu().numpy()
                   for i in range(0, N * H, chunk)]
        return np.concatenate(out).reshape(true[vkey].shape)
    except (RuntimeError, ValueError, KeyError, TypeError) as e:  # an extra: never stop the report for it
        return f"{type(e).__name__}: {e}"


def evaluate(run_dir: str | Path, data_dir: str | Path, out_dir: str | Path, cfg: EvalConfig,
             progress: bool = True, device: str = "cpu") -> dict[str, Any]:
    """Evaluate the run on the dataset, write REPORT (json, md, png, mp4) and return the report dict."""
    from tqdm import tqdm

    from genworld.data import Dataset
    from genworld.evaluate.baselines import ConstantVelocitySession, CopyLastSession
    from genworld.evaluate.episodes import check_length, held_out, trained_on
    from genworld.evaluate.rollout import open_loop, truth
    from genworld.rollout.session import WorldSession

    t_start = time.perf_counter()
    run_dir, data_dir, out_dir = Path(run_dir), Path(data_dir), Path(out_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"--run {run_dir}: no such run directory; train one first "
                                f"(genworld train --data DIR --out {run_dir})")
    C, H = cfg.context, cfg.horizon
    if C < 1 or H < 1 or cfg.episodes < 1:
        raise ValueError(f"--context must be >= 1 (got {C}), --horizon >= 1 (got {H}), --episodes >= 1 "
                         f"(got {cfg.episodes})")
    from genworld.train.latent import read_actions

    if read_actions(run_dir)["kind"] == "latent":  # its own, smaller report: latent actions cannot drive the world
        from genworld.evaluate.latent import latent_report

        return latent_report(run_dir, data_dir, out_dir, cfg, device)
    stages = ["load", "rollouts", "frames", "objects", "surprise", "controllability", "free_run", "start_end",
              "report"]
    bar = tqdm(total=len(stages), desc="eval", disable=not progress, unit="stage")
    timing: dict[str, float] = {}
    clock = [time.perf_counter()]

    def done(name: str) -> None:
        now = time.perf_counter()
        timing[name] = round(now - clock[0], 3)
        clock[0] = now
        bar.update(1)
        nxt = stages.index(name) + 1
        if nxt < len(stages):
            bar.set_description(f"eval: {stages[nxt]}")

    bar.set_description("eval: load")
    sess = WorldSession.load(run_dir, device=device, temperature=0.0, seed=cfg.seed)
    ds = Dataset(data_dir)
    spec = ds.spec
    notes = check_world(sess.spec, spec, run_dir, data_dir)
    if trained_on(run_dir, ds) is False:
        ids = list(range(min(cfg.episodes, ds.num_episodes)))
        picked_note = (f"the first {len(ids)} episodes: this dataset is not the one the run trained on (the run's "
                       "stored context windows do not match it), so every episode is unseen")
    else:
        ids, picked_note = held_out(run_dir, ds.num_episodes, cfg.episodes)
    notes.append(picked_note)
    if len(ids) < cfg.episodes:
        notes.append(f"--episodes {cfg.episodes} asked, the dataset has {ds.num_episodes}: evaluated {len(ids)}")
    videos = spec.of_kind("video")
    if not videos:
        raise ValueError(f"{data_dir}: world {spec.name!r} has no video modality; genworld eval scores frames")
    vkey = videos[0].key
    short = [i for i in ids if ds.lengths[i] < C + H]
    if short:  # worlds that end episodes (a crash, a fallen pole): score the episodes long enough to score
        order = ids + [i for i in held_out(run_dir, ds.num_episodes, ds.num_episodes)[0] if i not in ids]
        long_enough = [i for i in order if ds.lengths[i] >= C + H][: cfg.episodes]
        if long_enough:
            notes.append(f"{len(short)} of the picked episodes are shorter than --context + --horizon = {C + H} "
                         f"steps; scored {len(long_enough)} long enough instead")
            ids = long_enough
    episodes = [ds.episode(i) for i in ids]
    check_length(episodes, C, H, spec.action.key, f"--data {data_dir}")
    config = spec.config or {}
    has_gt = "gt.objects" in spec and "gt.contacts" in spec
    palette = has_gt and all(k in config for k in ("palette", "background", "image_size"))
    bounce = palette and spec.name.startswith("bounce")
    # MuJoCo worlds (tabletop): objects read by a probe fitted on GT frames and their gt.segmentation
    # probe-read worlds: MuJoCo tabletop (gt.bodies through its camera) and worlds that record their objects in
    # the detector schema (gt.objects in pixels: drive, metaworld), all with gt.segmentation masks
    own_tables = "gt.objects" in spec and tuple(spec["gt.objects"].names or ()) == OBJECT_COLUMNS
    probe = (not palette and all(k in spec for k in ("gt.segmentation", "gt.contacts"))
             and all(k in config for k in ("palette", "image_size"))
             and (own_tables or ("gt.bodies" in spec and "camera" in config)))
    no_gt = ("the dataset has no gt.objects / gt.contacts columns (ground-truth object states of palette "
             "worlds) nor gt.segmentation / gt.bodies / gt.contacts (MuJoCo worlds, read by a segmentation "
             "probe); collect it with genworld collect to get them" if not (has_gt or probe) else
             f"world {spec.name!r} is not drawn in palette colours (no palette segmentation) and records no "
             "gt.segmentation / gt.bodies to fit a segmentation probe on")
    arcade = spec.name.startswith("arcade:") and not (palette or probe)  # objects read by a learned palette
    sim, no_sim = None, ""
    rebuild: Any = None  # a factory of the world, for a dataset that records no collect recipe (free run)
    if bounce:
        from genworld.worlds.bounce import world_from_spec_config

        rebuild = lambda: world_from_spec_config(spec.config, spec.name)  # noqa: E731
    if probe and spec.name.startswith("tabletop"):  # the MuJoCo world itself: re-simulate and render GT states
        from genworld.evaluate.tabletop_sim import world_for

        rebuild = lambda: world_for(spec)  # noqa: E731
        try:
            sim = world_for(spec)
        except (ValueError, ImportError, RuntimeError) as e:
            no_sim = f"the tabletop world could not be rebuilt to re-simulate this dataset ({type(e).__name__}: {e})"
    done("load")

    # ---- rollouts -------------------------------------------------------------------------------
    true = truth(episodes, C, H)
    preds = {"model": open_loop(sess, episodes, C, H), "copy_last": open_loop(CopyLastSession(spec), episodes, C, H)}
    if bounce:
        preds["const_velocity"] = open_loop(ConstantVelocitySession(spec), episodes, C, H)
    elif sim is not None:
        from genworld.evaluate.tabletop_sim import ConstantVelocitySession as BodiesConstantVelocity

        preds["const_velocity"] = open_loop(BodiesConstantVelocity(spec, sim), episodes, C, H)
    else:
        notes.append("const_velocity baseline skipped: it needs gt.objects of a bounce world or gt.bodies of a "
                     "tabletop world it can rebuild" + (f"; {no_sim}" if no_sim else ""))
    done("rollouts")

    # ---- frames and proprioception --------------------------------------------------------------
    per_h: dict[str, dict[str, list[float | None]]] = {"psnr": {}, "ssim": {}}
    psnr_ep: dict[str, np.ndarray] = {}
    for name, p in preds.items():
        ps = psnr(p[vkey], true[vkey])
        psnr_ep[name] = ps.mean(1)
        per_h["psnr"][name] = _mean_curve(ps)
        per_h["ssim"][name] = _mean_curve(ssim(p[vkey], true[vkey]))
    ceiling = tokenizer_ceiling(sess, true, vkey)
    if isinstance(ceiling, str):
        notes.append(f"tokenizer ceiling not computed: {ceiling}")
    else:
        per_h["psnr"]["tokenizer_ceiling"] = _mean_curve(psnr(ceiling, true[vkey]))
        per_h["ssim"]["tokenizer_ceiling"] = _mean_curve(ssim(ceiling, true[vkey]))
    pkeys = [m.key for m in spec.of_kind("proprio") if m.key in true]
    if pkeys:
        per_h["proprio_error"] = {n: _mean_curve(proprio_error(p, true, pkeys, episodes)) for n, p in preds.items()}
    vh = valid_horizon(np.array(per_h["psnr"]["model"]), np.array(per_h["psnr"]["copy_last"]), cfg.valid_eps)
    vh_ssim = valid_horizon(np.array(per_h["ssim"]["model"]), np.array(per_h["ssim"]["copy_last"]), cfg.valid_eps)
    summary = {n: {"psnr_mean": float(np.mean(per_h["psnr"][n])), "ssim_mean": float(np.mean(per_h["ssim"][n])),
                   "psnr_drift_slope_db_per_step": drift_slope(np.array(per_h["psnr"][n]))} for n in preds}
    # physical variance: two simulator re-runs from the GT state of step C-1, positions moved by ±0.5 px; the
    # ceiling of the drift AUC and the normaliser of the motion-mask score
    pv_runs = variance_frames(spec, episodes, vkey, C, H, cfg) if bounce else None
    if pv_runs is not None:
        for q, fn in (("psnr", psnr), ("ssim", ssim)):
            per_h[q]["physical_variance"] = _mean_curve(np.concatenate([fn(r[:, 1:], true[vkey]) for r in pv_runs]))
    done("frames")

    report: dict[str, Any] = {
        "schema": SCHEMA, "world": spec.name, "run": str(run_dir), "data": str(data_dir), "episodes": len(ids),
        "episode_ids": ids, "context": C, "horizon": H, "seed": cfg.seed, "fps": spec.fps, "video_key": vkey,
        "per_horizon": per_h, "valid_horizon": vh, "valid_horizon_ssim": vh_ssim, "summary": summary,
        "notes": notes, "config": cfg.__dict__.copy(),
    }
    # the floor: ground truth scored against itself (PSNR is capped at 60 dB for identical frames)
    ref: dict[str, Any] = {"per_horizon": {"psnr": _mean_curve(psnr(true[vkey], true[vkey])),
                                           "ssim": _mean_curve(ssim(true[vkey][:1], true[vkey][:1]))},
                           "valid_horizon": H}
    if pkeys:
        ref["per_horizon"]["proprio_error"] = [0.0] * H
    # distribution-level: do the long-horizon frames look like the world's at all (METRICS.md section 5)
    from genworld.evaluate.distribution import kd_local

    dist = kd_local({n: p[vkey] for n, p in preds.items()}, true[vkey], first_h=H // 2 + 1)
    kd = dist.pop("kd_local")
    report["distribution"] = {"kd_local": kd.pop("model"), "baselines": kd, **dist}
    ref["distribution"] = {"kd_local": dist["floor"]}
    report["subject"], ref["subject"] = subject_block({n: p[vkey] for n, p in preds.items()}, true[vkey])
    report["drift"], ref["drift"] = drift_block(
        per_h, ref["per_horizon"], list(preds), "" if pv_runs is not None else (
            "no physical-variance ceiling: it needs the simulator re-run from the GT state with perturbed positions, "
            "done for bounce worlds (gt.objects) only; this world has none (arcade, gym, recorded data) or none "
            "implemented (tabletop)"))
    report["motion"], ref["motion"], motion_iou = motion_block(
        {n: _with_anchor(episodes, vkey, C, p[vkey]) for n, p in preds.items()}, _window(episodes, vkey, C, H), pv_runs)
    per_h["motion_mask_iou"] = motion_iou
    ref["per_horizon"]["motion_mask_iou"] = [1.0] * H

    # ---- objects: identity, physics, causality --------------------------------------------------
    counter, no_counter = None, no_gt  # the object reader, for the free run beside the world
    if palette or probe:
        from genworld.evaluate import objects_eval

        if palette:
            obj = objects_eval_all(ds, ids, episodes, preds, spec, vkey, C, H, cfg, config, objects_eval)
            no_causality = "the world has no audio or touch"
        else:
            obj = probe_eval_all(ds, ids, run_dir, episodes, preds, spec, vkey, C, H, cfg, config, objects_eval)
            report["objects"] = {"method": "probe", "probe": obj.pop("probe")}
            no_causality = "the world has no audio or touch"
        report["thresholds"], report["calibration"] = obj.pop("thresholds"), obj.pop("calibration")
        counter = obj.pop("reader")
        for key in ("identity", "physics", "causality"):
            report[key] = obj["model"].get(key, unavailable(no_causality))
            ref[key] = obj["reference"].get(key, unavailable(no_causality))
        report["baselines"] = {n: {k: obj[n].get(k) for k in ("identity", "physics", "causality")}
                               for n in preds if n != "model"}
        for k in ("state_error", "persistence", "momentum_change"):
            if k in obj["reference"]:
                per_h[k] = {n: obj[n][k] for n in preds}
                ref["per_horizon"][k] = obj["reference"][k]
        report["violations_per_episode"] = obj["model"]["violations_per_episode"]
        report["occlusion"], ref["occlusion"] = obj["model"]["occlusion"], obj["reference"]["occlusion"]
        for n in preds:
            if n != "model":
                report["baselines"][n]["occlusion"] = obj[n]["occlusion"]
    elif arcade:
        counter = arcade_block(report, ref, per_h, ds, ids, episodes, preds, vkey, C, H, cfg)
        if counter is None:
            no_counter = report["identity"]["reason"]
    else:
        for key in ("identity", "physics", "causality", "occlusion"):
            report[key] = ref[key] = unavailable(no_gt)
        report["thresholds"] = unavailable(no_gt)
    done("objects")

    # ---- surprise --------------------------------------------------------------------------------
    if bounce or sim is not None:
        report["surprise"], ref["surprise"], report.setdefault("baselines", {})["copy_last"]["surprise"] = \
            run_surprise(sess, episodes, spec, vkey, cfg) if bounce else run_surprise_frames(sess, episodes, spec,
                                                                                             vkey, cfg, sim)
    else:
        report["surprise"] = ref["surprise"] = unavailable(
            no_gt if not (palette or probe or arcade) else no_sim or "the surprise test edits bounce GT tables or tabletop "
            "GT frames (gt.segmentation); this world is neither")
    done("surprise")

    # ---- controllability ------------------------------------------------------------------------
    report["controllability"], ref["controllability"] = run_controllability(sess, episodes, spec, vkey, cfg, bounce,
                                                                            preds["model"][vkey], sim, no_sim)
    if sim is not None:
        sim.close()
    done("controllability")

    # ---- long free runs: the model beside the world, and its start-end drift (reference-free) ---------
    if cfg.free_steps >= 2:
        from genworld.evaluate.start_end import start_end_block

        report["free_run"], ref["free_run"], runs, how = free_run_stage(sess, ds, ids, episodes, vkey, C, cfg,
                                                                        counter, no_counter, rebuild)
        done("free_run")
        report["drift"]["start_end"], ref["drift"]["start_end"] = start_end_block(ds, ids, episodes, vkey, C, runs,
                                                                                  how, cfg.seed)
    else:
        report["free_run"] = ref["free_run"] = unavailable("--free-steps below 2")
        report["drift"]["start_end"] = ref["drift"]["start_end"] = unavailable("--free-steps below 2")
        done("free_run")
    done("start_end")

    report["reference"] = ref
    from genworld.evaluate.report import write_report

    timing["total_before_report"] = round(time.perf_counter() - t_start, 3)
    report["timing"] = timing
    write_report(report, out_dir, spec, episodes, preds["model"], psnr_ep["model"], C, H)
    done("report")
    timing["total"] = round(time.perf_counter() - t_start, 3)
    from genworld.evaluate.report import write_json

    write_json(report, out_dir / "report.json")
    bar.close()
    return report


def arcade_block(report: dict[str, Any], ref: dict[str, Any], per_h: dict[str, Any], ds: Any, ids: list[int],
                 episodes: list[dict[str, np.ndarray]], preds: dict[str, Any], vkey: str, C: int, H: int,
                 cfg: EvalConfig) -> Any:
    """Atari worlds: fill identity, physics, baselines, thresholds and per-h persistence of `report` and `ref`
    from the learned-palette reader (`arcade_eval`), or mark them unavailable when its check fails; returns the
    checked reader as an `ObjectCounter` (None when it failed)."""
    from genworld.evaluate.arcade_eval import arcade_objects_all

    obj = arcade_objects_all(ds, ids, _window(episodes, vkey, C, H),
                             {n: _with_anchor(episodes, vkey, C, p[vkey]) for n, p in preds.items()}, vkey, cfg.seed)
    report["objects"] = {"method": "arcade learned palette (evaluate/arcade_objects.py)", "check": obj.pop("check")}
    report["thresholds"], report["calibration"] = obj.pop("thresholds"), obj.pop("calibration")
    none = "Atari worlds record no contacts, occluder or object states: only frame-read objects are scored"
    for key in ("causality", "occlusion"):
        report[key] = ref[key] = unavailable(none)
    if "unavailable" in obj:
        for key in ("identity", "physics"):
            report[key] = ref[key] = unavailable(obj["unavailable"])
        return None
    counter = obj.pop("reader")
    for key in ("identity", "physics"):
        report[key], ref[key] = obj["model"][key], obj["reference"][key]
    report["baselines"] = {n: {"identity": obj[n]["identity"], "physics": obj[n]["physics"]} for n in preds
                           if n != "model"}
    per_h["persistence"] = {n: obj[n]["persistence_per_h"] for n in preds}
    ref["per_horizon"]["persistence"] = obj["reference"]["persistence_per_h"]
    return counter


def free_run_stage(sess: Any, ds: Any, ids: list[int], episodes: list[dict[str, np.ndarray]], vkey: str, C: int,
                   cfg: EvalConfig, counter: Any, no_counter: str, rebuild: Any
                   ) -> tuple[dict[str, Any], dict[str, Any], np.ndarray, str]:
    """(report, reference) of the model's long free run beside the true world (`free_run`), the model's frames
    (B, N, S, S, 3) and how the actions were chosen; `counter` the identity block's object reader (None:
    unavailable for `no_counter`), `rebuild` a factory of the world where the dataset records no recipe."""
    from genworld.evaluate import free_run as F

    eps, run_ids = episodes[: cfg.free_contexts], ids[: cfg.free_contexts]
    acts, how = F.free_actions(eps, C, cfg.free_steps, ds.spec.action, np.random.default_rng(cfg.seed + 3))
    twin, world = None, f"no object reader to score the free run with: {no_counter}"
    if counter is not None:
        make = F.recipe_world(ds) or rebuild
        twin, world = (F.twin_session(make, ds, run_ids, eps, C) if make is not None else
                       (None, f"world {ds.spec.name!r} cannot be rebuilt: the dataset records no collect recipe "
                              "(meta/info.json genworld_collect) and the world has no rebuild from its spec"))
    model, steps = F.step_together(sess, twin, eps, C, acts, lambda k: k == vkey or k.startswith("gt."))
    if twin is None or steps is None:
        r = unavailable(world)
        return r, r, model[vkey], how
    twin.close()
    truth = {k: np.concatenate([np.stack([ep[k][C - 1] for ep in eps])[:, None], v], 1) for k, v in steps.items()
             if k in eps[0]}
    frames = _with_anchor(eps, vkey, C, model[vkey])
    out, ref = F.free_run_block(counter, frames, truth[vkey], truth, run_ids, how, world, C)
    return out, ref, model[vkey], how


def subject_block(preds: dict[str, np.ndarray], truth: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    """(report, reference) feature subject consistency, local (METRICS.md 3.4) of every system's frames."""
    from genworld.evaluate.subject import subject_report

    if truth.shape[1] < 2:
        r = unavailable("subject consistency compares frames within a rollout: it needs --horizon >= 2")
        return r, r
    sc = subject_report(preds, truth)
    out = {"sc_local": sc["sc"].pop("model"), "gt": sc["gt"], "gap": sc["gap"].pop("model"),
           "baselines": {n: {"sc_local": sc["sc"][n], "gap": sc["gap"][n]} for n in sc["sc"]},
           "episodes": sc["episodes"], "horizons": sc["horizons"], "encoder": sc["encoder"],
           "method": "VBench's subject-consistency formula over h = 1..H with the KD-local encoder's first-stage "
                     "channel means; gap = SC of the ground truth - SC of the system (below 0: more static than "
                     "the world)"}
    if sc["episodes"] < 4:
        out["note"] = (f"only {sc['episodes']} episodes: the features are centred on their own mean (validated with "
                       "16), so SC is less comparable with other reports")
    return out, {"sc_local": sc["gt"], "gap": 0.0}


def variance_frames(spec: Any, episodes: list[dict[str, np.ndarray]], vkey: str, C: int, H: int, cfg: EvalConfig
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Two physical-variance runs (E, H+1, S, S, 3) of the bounce simulator, frame 0 the real one."""
    from genworld.evaluate.motion import variance_runs
    from genworld.worlds.bounce import world_from_spec_config

    world = world_from_spec_config(spec.config, spec.name)
    runs = variance_runs(world, episodes, C, H, vkey, np.random.default_rng(cfg.seed + 2))
    world.close()
    return runs


def motion_block(preds: dict[str, np.ndarray], truth: np.ndarray, runs: tuple[np.ndarray, np.ndarray] | None
                 ) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[float]]]:
    """(report, reference, per-h mask IoU per system) of the Physics-IQ-style motion-mask score (METRICS.md 4.9),
    normalised by the two perturbed simulator `runs` (`variance_frames`; None: raw metrics, no score)."""
    from genworld.evaluate import motion as M

    pv, how = None, ("no score: the physical variance needs the bounce simulator re-run from gt.objects with "
                     "perturbed initial conditions, which this world cannot do")
    if runs is not None:
        pv = M.mean_scores(*runs)
        how = (f"two bounce simulator runs per episode from the GT state of step C-1 with every position moved by "
               f"uniform noise of ±{M.PERTURB} px, stepped with the true actions")
    res = M.motion_report(preds, truth, pv, how)
    systems = res["systems"]
    iou = {n: systems[n].pop("iou_per_h") for n in systems}
    block = lambda n: {**systems[n], "score": None if res["score"] is None else res["score"][n]}  # noqa: E731
    out = {"physics_iq_local": block("model")["score"], **{k: systems["model"][k] for k in M.KEYS},
           "baselines": {n: block(n) for n in systems if n != "model"}, "pv": res["pv"],
           "threshold_grey": res["threshold_grey"],
           "method": "motion masks |grey(x_t) - mean of the earlier frames| > 10 with 3x3 opening and closing; "
                     "spatial, spatiotemporal and weighted spatial IoU with the GT masks and frame MSE, each divided "
                     "by its physical variance; score = 100 x [mean IoU ratio - (MSE - PV_MSE)] clipped to [0, 100]"}
    ref = {"physics_iq_local": None if pv is None else 100.0, "spatial_iou": 1.0, "spatiotemporal_iou": 1.0,
           "weighted_spatial_iou": 1.0, "mse": 0.0}
    return out, ref, iou


def objects_eval_all(ds: Any, ids: list[int], episodes: list[dict[str, np.ndarray]], preds: dict[str, Any],
                     spec: Any, vkey: str, C: int, H: int, cfg: EvalConfig, config: dict[str, Any],
                     objects_eval: Any) -> dict[str, Any]:
    """Calibrate thresholds on GT episodes the report does not score, then score every system and the GT; "reader"
    is the segmentation as an `ObjectCounter` (for the free run)."""
    from genworld.evaluate.calibrate import calibrate
    from genworld.evaluate.objects import Segmenter

    akey = next((m.key for m in spec.of_kind("audio")), None)
    tkey = next((m.key for m in spec.of_kind("touch")), None)
    others = [i for i in range(ds.num_episodes - 1, -1, -1) if i not in set(ids)][:4]
    cal_eps = [ds.episode(i) for i in others] if others else episodes
    th = calibrate(cal_eps, config, vkey, akey)
    cal = {"episodes": others or ids, "note": ("GT episodes not scored in this report, re-rendered with ±0.3 px "
                                               "jitter; thresholds = 99.5th percentiles (<= 1% false positives)"
                                               if others else "no spare episodes: calibrated on the scored ones")}
    seg = Segmenter(config, th)
    gt_frames = _window(episodes, vkey, C, H)
    tables = _window(episodes, "gt.objects", C, H).astype(np.float64)
    contacts = _window(episodes, "gt.contacts", C, H)
    gt_cache = [[seg.blobs(f)[0] for f in ep] for ep in gt_frames]
    gt_a = _window(episodes, akey, C, H) if akey else None
    gt_t = _window(episodes, tkey, C, H) if tkey else None
    out: dict[str, Any] = {"thresholds": th.to_json(), "calibration": cal,
                           "reader": objects_eval.TrackCounter(seg, th, config, lambda s: s["gt.objects"])}
    return out | _score_systems(objects_eval, episodes, preds, vkey, akey, tkey, C, gt_frames, tables, contacts,
                                seg, th, config, spec.fps, gt_a, gt_t, gt_cache)


def _score_systems(objects_eval: Any, episodes: list[dict[str, np.ndarray]], preds: dict[str, Any], vkey: str,
                   akey: str | None, tkey: str | None, C: int, gt_frames: np.ndarray, tables: np.ndarray,
                   contacts: np.ndarray, seg: Any, th: Any, config: dict[str, Any], fps: float,
                   gt_a: np.ndarray | None, gt_t: np.ndarray | None, gt_cache: list,
                   momentum: bool = True) -> dict[str, Any]:
    """Object, physics and causality scores of every predicted system and of the ground truth ("reference")."""
    out: dict[str, Any] = {}
    for name, p in preds.items():
        a = _with_anchor(episodes, akey, C, p[akey]) if akey and akey in p else None
        t = _with_anchor(episodes, tkey, C, p[tkey]) if tkey and tkey in p else None
        out[name] = objects_eval.score_system(_with_anchor(episodes, vkey, C, p[vkey]), gt_frames, tables, contacts,
                                              seg, th, config, fps, a, t, gt_a, gt_t, gt_cache, momentum)
    out["reference"] = objects_eval.score_system(gt_frames, gt_frames, tables, contacts, seg, th, config, fps,
                                                 gt_a, gt_t, gt_a, gt_t, gt_cache, momentum)
    return out


def probe_eval_all(ds: Any, ids: list[int], run_dir: Path, episodes: list[dict[str, np.ndarray]],
                   preds: dict[str, Any], spec: Any, vkey: str, C: int, H: int, cfg: EvalConfig,
                   config: dict[str, Any], objects_eval: Any, max_fit_frames: int = 400) -> dict[str, Any]:
    """MuJoCo worlds: fit the segmentation probe on GT frames of training episodes, calibrate thresholds on
    other unscored episodes, report its accuracy on the scored episodes' GT frames, then score every system;
    "reader" is the probe as an `ObjectCounter` (for the free run)."""
    import json

    from genworld.evaluate.calibrate import calibrate_probe
    from genworld.evaluate.probe import (
        ProbeSegmenter,
        detector_config,
        detector_contacts,
        detector_tables,
        fit_probe,
        probe_accuracy,
    )

    scored = set(ids)
    spare = [i for i in range(ds.num_episodes - 1, -1, -1) if i not in scored]
    split = Path(run_dir) / "split.json"
    train = set(json.loads(split.read_text()).get("train", [])) if split.exists() else set()
    spare.sort(key=lambda i: (i not in train, -i))  # training episodes first: the probe may fit on them
    cal_ids, fit_ids = spare[-4:] if len(spare) > 4 else [], spare[:-4] if len(spare) > 4 else spare
    notes = []
    if not fit_ids:
        fit_ids = list(ids)
        notes.append("no unscored episodes: the probe was fitted on the scored episodes' frames (its accuracy "
                     "below is not held out)")
    if not cal_ids:
        cal_ids = list(fit_ids)
        notes.append("fewer than 5 unscored episodes: thresholds calibrated on the probe's own training episodes")
    fit_ids = fit_ids[:8]
    keys = [vkey, "gt.segmentation"]
    fit_eps = [ds.episode(i, keys=keys) for i in fit_ids]
    every = max(1, -(-sum(len(e[vkey]) for e in fit_eps) // max_fit_frames))
    frames = np.concatenate([e[vkey][::every] for e in fit_eps])
    labels = np.concatenate([e["gt.segmentation"][::every] for e in fit_eps])
    probe = fit_probe(frames, labels, len(config["palette"]) + 1, seed=cfg.seed, episodes=fit_ids)
    own = "gt.objects" in spec and tuple(spec["gt.objects"].names or ()) == OBJECT_COLUMNS  # the world's own tables
    gt_keys = ["gt.objects" if own else "gt.bodies", "gt.contacts"]
    akey = next((m.key for m in spec.of_kind("audio")), None)
    tkey = next((m.key for m in spec.of_kind("touch")), None)
    cal_eps = [ds.episode(i, keys=keys + gt_keys + [k for k in (akey, tkey) if k])
               for i in cal_ids]
    th = calibrate_probe(cal_eps, config, vkey, probe, akey, tkey)
    seg = ProbeSegmenter(config, th, probe)
    gt_frames = _window(episodes, vkey, C, H)
    gt_seg = _window(episodes, "gt.segmentation", C, H)
    acc = probe_accuracy(seg, gt_frames.reshape(-1, *gt_frames.shape[2:]), gt_seg.reshape(-1, *gt_seg.shape[2:]))
    acc.update({"fit": probe.to_json(), "measured_on": f"GT frames of the {len(ids)} scored episodes (steps "
                f"{C - 1}..{C + H - 1}), against their gt.segmentation", "notes": notes})
    window = [{k: ep[k][C - 1: C + H] for k in gt_keys} for ep in episodes]
    tables = np.stack([detector_tables(w, config) for w in window])
    contacts = np.stack([detector_contacts(w["gt.contacts"], config) for w in window])
    gt_cache = [seg.gt_blobs(f, s) for f, s in zip(gt_frames, gt_seg)]
    dcfg = detector_config(config)
    cal = {"episodes": cal_ids, "note": "GT frames of episodes neither scored nor fitted on, read by the probe and "
           "compared with their gt.segmentation masks; thresholds = 99.5th percentiles (<= 1% false positives); "
           f"no size check for palette colours {list(th.size_skip)} (fingertip, and bodies the probe reads poorly)"}
    reader = objects_eval.TrackCounter(
        seg, th, dcfg, lambda s: detector_tables(s, config),
        lambda f, s: seg.gt_blobs(f, s["gt.segmentation"]) if "gt.segmentation" in s else None,
        "the segmentation probe (the world's own objects from its gt.segmentation where it renders one)")
    out: dict[str, Any] = {"thresholds": th.to_json(), "calibration": cal, "probe": acc, "reader": reader}
    gt_a = _window(episodes, akey, C, H) if akey else None
    gt_t = _window(episodes, tkey, C, H) if tkey else None
    return out | _score_systems(objects_eval, episodes, preds, vkey, akey, tkey, C, gt_frames, tables, contacts,
                                seg, th, dcfg, spec.fps, gt_a, gt_t, gt_cache, momentum=False)


def run_surprise(sess: Any, episodes: list[dict[str, np.ndarray]], spec: Any, vkey: str, cfg: EvalConfig
                 ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model, simulator reference, copy-last) surprise accuracies on matched possible/impossible pairs."""
    from genworld.evaluate import surprise as S
    from genworld.worlds.bounce import world_from_spec_config
    from genworld.worlds.bounce.render import Painter

    rng = np.random.default_rng(cfg.seed)
    pairs, missing = S.make_pairs(episodes, spec.config, cfg, rng)
    if not pairs:
        r = unavailable("no clip pairs could be made: " + "; ".join(f"{k}: {v}" for k, v in missing.items()))
        return r, r, r
    painter = Painter(spec.config)
    clips = []
    for p in pairs:
        for tab in (p.possible, p.impossible):
            clips.append(S.clip_steps(tab, episodes[p.episode], p.start, vkey, painter))
    world = world_from_spec_config(spec.config, spec.name)
    return _surprise_systems(sess, spec, pairs, missing, clips, cfg, vkey,
                             S.sim_errors(clips, cfg.context, vkey, world),
                             "pairs edited from GT tables and re-rendered",
                             "the simulator itself, stepped from each clip's previous GT table (an ideal predictor)")


def _surprise_systems(sess: Any, spec: Any, pairs: list[Any], missing: dict[str, str], clips: list[Any],
                      cfg: EvalConfig, vkey: str, sim_errs: Any, edits: str, sim_method: str
                      ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model, simulator, copy-last) surprise accuracies on the same clip pairs; `edits` says how the
    impossible clips were made and `sim_method` what the simulator reference is."""
    from genworld.evaluate import surprise as S
    from genworld.evaluate.baselines import CopyLastSession

    res = []
    for errs in (S.teacher_forced_errors(sess, clips, cfg.context, vkey), sim_errs,
                 S.teacher_forced_errors(CopyLastSession(spec), clips, cfg.context, vkey)):
        r = S.accuracy(pairs, errs)
        r["missing_types"] = missing
        r["method"] = (f"teacher-forced per-step frame MSE, surprise = max over the {cfg.surprise_steps - S.EVENT} "
                       f"steps from the event on; {edits}")
        res.append(r)
    res[1]["method"] = sim_method
    return res[0], res[1], res[2]


def run_surprise_frames(sess: Any, episodes: list[dict[str, np.ndarray]], spec: Any, vkey: str, cfg: EvalConfig,
                        world: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Tabletop: (model, simulator reference, copy-last) surprise accuracies on pairs of GT clips, the impossible
    one edited with gt.segmentation from the event on."""
    from genworld.evaluate import tabletop_sim as T

    rng = np.random.default_rng(cfg.seed)
    pairs, missing = T.make_pairs(episodes, spec.config, cfg, vkey, rng, world)
    if not pairs:
        r = unavailable("no clip pairs could be made: " + "; ".join(f"{k}: {v}" for k, v in missing.items()))
        return r, r, r
    clips = [T.clip_steps(f, episodes[p.episode], p.start, vkey) for p in pairs for f in (p.possible, p.impossible)]
    return _surprise_systems(
        sess, spec, pairs, missing, clips, cfg, vkey, T.sim_errors(clips, cfg.context, vkey, world),
        "impossible clips are GT frames with one object erased (table painted from a clean plate of the episode), "
        "recoloured or moved 14-22 px, using gt.segmentation; wall: both clips rendered from gt.bodies from the "
        "event on, the object meeting the rim kept at its earlier velocity in the impossible one",
        "the MuJoCo world itself, rebuilt from each clip's previous GT bodies (the real state, the same in both "
        "clips) and stepped with the real action")


def run_controllability(sess: Any, episodes: list[dict[str, np.ndarray]], spec: Any, vkey: str, cfg: EvalConfig,
                        bounce: bool, true_frames: np.ndarray | None = None, sim: Any = None,
                        no_sim: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """(model, reference) controllability: action sensitivity of the model relative to the simulator's.

    `sim`: a tabletop world to re-simulate from gt.bodies (bounce builds its own from gt.objects)."""
    from genworld.evaluate.controllability import (
        alternative_actions,
        change,
        direction,
        model_sensitivity,
        sim_rollouts,
    )
    from genworld.evaluate.rollout import open_loop

    C = cfg.context
    steps = min(cfg.control_steps, min(len(ep[spec.action.key]) for ep in episodes) - C + 1)
    rng = np.random.default_rng(cfg.seed + 1)
    acts = np.stack([ep[spec.action.key][C - 1: C - 1 + steps] for ep in episodes])
    alt = alternative_actions(acts, spec.action, rng)
    if true_frames is not None and true_frames.shape[1] >= steps and sess.temperature == 0:
        m_true = true_frames[:, :steps]  # the main rollout: a deterministic session gives the same frames again
    else:
        m_true = open_loop(sess, episodes, C, steps)[vkey]
    m, m_alt = model_sensitivity(sess, episodes, C, steps, alt, vkey, m_true)
    out: dict[str, Any] = {"model_change": m, "steps": steps,
                           "alternative": "negated true actions (random pushes where |a| < 0.2)"
                           if not spec.action.discrete else "a different random discrete action each step"}
    if sim is not None:
        from genworld.evaluate.tabletop_sim import sim_rollouts as tabletop_rollouts

        g_true, g_alt = tabletop_rollouts(sim, episodes, C, steps, alt, vkey)
    elif not (bounce and "gt.objects" in spec):
        out.update(unavailable(no_sim or "ground-truth sensitivity needs a bounce dataset with gt.objects or a "
                               "tabletop dataset with gt.bodies to re-simulate"))
        return out, unavailable(out["reason"])
    else:
        from genworld.worlds.bounce import world_from_spec_config

        g_true, g_alt = sim_rollouts(world_from_spec_config(spec.config, spec.name), episodes, C, steps, alt, vkey)
    g = change(g_true, g_alt)
    out.update({"available": True, "gt_change": g, "ratio": m / g if g > 0 else None,
                "direction": direction(m_true, m_alt, g_true, g_alt),
                "method": "ratio: mean |frame(true actions) - frame(alternative actions)| on [0,1], model / simulator; "
                          "direction: cosine between the model's and the simulator's frame change"})
    return out, {"available": True, "ratio": 1.0, "direction": 1.0, "model_change": g, "gt_change": g,
                 "note": "the simulator against itself (1 by construction)"}
