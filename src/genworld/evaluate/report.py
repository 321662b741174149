"""Writing an evaluation: report.json (schema genworld.report/1), report.md, PNG curves, side-by-side mp4s.

Every file is written to a temporary name and renamed, so a reader never sees half a report.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

LABELS = {"model": "model", "copy_last": "copy-last", "const_velocity": "const-velocity", "reference": "ground truth",
          "tokenizer_ceiling": "tokenizer ceiling",
          "physical_variance": "physical variance (±0.5 px re-run)"}


def _clean(x: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(report: dict[str, Any], path: Path) -> None:
    """report.json, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, (json.dumps(_clean(report), indent=1) + "\n").encode())


def plot_curves(path: Path, title: str, ylabel: str, curves: dict[str, list[float | None]]) -> None:
    """One PNG with a line per system over the horizon."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for name, ys in curves.items():
        y = np.array([np.nan if v is None else v for v in ys], float)
        ax.plot(np.arange(1, len(y) + 1), y, label=LABELS.get(name, name), lw=2 if name == "model" else 1.2,
                ls="--" if name == "reference" else "-")
    ax.set_xlabel("horizon h (steps after the context)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


CURVES = {"psnr": ("PSNR per horizon", "PSNR (dB)"), "ssim": ("SSIM per horizon", "SSIM"),
          "proprio_error": ("Proprioception error", "RMS error / GT std"),
          "state_error": ("Object position error (from frames)", "distance / arena size"),
          "persistence": ("Object persistence", "visible objects present")}


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}g}" if abs(v) >= 1e6 else f"{v:.{nd}f}"
    return str(v)


def _table(rows: list[tuple[str, list[Any]]], head: list[str]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join([name] + [_fmt(v) for v in vals]) + " |" for name, vals in rows]
    return out


def markdown(report: dict[str, Any]) -> str:
    """report.md: headline, per-horizon tables, identity, physics, causality, surprise, controllability."""
    r, ref = report, report.get("reference", {})
    ph = r["per_horizon"]
    L = [f"# genworld eval: {r['world']}", "",
         f"Run `{r['run']}` on `{r['data']}`: {r['episodes']} episodes (ids {r['episode_ids']}), context "
         f"{r['context']}, horizon {r['horizon']}, seed {r['seed']}, temperature 0, true actions, open loop.", ""]
    L += [f"- {n}" for n in r.get("notes", [])] + [""]
    L += ["## Accuracy", "", f"**Valid horizon** (model beats copy-last in PSNR at every step up to h): "
          f"**{r['valid_horizon']}** of {r['horizon']} (SSIM: {r.get('valid_horizon_ssim')}).", ""]
    H = r["horizon"]
    marks = sorted({1, min(4, H), min(8, H), min(16, H), H})
    rows = []
    for metric in ("psnr", "ssim", "proprio_error", "state_error", "persistence", "momentum_change",
                   "motion_mask_iou"):
        for s in ph.get(metric, {}):
            rows.append((f"{metric} · {LABELS.get(s, s)}", [ph[metric][s][h - 1] for h in marks]))
    L += _table(rows, ["metric · system"] + [f"h={h}" for h in marks]) + [""]
    L += [f"![{k}]({k}.png)" for k in CURVES if k in ph] + [""]
    if r.get("summary"):
        L += _table([(LABELS.get(s, s), [v["psnr_mean"], v["ssim_mean"], v["psnr_drift_slope_db_per_step"]])
                     for s, v in r["summary"].items()], ["system", "mean PSNR", "mean SSIM", "PSNR drift dB/step"])
        L += [""]
    L += _drift(r)
    dist = r.get("distribution")
    if isinstance(dist, dict) and "kd_local" in dist:
        h0, h1 = dist["horizons"]
        L += ["## Distribution (KD-local)", "",
              f"Kernel distance (unbiased MMD², KID's cubic kernel) between predicted and ground-truth frames at "
              f"h = {h0}..{h1} ({dist['samples']} frames a side), in the features of a fixed random encoder "
              f"(sha256 {dist['encoder']['sha256']}). Lower is closer to the world; the floor is two halves of the "
              "ground truth against each other.", ""]
        L += _table([("KD-local", [dist["kd_local"]] + [dist["baselines"].get(s) for s in dist["baselines"]]
                      + [dist.get("floor")])],
                    ["metric", "model"] + [LABELS.get(s, s) for s in dist["baselines"]] + ["floor (GT vs GT)"]) + [""]
    L += _subject_and_motion(r)
    base = r.get("baselines", {})
    for section, title in (("identity", "Identity"), ("physics", "Physics violations (per visible object-frame)"),
                           ("causality", "Cross-modal causality"),
                           ("occlusion", "Occlusion: objects re-emerging from behind the occluder")):
        L += [f"## {title}", ""]
        block = r.get(section, {})
        if block.get("available") is False:
            L += [f"Unavailable: {block['reason']}", ""]
            continue
        keys = [k for k, v in block.items() if (isinstance(v, (int, float)) and not isinstance(v, bool)) or v is None]
        cols = ["model"] + [LABELS.get(s, s) for s in base] + ["ground truth"]
        rows = [(k, [block.get(k)] + [(base[s].get(section) or {}).get(k) for s in base]
                 + [(ref.get(section) or {}).get(k)]) for k in keys]
        L += _table(rows, ["metric"] + cols) + [""]
        if section == "physics" and isinstance(block.get("gravity"), dict):
            g = block["gravity"]
            L += [f"Gravity fit: {json.dumps(_clean(g))}", ""]
    L += _free_run(r.get("free_run"), ref.get("free_run"))
    pr = (r.get("objects") or {}).get("probe")
    if isinstance(pr, dict):
        L += ["## Object probe (segmentation of MuJoCo frames)", "",
              f"Per-pixel MLP fitted on GT frames and gt.segmentation of episodes {pr['fit']['train_episodes']} "
              f"({pr['fit']['train_frames']} frames); measured on {pr['measured_on']} ({pr['frames']} frames).", ""]
        L += _table([("pixel accuracy", [pr["pixel_accuracy"], pr["scene_only_accuracy"]])],
                    ["metric", "probe", "all-scene"]) + [""]
        L += _table([(k, [v["mask_iou"], v["mean_frame_iou"], v["centroid_error_px"], v["frames"]])
                     for k, v in pr["per_class"].items()],
                    ["body", "mask IoU (pooled)", "mean frame IoU", "centroid error px", "frames"]) + [""]
        L += [f"Mean object IoU {_fmt(pr['mean_object_iou'])}, centroid error {_fmt(pr['centroid_error_px_mean'])} px "
              f"(95th percentile {_fmt(pr['centroid_error_px_p95'])}), bodies found {_fmt(pr['detected'])}."]
        L += [f"- {n}" for n in pr.get("notes", [])] + [""]
    L += ["## Surprise (violation of expectation)", ""]
    s = r.get("surprise", {})
    if s.get("available") is False:
        L += [f"Unavailable: {s['reason']}", ""]
    else:
        cs, rs = base.get("copy_last", {}).get("surprise") or {}, ref.get("surprise") or {}
        rows = [("all", [s.get("accuracy"), cs.get("accuracy"), rs.get("accuracy"), s.get("pairs")])]
        for kind, v in s.get("per_type", {}).items():
            rows.append((kind, [v["accuracy"], (cs.get("per_type", {}).get(kind) or {}).get("accuracy"),
                                (rs.get("per_type", {}).get(kind) or {}).get("accuracy"), v["pairs"]]))
        L += _table(rows, ["violation", "model", "copy-last", "simulator", "pairs"])
        L += ["", f"Chance is 0.5. {s.get('method', '')}.", ""]
    L += ["## Controllability", ""]
    c = r.get("controllability", {})
    if c.get("available") is False:
        L += [f"Unavailable: {c['reason']} (model change {_fmt(c.get('model_change'), 4)})", ""]
    else:
        L += [f"ratio **{_fmt(c.get('ratio'))}** = model change {_fmt(c.get('model_change'), 4)} / ground-truth "
              f"change {_fmt(c.get('gt_change'), 4)} over {c.get('steps')} steps ({c.get('alternative')}). "
              "0 = ignores actions, 1 = reacts as much as the world.", "",
              f"direction **{_fmt(c.get('direction'))}**: cosine between the model's and the world's frame change "
              "(1 = changes where and how the world does, ~0 = unrelated change such as noise).", ""]
    vids = r.get("files", {}).get("videos", {})
    if vids:
        L += ["## Videos (ground truth | model)", ""]
        L += [f"- {k}: [{Path(v['file']).name}]({Path(v['file']).name}) (episode {v['episode']}, mean PSNR "
              f"{_fmt(v['psnr_mean'], 2)} dB)" for k, v in vids.items()] + [""]
    if isinstance(r.get("thresholds"), dict) and r["thresholds"].get("available", True):
        L += ["## Thresholds (calibrated on ground truth)", "", "```", json.dumps(_clean(r["thresholds"])), "```", ""]
    L += ["## Timing (s)", "", "```", json.dumps(r.get("timing", {})), "```", ""]
    return "\n".join(L)


def _drift(r: dict[str, Any]) -> list[str]:
    """report.md section of the drift summaries: normalised AUC against the physical-variance ceiling, slopes."""
    d = r.get("drift")
    if not d:
        return []
    ref = (r.get("reference", {}).get("drift") or {})
    h0, h1 = d["slope_horizons"]
    L = ["## Drift", "", f"{d['method']}.", ""]
    systems = list(d["slope"]["psnr"])
    rows = []
    for q in ("psnr", "ssim"):
        a = d["auc"][q]
        if a.get("available") is False:
            L += [f"AUC ({q}) unavailable: {a['reason']}.", ""]
        else:
            rows.append((f"AUC {q} (0 = copy-last, 1 = ceiling)", [a.get(n) for n in systems]
                         + [(ref.get("auc") or {}).get(q)]))
            rows.append((f"AUC {q} unclipped", [a["unclipped"].get(n) for n in systems] + [None]))
        rows.append((f"{q} slope per step, h={h0}..{h1}", [d["slope"][q].get(n) for n in systems]
                     + [(ref.get("slope") or {}).get(q)]))
    L += _table(rows, ["metric"] + [LABELS.get(s, s) for s in systems] + ["ground truth"]) + [""]
    excl = {q: d["auc"][q]["excluded_h"] for q in ("psnr", "ssim") if d["auc"][q].get("excluded_h")}
    if excl:
        L += ["Horizons left out of the AUC (ceiling within the minimum span of copy-last): "
              + "; ".join(f"{q} h = {v}" for q, v in excl.items()) + ".", ""]
    return L + _start_end(d.get("start_end"))


def _start_end(se: dict[str, Any] | None) -> list[str]:
    """report.md part of the start-end drift of long free runs (reference-free)."""
    if not se:
        return []
    L = ["### Start-end drift of free runs", ""]
    if se.get("available") is False:
        return L + [f"Unavailable: {se['reason']}.", ""]
    L += [f"{se['method']}. Actions: {se['actions']}. {se['contexts']} free runs; GT: {se['ground_truth']['sequences']} "
          f"episodes of {min(se['ground_truth']['frames'])}-{max(se['ground_truth']['frames'])} frames.", ""]
    if se.get("note"):
        L += [f"Note: {se['note']}.", ""]
    qs = list(se["threshold"])
    rows = [(f"Δ {q}", [se["model"]["delta"][q], se["copy_last"]["delta"][q], se["ground_truth"]["delta"][q],
                        se["threshold"][q]]) for q in qs]
    rows.append(("share flagged", [se["model"]["flagged"], 0.0, se["ground_truth"]["flagged"], None]))
    L += _table(rows, ["metric", "model", "copy-last", "ground truth (floor)", "threshold τ"]) + [""]
    L += [f"Palette: {len(se['palette']['colours'])} colours learned from GT frames, δ = {se['palette']['delta']:.1f} "
          "(RGB). Sharpness and purity: Δ > 0 = the end is blurrier / less pure; colour KL: Δ < 0 = the end's colours "
          "are further from the world's.", ""]
    return L


def _free_run(fr: dict[str, Any] | None, ref: dict[str, Any] | None) -> list[str]:
    """report.md section of the long free run beside the true world, whole run and per quarter."""
    if not fr:
        return []
    L = ["## Long free run beside the world", ""]
    if fr.get("available") is False:
        return L + [f"Unavailable: {fr['reason']}", ""]
    L += [f"{fr['method']}. Actions: {fr['actions']}. World: {fr['world']}.", ""]
    qs = fr["quarters"]
    head = ["metric", f"steps 1-{fr['steps']}"] + [f"steps {q['steps'][0]}-{q['steps'][1]}" if q["steps"] else "–"
                                                    for q in qs] + ["world vs itself"]
    rows = [(k, [fr.get(k)] + [q.get(k) for q in qs] + [(ref or {}).get(k)])
            for k in ("persistence", "spawn_rate", "colour_change_rate", "size_change_rate", "object_frames")]
    L += _table(rows, head) + [""]
    L += [f"Not measured: {k}: {why}." for k, why in (fr.get("unread") or {}).items()]
    return L + ([""] if fr.get("unread") else [])


def _subject_and_motion(r: dict[str, Any]) -> list[str]:
    """report.md sections of feature subject consistency (local) and the motion-mask score (physics_iq_local)."""
    L = ["## Subject consistency (local)", ""]
    sc = r.get("subject") or {}
    if sc.get("available") is False:
        L += [f"Unavailable: {sc['reason']}", ""]
    elif sc:
        base = sc["baselines"]
        L += [f"{sc['method']}; encoder sha256 {sc['encoder']['sha256']}, {sc['episodes']} episodes.", ""]
        if sc.get("note"):
            L += [f"Note: {sc['note']}.", ""]
        L += _table([("SC-local", [sc["sc_local"]] + [base[s]["sc_local"] for s in base] + [sc["gt"]]),
                     ("gap (GT - system)", [sc["gap"]] + [base[s]["gap"] for s in base] + [0.0])],
                    ["metric", "model"] + [LABELS.get(s, s) for s in base] + ["ground truth"]) + [""]
    m = r.get("motion") or {}
    if m:
        base = m["baselines"]
        keys = ["physics_iq_local", "spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou", "mse"]
        L += ["## Motion masks (physics_iq_local)", "", f"{m['method']}.", ""]
        rows = [(k, [m.get(k)] + [base[s].get("score" if k == "physics_iq_local" else k) for s in base]
                 + [(r.get("reference", {}).get("motion") or {}).get(k), (m["pv"] or {}).get(k)]) for k in keys]
        L += _table(rows, ["metric", "model"] + [LABELS.get(s, s) for s in base] + ["ground truth",
                                                                                     "physical variance"])
        pv = m["pv"]
        L += ["", f"Physical variance: {pv.get('method') or pv.get('reason')}.", ""]
    return L


def write_report(report: dict[str, Any], out: Path, spec: Any, episodes: list[dict[str, np.ndarray]],
                 model_pred: dict[str, np.ndarray], psnr_per_episode: np.ndarray, context: int, horizon: int) -> None:
    """Write the PNG curves, the worst and typical episode videos, report.md and report.json into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {"json": "report.json", "markdown": "report.md", "plots": [], "videos": {}}
    ref_ph = report.get("reference", {}).get("per_horizon", {})
    for key, (title, ylabel) in CURVES.items():
        if key in report["per_horizon"]:
            curves = dict(report["per_horizon"][key])
            if key in ref_ph and key not in ("psnr", "ssim"):
                curves["reference"] = ref_ph[key]
            plot_curves(out / f"{key}.png", title, ylabel, curves)
            files["plots"].append(f"{key}.png")
    order = np.argsort(psnr_per_episode)
    picks = {"worst": int(order[0]), "typical": int(order[len(order) // 2])}
    from genworld.rollout.dream import compose_frames, write_mp4

    audios = spec.of_kind("audio")
    for label, j in picks.items():
        ep = episodes[j]
        keys = [k for k in model_pred if k in ep]
        truth = {k: ep[k][: context + horizon] for k in keys}
        model = {k: np.concatenate([ep[k][:context], model_pred[k][j]]) for k in keys}
        frames = compose_frames(spec, truth, model, context)
        audio = model[audios[0].key].reshape(-1) if audios and audios[0].key in model else None
        name = f"{label}_episode.mp4"
        write_mp4(out / name, frames, int(spec.fps), audio, int(audios[0].rate) if audio is not None else 0)
        files["videos"][label] = {"file": name, "episode": report["episode_ids"][j],
                                  "psnr_mean": float(psnr_per_episode[j])}
    report["files"] = files
    _atomic_write(out / "report.md", markdown(_clean(report)).encode())
    write_json(report, out / "report.json")
