"""Seconds for `genworld eval` with the default protocol (20 episodes, context 4, horizon 32) on the tiny
model, plus the time of each stage. The model is the tiny preset trained briefly here (eval costs the same
for any weights of one size, but a model that draws discs gives the object tracker real work). Target
(issue 5): under 180 s on 2 cores. Set GENWORLD_BENCH_RUN and GENWORLD_BENCH_DATA to time an existing
run and dataset instead."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def _prepare(root: Path, quick: bool) -> tuple[Path, Path]:
    from genworld.cli import main
    from genworld.train.config import tiny
    from genworld.train.data import load_dataset
    from genworld.train.distributed import DistInfo
    from genworld.train.run import train_run

    data, run = root / "data", root / "run"
    if main(["collect", "bounce", "--episodes", "24", "--steps", "40", "--out", str(data), "--seed", "1",
             "--quiet"]) != 0:
        raise RuntimeError("collect failed")
    store = load_dataset(str(data))
    cfg = tiny(store.spec)
    t = cfg.train
    t.tok_steps, t.dyn_steps, t.val_every, t.device = (20, 10, 1000, "cpu") if quick else (200, 100, 1000, "cpu")
    train_run(cfg, store, run, resume=False, dist=DistInfo(), progress=False)
    return run, data


def run(quick: bool) -> dict:
    from genworld.evaluate.config import EvalConfig
    from genworld.evaluate.evaluator import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if os.environ.get("GENWORLD_BENCH_RUN"):
            run_dir, data = Path(os.environ["GENWORLD_BENCH_RUN"]), Path(os.environ["GENWORLD_BENCH_DATA"])
        else:
            run_dir, data = _prepare(root, quick)
        cfg = EvalConfig(episodes=5 if quick else 20, horizon=32, context=4)
        t0 = time.perf_counter()
        report = evaluate(run_dir, data, root / "report", cfg, progress=False)
        seconds = time.perf_counter() - t0
    source = (f"{os.environ['GENWORLD_BENCH_RUN']} on {os.environ['GENWORLD_BENCH_DATA']}"
              if os.environ.get("GENWORLD_BENCH_RUN") else "tiny preset trained here (collect seed 1)")
    out = {"run": source, "episodes": report["episodes"], "horizon": report["horizon"], "eval_seconds": round(seconds, 1),
           "target_seconds": 180, "meets_target": seconds < 180 or quick,
           "torch_threads": __import__("torch").get_num_threads(),
           "load_avg_1min_at_end": round(os.getloadavg()[0], 2)}
    out.update({f"stage_{k}_s": v for k, v in report["timing"].items()})
    return out
