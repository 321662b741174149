"""Drift summaries of a per-horizon quality q(h), higher = better (METRICS.md section 2).

* Normalised AUC: AUC_q = mean over h in U of min(1, (q(h) - q_base(h)) / (q_ceil(h) - q_base(h))), with
  base = copy-last and ceiling = the physical-variance run: the simulator re-run from the GT state of the
  last context step with every position moved by uniform ±0.5 px, scored against the GT frames (what an
  exact simulator does when it knows the state to half a pixel; `motion.variance_runs`, both of its runs
  averaged). 0 = no better than copy-last, 1 = as good as physics allows, below 0 = worse than copy-last.
  The per-h ratio is clipped at 1: a system above the ceiling knows the state better than to half a pixel
  (the ground truth itself, which reads 60 dB, the PSNR cap, and would otherwise give 6.4 on held-out
  bounce, 1.5 in SSIM; constant velocity in its first steps, which start from the exact state); the
  unclipped mean is reported too.
* Guard: U keeps the horizons where the ceiling beats copy-last by at least MIN_SPAN (0.5 dB PSNR, 0.005
  SSIM); elsewhere the ratio divides by a span near 0 or below it (nothing has moved yet, or physics has
  already forgotten the state) and says nothing. The excluded horizons are listed; with fewer than half
  of the horizons left the AUC is unavailable.
* Drift slope: OLS slope of q(h) over h in [H/4, H] (`frames.drift_slope`), per system.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genworld.evaluate.frames import drift_slope

MIN_SPAN = {"psnr": 0.5, "ssim": 0.005}  # smallest ceiling - copy-last gap (dB, SSIM units) a horizon is scored at
CEILING = "physical_variance"


def normalised_auc(q: np.ndarray, base: np.ndarray, ceil: np.ndarray, min_span: float) -> dict[str, Any]:
    """AUC of curve q (H,) between base (0) and ceiling (1), per h clipped at 1, over horizons where
    ceil - base >= min_span; {"available": False, ...} when fewer than half of the horizons qualify."""
    q, base, ceil = (np.asarray(x, np.float64) for x in (q, base, ceil))
    span = ceil - base
    ok = span >= min_span
    excluded = [int(h) for h in np.flatnonzero(~ok) + 1]
    if 2 * ok.sum() < len(q):
        return {"available": False, "excluded_h": excluded,
                "reason": f"the ceiling beats copy-last by >= {min_span} at only {int(ok.sum())} of {len(q)} "
                          "horizons: too few to normalise by"}
    ratio = (q[ok] - base[ok]) / span[ok]
    return {"auc": float(np.minimum(ratio, 1.0).mean()), "auc_unclipped": float(ratio.mean()),
            "horizons_used": int(ok.sum()), "excluded_h": excluded}


def drift_block(curves: dict[str, dict[str, list[float]]], reference: dict[str, list[float]], systems: list[str],
                no_ceiling: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """(report, reference) drift summaries of `systems` from per-h curves {q: {system: (H,)}} (q = psnr, ssim;
    copy_last and, unless `no_ceiling` says why not, physical_variance among them) and the GT's own curves."""
    H = len(curves["psnr"]["copy_last"])
    auc: dict[str, Any] = {}
    ref_auc: dict[str, Any] = {}
    for q in ("psnr", "ssim"):
        c = curves[q]
        if no_ceiling or CEILING not in c:
            auc[q] = ref_auc[q] = {"available": False, "reason": no_ceiling or "no physical-variance curve"}
            continue
        per = {n: normalised_auc(c[n], c["copy_last"], c[CEILING], MIN_SPAN[q]) for n in systems}
        if per["copy_last"].get("available") is False:
            auc[q] = ref_auc[q] = per["copy_last"]
            continue
        auc[q] = {**{n: v["auc"] for n, v in per.items()}, "unclipped": {n: v["auc_unclipped"] for n, v in per.items()},
                  "horizons_used": per["copy_last"]["horizons_used"], "excluded_h": per["copy_last"]["excluded_h"],
                  "min_span": MIN_SPAN[q]}
        ref_auc[q] = normalised_auc(reference[q], c["copy_last"], c[CEILING], MIN_SPAN[q])["auc"]
    names = systems + ([CEILING] if CEILING in curves["psnr"] else [])
    slope = {q: {n: drift_slope(np.array(curves[q][n])) for n in names} for q in ("psnr", "ssim")}
    out = {"auc": auc, "slope": slope, "slope_horizons": [max(1, H // 4), H],
           "method": "AUC = mean over h of min(1, (q - q_copy_last) / (q_ceiling - q_copy_last)), ceiling = the "
                     "simulator re-run from the GT state of step C-1 with every position moved by uniform ±0.5 px "
                     "(mean of two runs) scored against the GT frames; horizons where the ceiling beats copy-last by "
                     f"less than {MIN_SPAN['psnr']} dB ({MIN_SPAN['ssim']} SSIM) are left out; slope = OLS slope of "
                     "q(h) over h in [H/4, H] (dB or SSIM per step)"}
    ref = {"auc": ref_auc, "slope": {q: drift_slope(np.array(reference[q])) for q in ("psnr", "ssim")}}
    return out, ref
