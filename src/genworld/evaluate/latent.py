"""`genworld eval` on a run trained with latent actions (`genworld train --actions latent[:K]`).

The episodes' actions are replaced by the latent actions the run's latent action model infers from their
frames; then: the PSNR curves of the model against copy-last-frame; where the dataset also holds its true
actions, how much of them the latent actions carry (`probe_accuracy`: each latent action mapped to the true
action it co-occurs with most on the run's training episodes, scored on the evaluated ones, beside the
majority-class rate; `nmi`: normalised mutual information); and the controllability of each latent action
(`controllability`: mean pixel change of the model's frames when the latent actions are replaced by other
ones, the same measure `genworld eval` reports for a true-action model). Blocks that step the real world with
the model's actions (free run, surprise, simulator references) do not apply: a latent action cannot drive
the real world.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from genworld.evaluate.config import EvalConfig

SCHEMA = "genworld.report/1"


def nmi(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised mutual information (geometric mean of the entropies) of two label arrays."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    J = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(J, (a, b), 1)
    P = J / J.sum()
    pa, pb = P.sum(1), P.sum(0)
    nz = P > 0
    mi = float((P[nz] * np.log(P[nz] / np.outer(pa, pb)[nz])).sum())

    def h(p: np.ndarray) -> float:
        return float(-(p[p > 0] * np.log(p[p > 0])).sum())

    den = np.sqrt(h(pa) * h(pb))
    return mi / den if den > 0 else 0.0


def probe(train_z: np.ndarray, train_a: np.ndarray, test_z: np.ndarray, test_a: np.ndarray, k: int) -> dict:
    """Latent -> true action by co-occurrence on training steps, accuracy on test steps."""
    n_a = int(max(train_a.max(), test_a.max())) + 1
    M = np.zeros((k, n_a))
    np.add.at(M, (train_z, train_a), 1)
    majority = int(np.bincount(train_a, minlength=n_a).argmax())
    mapping = np.where(M.sum(1) > 0, M.argmax(1), majority)
    return {"probe_accuracy": float((mapping[test_z] == test_a).mean()),
            "majority_accuracy": float((test_a == majority).mean()),
            "nmi": nmi(test_a, test_z), "mapping": mapping.tolist(), "steps": int(len(test_z))}


def latent_report(run_dir: Path, data_dir: Path, out_dir: Path, cfg: EvalConfig, device: str = "cpu") -> dict:
    from genworld.data import Dataset
    from genworld.evaluate.baselines import CopyLastSession
    from genworld.evaluate.controllability import alternative_actions, model_sensitivity
    from genworld.evaluate.episodes import held_out
    from genworld.evaluate.frames import psnr, ssim, valid_horizon
    from genworld.evaluate.report import write_json
    from genworld.evaluate.rollout import open_loop, truth
    from genworld.models.latent_actions import load_latent_actions
    from genworld.rollout.session import WorldSession

    t0 = time.perf_counter()
    meta = json.loads((run_dir / "actions.json").read_text())
    k, vkey = int(meta["k"]), meta["video_key"]
    lam, _ = load_latent_actions(str(run_dir / meta["model"]))
    sess = WorldSession.load(run_dir, device=device, temperature=0.0, seed=cfg.seed)
    ds = Dataset(data_dir)
    if vkey not in ds.spec:
        raise ValueError(f"--data {data_dir}: has no {vkey!r}, the camera run {run_dir} learned its actions from")
    C, H = cfg.context, cfg.horizon
    order = held_out(run_dir, ds.num_episodes, ds.num_episodes)[0]
    ids = [i for i in order if ds.lengths[i] >= C + H][: cfg.episodes]
    if not ids:
        raise ValueError(f"--data {data_dir}: no episode has --context {C} + --horizon {H} steps; lower --horizon")
    keys = [m.key for m in sess.spec.modalities if m.kind in ("video", "audio", "touch", "proprio", "reward", "done")
            and m.key in ds.spec]
    true_key = meta.get("true_action") if meta.get("true_action") in ds.spec else None
    episodes, true_actions = [], []
    for i in ids:
        ep = ds.episode(i, keys=keys + ([true_key] if true_key else []))
        if true_key:
            true_actions.append(ep.pop(true_key))
        ep["action"] = lam.infer(ep[vkey])
        episodes.append(ep)
    true = truth(episodes, C, H)
    preds = {"model": open_loop(sess, episodes, C, H), "copy_last": open_loop(CopyLastSession(sess.spec), episodes, C, H)}
    curves = {n: psnr(p[vkey], true[vkey]).mean(0).tolist() for n, p in preds.items()}
    ssims = {n: ssim(p[vkey], true[vkey]).mean(0).tolist() for n, p in preds.items()}
    vh = valid_horizon(np.asarray(curves["model"]), np.asarray(curves["copy_last"]))
    rng = np.random.default_rng(cfg.seed + 1)
    steps = min(cfg.control_steps, H)
    acts = np.stack([ep["action"][C - 1: C - 1 + steps] for ep in episodes])
    alt = alternative_actions(acts, sess.spec.action, rng)
    control, _ = model_sensitivity(sess, episodes, C, steps, alt, vkey, preds["model"][vkey])
    block: dict[str, Any] = {"k": k, "usage": np.bincount(np.concatenate([e["action"] for e in episodes]),
                                                         minlength=k).tolist(),
                             "controllability": float(control), "controllability_steps": steps}
    if true_key and sess.spec.action.discrete:
        discrete = ds.spec[true_key].discrete
        train_ids = [i for i in json.loads((run_dir / "split.json").read_text()).get("train", [])
                     if i < ds.num_episodes and i not in ids][:64] if (run_dir / "split.json").exists() else []
        if discrete and train_ids:
            tz, ta = [], []
            for i in train_ids:
                e = ds.episode(i, keys=[vkey, true_key])
                tz.append(lam.infer(e[vkey])[:-1])
                ta.append(e[true_key][:-1])
            test_z = np.concatenate([e["action"][:-1] for e in episodes])
            test_a = np.concatenate([a[:-1] for a in true_actions])
            block.update(probe(np.concatenate(tz), np.concatenate(ta).astype(np.int64), test_z,
                               test_a.astype(np.int64), k))
            block["probe_fitted_on"] = f"{len(train_ids)} training episodes of the run (not evaluated)"
        else:
            block["probe_accuracy"] = block["nmi"] = None
            block["probe_reason"] = ("the dataset's true actions are continuous (the probe maps latent to discrete "
                                     "actions)" if not discrete else "no training episodes of the run in --data")
    else:
        block["probe_accuracy"] = block["nmi"] = None
        block["probe_reason"] = "the dataset has no true actions (imported video)"
    report = {
        "schema": SCHEMA, "run": str(run_dir), "data": str(data_dir), "world": ds.spec.name, "fps": ds.spec.fps,
        "actions": "latent", "episodes": len(ids), "episode_ids": ids, "context": C, "horizon": H,
        "psnr_h1": curves["model"][0], "copy_last_psnr_h1": curves["copy_last"][0], "valid_horizon": int(vh),
        "per_horizon": {"psnr": curves, "ssim": ssims}, "latent_actions": block,
        "free_run": {"available": False, "reason": "latent actions cannot drive the real world"},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(report, out_dir / "report.json")
    md = [f"# Evaluation of {run_dir} (latent actions, K = {k})", "",
          f"{len(ids)} episodes of {data_dir}, context {C}, horizon {H}", "",
          f"- PSNR h = 1: model {curves['model'][0]:.2f} dB, copy-last {curves['copy_last'][0]:.2f} dB; "
          f"valid horizon {vh}",
          f"- controllability (pixel change under other latent actions): {control:.4f}",
          f"- probe accuracy latent -> true action: {block.get('probe_accuracy')} (majority "
          f"{block.get('majority_accuracy')}), NMI {block.get('nmi')}", ""]
    (out_dir / "report.md").write_text("\n".join(md))
    return report
