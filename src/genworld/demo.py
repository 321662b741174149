"""`genworld demo`: the main job end to end on the embedded default world, in about ten minutes on 2 cores.

collect `bounce` -> train `tiny` -> evaluate -> dream a video; then print where everything is.
Each stage is the same command a user would type, so the demo is also a tour of the CLI.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="collect bounce data, train the tiny model, evaluate it and dream a video (~10 min on 2 cores)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="demo_out", help="folder for data, run, report and videos (default: demo_out)")
    p.add_argument("--world", default="bounce", help="world to collect from (default: bounce)")
    p.add_argument("--episodes", type=int, default=256, help="episodes to collect (default: 256; more data beats more epochs here)")
    p.add_argument("--steps", type=int, default=96, help="steps per episode (default: 96)")
    p.add_argument("--train-minutes", type=float, default=6.0, help="training budget in minutes (default: 6)")
    p.add_argument("--seed", type=int, default=0, help="seed for data and training (default: 0)")
    p.set_defaults(func=run)


def _stage(title: str, argv: list[str]) -> float:
    """Run one `genworld` subcommand in-process; returns its wall time. Raises on failure."""
    from genworld.cli import main

    print(f"\n=== {title}\n$ genworld {shlex.join(argv)}", flush=True)
    t0 = time.perf_counter()
    status = main(argv)
    if status != 0:
        raise RuntimeError(f"demo stage '{title}' failed with status {status}: genworld {shlex.join(argv)}")
    return time.perf_counter() - t0


def _held_out_episode(run_dir: Path) -> int:
    """The first validation episode of the run (never trained on), else 0."""
    import json

    try:
        return int(json.loads((run_dir / "split.json").read_text())["val"][0])
    except (OSError, ValueError, KeyError, IndexError):
        return 0


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    data, run_dir, report, video = out / "data", out / "run", out / "report", out / "dream.mp4"
    times: dict[str, float] = {}
    times["collect"] = _stage(
        "1/4 collect",
        ["collect", args.world, "--episodes", str(args.episodes), "--steps", str(args.steps),
         "--out", str(data), "--seed", str(args.seed), "--workers", "2"],
    )
    times["train"] = _stage(
        "2/4 train",
        ["train", "--data", str(data), "--out", str(run_dir), "--preset", "tiny",
         "--max-minutes", str(args.train_minutes), "--resume"],
    )
    have_eval = importlib.util.find_spec("genworld.evaluate.cli") is not None
    if have_eval:
        times["eval"] = _stage(
            "3/4 evaluate",
            ["eval", "--run", str(run_dir), "--data", str(data), "--out", str(report),
             "--episodes", "8", "--context", "4", "--horizon", "16"],
        )
    episode = _held_out_episode(run_dir)
    times["dream"] = _stage(
        "4/4 dream",
        ["dream", "--run", str(run_dir), "--data", str(data), "--episode", str(episode),
         "--context", "4", "--horizon", "48", "--out", str(video)],
    )
    print("\n=== done in " + ", ".join(f"{k} {v:.0f}s" for k, v in times.items()))
    print(f"  dataset     {data}        (genworld data info {data})")
    print(f"  run         {run_dir}     (config.json, checkpoints, metrics.jsonl)")
    if have_eval:
        print(f"  report      {report}/report.md")
    print(f"  dream video {video}   (held-out episode {episode}: ground truth | model, with the model's sound)")
    print("\nnext:")
    print(f"  genworld play --run {run_dir} --data {data}     # then open http://127.0.0.1:8000")
    print(f"  genworld plan --run {run_dir} --task push --episodes 20 --out {out / 'plan'}")
    return 0
