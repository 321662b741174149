"""`genworld plan` as a function: plan in the model, in the true simulator (ceiling) and at random
(floor) on the same episodes; write DIR/plan.json and DIR/plan.mp4."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from genworld.plan.planner import PlannerConfig
from genworld.plan.runner import run_mode, sim_session_for, summarise, world_like
from genworld.plan.tasks import make_task
from genworld.plan.video import tile, write_mp4


@dataclass
class PlanRunConfig:
    """One `genworld plan` run."""

    task: str
    out: str
    run: str | None = None
    """model run directory; without it only the ceiling and the floor are measured"""
    world: str | None = None
    """world name (taken from the run when one is given)"""
    episodes: int = 20
    seed: int = 0
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    steps: int | None = None
    """control steps per episode (the task's default when None)"""
    context: int = 4
    videos: int = 2
    """episodes of each mode drawn into plan.mp4"""
    modes: tuple[str, ...] = ("model", "sim", "random")
    goal_cost: str = "state"
    """reach: state | pixel | latent (the ceiling uses state when the model uses latent)"""
    goal_image: str | None = None
    """reach: a PNG goal image of the world's camera size"""
    push_cost: str = "staged"
    """push: staged (default) or behind (the first version's cost; see `BounceTask.push_cost`)"""


def load_model(run_dir: str):  # -> WorldSession
    """The learned model of a run, as a Session (`genworld.rollout.session.WorldSession`)."""
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"run directory {run_dir!r} not found (train one with `genworld train`)")
    try:
        from genworld.rollout.session import WorldSession
    except ImportError as e:
        raise RuntimeError("planning in a model needs genworld.rollout.session.WorldSession, which this "
                           "install lacks; plan in the simulator only with --world NAME and no --run") from e
    return WorldSession.load(run_dir)


def read_goal_image(path: str, world):  # -> np.ndarray (H, W, 3) uint8
    """A goal image from a PNG/JPEG file, checked against the world's camera shape."""
    import numpy as np
    from PIL import Image

    from genworld.plan.goals import check_goal_image, video_key

    if not Path(path).is_file():
        raise FileNotFoundError(f"goal image {path!r} not found")
    try:
        img = np.asarray(Image.open(path).convert("RGB"))
    except OSError as e:
        raise ValueError(f"goal image {path!r} cannot be read as an image: {e}") from e
    return check_goal_image(img, world.spec[video_key(world.spec.keys())].shape, where=f"goal image {path}")


def run_plan(cfg: PlanRunConfig, progress: Callable[[str], None] | None = print) -> dict:
    """Run every mode on the same seeded episodes; returns what is written to plan.json."""
    cfg.planner.check()
    if cfg.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {cfg.episodes}")
    model = None
    modes = list(cfg.modes)
    if cfg.run:
        model = load_model(cfg.run)
        world_name = cfg.world or model.spec.name
    else:
        if not cfg.world:
            raise ValueError("give --run RUN (plan in its model) or --world NAME (simulator and random only)")
        world_name = cfg.world
        modes = [m for m in modes if m != "model"]
    if cfg.goal_cost not in ("state", "pixel", "latent"):
        raise ValueError(f"--goal-cost {cfg.goal_cost!r}: choose state, pixel or latent")
    if (cfg.goal_image or cfg.goal_cost != "state") and cfg.task != "reach":
        raise ValueError(f"--goal-image and --goal-cost apply to the reach task, not {cfg.task!r}")
    if cfg.push_cost not in ("staged", "behind"):
        raise ValueError(f"--push-cost {cfg.push_cost!r}: choose staged or behind")
    over: dict = {"goal_cost": cfg.goal_cost, "push_cost": cfg.push_cost, **({"steps": cfg.steps} if cfg.steps else {})}
    world = world_like(world_name, model.spec.config if model is not None else None)
    if cfg.goal_image:
        over["goal_image"] = read_goal_image(cfg.goal_image, world)
    task = make_task(cfg.task, world_name, **over)
    task.check_world(world)
    if model is not None and model.spec.action.shape != world.spec.action.shape:
        raise ValueError(f"run {cfg.run!r}: model actions {model.spec.action.shape} differ from world "
                         f"{world_name!r} actions {world.spec.action.shape}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    sessions = {"model": model, "sim": None, "random": None}
    results, t0 = {}, time.perf_counter()
    for mode in modes:
        if mode == "sim":
            world.reset(cfg.seed)
            sessions["sim"] = sim_session_for(world)
        mode_task = task if mode == "model" or task.goal_cost != "latent" else replace(task, goal_cost="state")
        if mode == "sim" and getattr(task, "cost_from", None) == "frames":
            mode_task = replace(task, cost_from="gt")  # tabletop: the physics session renders no frames
        results[mode] = run_mode(mode_task, world, mode, cfg.episodes, cfg.seed, sessions[mode], cfg.planner,
                                 cfg.context, record=cfg.videos, progress=progress)
    summary = {m: summarise(r) for m, r in results.items()}
    main = summary.get("model", {})
    report = {
        "task": cfg.task,
        "world": world_name,
        "run": cfg.run,
        "episodes": cfg.episodes,
        "steps_per_episode": task.steps,
        "planner": cfg.planner.method,
        "push_cost": cfg.push_cost if cfg.task == "push" else None,
        "budget": {"samples": cfg.planner.samples, "iterations": cfg.planner.iterations,
                   "horizon": cfg.planner.horizon, "replan_every": cfg.planner.replan_every},
        "success_rate": main.get("success_rate"),
        "success_ci95": main.get("success_ci95"),
        "steps_to_success_median": main.get("steps_to_success_median"),
        "seconds_per_step": main.get("seconds_per_step", summary.get("sim", {}).get("seconds_per_step")),
        "model": main or None,
        "ceiling": summary.get("sim"),
        "random": summary.get("random"),
        "relative_to_ceiling": (main["success_rate"] / summary["sim"]["success_rate"]
                                if main and summary.get("sim", {}).get("success_rate") else None),
        "success_judged_by": "ground truth of the real world (gt.objects / gt.bodies); the model's "
                             "planner sees only predicted steps",
        "ceiling_cost_from": "true positions (TabletopPhysics, no rendering)" if hasattr(task, "cost_from")
                             else "frames rendered by the simulator",
        "seed": cfg.seed,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "config": {**asdict(cfg), "planner": asdict(cfg.planner)},
    }
    tmp = out / "plan.json.tmp"
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, out / "plan.json")
    cols = [r.frames for m in modes for r in results[m] if r.frames]
    if cols:
        write_mp4(out / "plan.mp4", tile(cols), fps=world.spec.fps)
        report["video"] = str(out / "plan.mp4")
    world.close()
    return report
