"""Scaling curve: held-out quality of the same recipe trained for longer and at a larger size.

Per world (bounce, tabletop: 200 training episodes x 64 steps; 24 held-out episodes of unseen seeds), the `tiny`
preset trained 8, 15 and 60 minutes and `small` trained 60 minutes, each scored by `genworld eval` (context 4,
horizon 32): PSNR at h = 1 against copy-last, the valid horizon, identity persistence and the long free run's
persistence beside the world. More compute must give better numbers.

It takes hours (about 2.4 h of training per world on 2 cores), so `benchmarks/run.py` runs it only when named:
`python benchmarks/run.py scaling`. GENWORLD_SCALING (e.g. "tiny:8,tiny:15,tiny:60,small:60", the default) and
GENWORLD_SCALING_WORLDS (default "bounce,tabletop") choose the points; GENWORLD_SCALING_DIR keeps the data and runs
(default: a temporary directory), so an interrupted curve resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

OPT_IN = True  # run only when named on the command line
POINTS = "tiny:8,tiny:15,tiny:60,small:60"


def _genworld(*args: str) -> None:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    p = subprocess.run([sys.executable, "-m", "genworld.cli", *args], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"genworld {' '.join(args)} failed: {p.stderr[-2000:]}")


def _point(root: Path, world: str, preset: str, minutes: float) -> dict:
    """Train (or resume) one point of the curve and score it on the held-out episodes."""
    name = world.replace(":", "_")
    data, test = root / "data" / name, root / "test" / name
    for out, n, seed in ((data, 200, 0), (test, 24, 5000)):
        _genworld("collect", world, "--episodes", str(n), "--steps", "64", "--out", str(out), "--seed", str(seed),
                  "--quiet")
    run = root / "runs" / f"{name}-{preset}-{minutes:g}"
    _genworld("train", "--data", str(data), "--out", str(run), "--preset", preset, "--max-minutes", str(minutes),
              *(["--resume"] if (run / "config.json").exists() else []))
    rep = root / "reports" / run.name
    _genworld("eval", "--run", str(run), "--data", str(test), "--out", str(rep), "--episodes", "24", "--quiet")
    r = json.loads((rep / "report.json").read_text())
    psnr = r["per_horizon"]["psnr"]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    ident, free = r.get("identity", {}), r.get("free_run", {})
    return {"world": world, "preset": preset, "minutes": minutes,
            "dynamics_steps": max((m.get("step", 0) for m in metrics if m.get("stage") == 2), default=0),
            "psnr_h1_db": round(psnr["model"][0], 2), "copy_last_h1_db": round(psnr["copy_last"][0], 2),
            "psnr_h32_db": round(psnr["model"][-1], 2), "copy_last_h32_db": round(psnr["copy_last"][-1], 2),
            "valid_horizon": r["valid_horizon"], "persistence": ident.get("persistence"),
            "free_run_persistence": free.get("persistence")}


def run(quick: bool) -> dict:
    points = [(p.split(":")[0], float(p.split(":")[1])) for p in os.environ.get("GENWORLD_SCALING", POINTS).split(",")]
    worlds = os.environ.get("GENWORLD_SCALING_WORLDS", "bounce,tabletop").split(",")
    if quick:
        points, worlds = [("tiny", 1.0)], worlds[:1]
    keep = os.environ.get("GENWORLD_SCALING_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(keep or tmp)
        curve = [_point(root, w, preset, minutes) for w in worlds for preset, minutes in points]
    return {"curve": curve, "protocol": "200 x 64 training episodes (seed 0), 24 x 64 held out (seed 5000), "
            "context 4, horizon 32",
            "torch_threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or "default (all cores)"}
