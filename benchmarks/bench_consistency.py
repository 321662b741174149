"""Consistency of the tiny preset on four worlds: does the world stay itself?

Per world (bounce, tabletop, arcade:Pong, arcade:Breakout; 200 training episodes x 64 steps, seed 0; 24 held-out
episodes of seed 5000), `tiny` trained 10 minutes, two worlds at a time with one torch thread each (the 2-core
machine's budget), then scored by `genworld eval` (context 4, horizon 32, the long free run of 960 steps beside the
world): PSNR at h = 1 and 32 against copy-last, the valid horizon, identity persistence, the physics rates
(vanish, spawn, size and colour change, overlap) and the free run's persistence (whole run, last quarter).

It takes about 25 minutes, so `benchmarks/run.py` runs it only when named: `python benchmarks/run.py consistency`.
GENWORLD_CONSISTENCY_DIR keeps data, runs and reports (default: a temporary directory); a finished run found there
is scored again, not retrained. GENWORLD_CONSISTENCY_MINUTES changes the training clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

OPT_IN = True  # run only when named on the command line
WORLDS = ("bounce", "tabletop", "arcade:Pong", "arcade:Breakout")


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "genworld.cli", *args]


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "OMP_NUM_THREADS": str(threads)}


def _check(p: subprocess.CompletedProcess, what: str) -> None:
    if p.returncode != 0:
        raise RuntimeError(f"{what} failed: {p.stderr[-2000:]}")


def _score(world: str, report: Path) -> dict:
    r = json.loads((report / "report.json").read_text())
    psnr, phys, free = r["per_horizon"]["psnr"], r.get("physics", {}), r.get("free_run", {})
    rates = ("vanish_rate", "spawn_rate", "size_change_rate", "colour_change_rate", "overlap_rate")
    quarters = free.get("quarters") or [{}]
    return {"world": world, "psnr_h1_db": round(psnr["model"][0], 2), "copy_last_h1_db": round(psnr["copy_last"][0], 2),
            "psnr_h32_db": round(psnr["model"][-1], 2), "copy_last_h32_db": round(psnr["copy_last"][-1], 2),
            "ssim_h1": round(r["per_horizon"]["ssim"]["model"][0], 4),
            "copy_last_ssim_h1": round(r["per_horizon"]["ssim"]["copy_last"][0], 4),
            "valid_horizon": r["valid_horizon"], "valid_horizon_ssim": r.get("valid_horizon_ssim"),
            "persistence": r.get("identity", {}).get("persistence"),
            **{k: phys.get(k) for k in rates if isinstance(phys.get(k), int | float)},
            "free_run_persistence": free.get("persistence"),
            "free_run_persistence_last_quarter": quarters[-1].get("persistence"),
            "free_run_spawn_rate": free.get("spawn_rate")}


def run(quick: bool) -> dict:
    minutes = os.environ.get("GENWORLD_CONSISTENCY_MINUTES", "0.5" if quick else "10")
    keep = os.environ.get("GENWORLD_CONSISTENCY_DIR")
    worlds = WORLDS[:2] if quick else WORLDS
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(keep or tmp)
        names = {w: w.replace(":", "_") for w in worlds}
        for w, n in names.items():
            for sub, eps, seed in (("data", 200, 0), ("test", 24, 5000)):
                _check(subprocess.run(_cmd("collect", w, "--episodes", str(eps), "--steps", "64", "--out",
                                           str(root / sub / n), "--seed", str(seed), "--quiet"),
                                      env=_env(2), capture_output=True, text=True), f"collect {w}")
        todo = [w for w in worlds if not (root / "runs" / names[w] / "checkpoints").exists()]
        for i in range(0, len(todo), 2):  # two at a time, one thread each
            logs = {w: root / f"train-{names[w]}.log" for w in todo[i: i + 2]}
            procs = [(w, subprocess.Popen(_cmd("train", "--data", str(root / "data" / names[w]), "--out",
                                               str(root / "runs" / names[w]), "--preset", "tiny", "--max-minutes",
                                               minutes), env=_env(1), stdout=subprocess.DEVNULL,
                                          stderr=logs[w].open("w"))) for w in todo[i: i + 2]]
            for w, p in procs:
                if p.wait() != 0:
                    raise RuntimeError(f"train {w} failed: {logs[w].read_text()[-2000:]}")
        scores = []
        for w, n in names.items():
            rep = root / "reports" / n
            _check(subprocess.run(_cmd("eval", "--run", str(root / "runs" / n), "--data", str(root / "test" / n),
                                       "--out", str(rep), "--episodes", "24", "--quiet"),
                                  env=_env(2), capture_output=True, text=True), f"eval {w}")
            scores.append(_score(w, rep))
    return {"minutes": float(minutes), "worlds": scores,
            "protocol": "tiny, 200 x 64 training episodes (seed 0), two runs at a time with one torch thread each; "
                        "24 x 64 held-out episodes (seed 5000), context 4, horizon 32, free run 960 steps"}
