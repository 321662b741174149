"""`genworld plan`: reach goals in the real world with actions planned inside the model, compared with
planning inside the true simulator (the ceiling) and random actions (the floor)."""

from __future__ import annotations

import argparse


def parse_budget(text: str) -> tuple[int, int, int]:
    """`SAMPLES,ITERS,HORIZON` -> three positive ints, or a clear error."""
    parts = text.split(",")
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 3:
        raise argparse.ArgumentTypeError(f"--budget {text!r}: expected SAMPLES,ITERS,HORIZON, e.g. 64,3,8")
    if min(vals) < 1:
        raise argparse.ArgumentTypeError(f"--budget {text!r}: samples, iterations and horizon must all be >= 1")
    return vals  # type: ignore[return-value]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="plan actions toward a goal with the model; compare with the true simulator and random actions",
        description=__doc__ + "\n\nexample:\n  genworld plan --run runs/bounce --task push --episodes 20 --out plan",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run", help="model run directory (from `genworld train`)")
    p.add_argument("--world", help="world name; without --run, only the simulator and random are measured")
    p.add_argument("--task", help="task name (see --list), e.g. push or touch")
    p.add_argument("--list", action="store_true", help="name the tasks for the run's (or --world's) world")
    p.add_argument("--episodes", type=int, default=20, help="episodes per mode (default: 20)")
    p.add_argument("--out", help="output folder for plan.json and plan.mp4")
    p.add_argument("--planner", choices=("cem", "mppi"), default="cem", help="planner (default: cem)")
    p.add_argument("--budget", type=parse_budget, default=(64, 3, 8),
                   help="SAMPLES,ITERS,HORIZON per plan (default: 64,3,8)")
    p.add_argument("--replan-every", type=int, default=1, help="control steps per plan (default: 1)")
    p.add_argument("--steps", type=int, help="control steps per episode (default: the task's)")
    p.add_argument("--context", type=int, default=4, help="real steps given to the model first (default: 4)")
    p.add_argument("--modes", default="model,sim,random",
                   help="which of model,sim,random to run (default: all three)")
    p.add_argument("--videos", type=int, default=2, help="episodes per mode drawn into plan.mp4 (default: 2)")
    p.add_argument("--goal-cost", choices=("state", "pixel", "latent"), default="state",
                   help="reach: goal read from frames (state), pixel distance, or model latent distance")
    p.add_argument("--goal-image", help="reach: PNG of the goal (the world's camera size); default: rendered")
    p.add_argument("--push-cost", choices=("staged", "behind"), default="staged",
                   help="push: staged (agent from proprio, behind then through the observed object) or "
                        "behind (the first version: agent pulled behind the object read from frames)")
    p.add_argument("--threads", type=int, help="torch threads for the model (default: torch's; 1 is much "
                   "faster on a busy machine)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (default: 0)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genworld.plan.experiment import PlanRunConfig, load_model, run_plan
    from genworld.plan.planner import PlannerConfig
    from genworld.plan.tasks import tasks_for

    if args.list:
        name = args.world or (load_model(args.run).spec.name if args.run else None)
        if not name:
            raise ValueError("--list needs --run RUN or --world NAME")
        tasks = tasks_for(name)
        print(f"tasks for world {name!r}: {', '.join(tasks) if tasks else 'none'}")
        return 0
    if not args.task or not args.out:
        raise ValueError("--task and --out are required (see `genworld plan --list` for the tasks)")
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    bad = [m for m in modes if m not in ("model", "sim", "random")]
    if bad or not modes:
        raise ValueError(f"--modes {args.modes!r}: choose from model, sim, random")
    samples, iters, horizon = args.budget
    planner = PlannerConfig(method=args.planner, samples=samples, iterations=iters, horizon=horizon,
                            replan_every=args.replan_every, seed=args.seed)
    cfg = PlanRunConfig(task=args.task, out=args.out, run=args.run, world=args.world, episodes=args.episodes,
                        seed=args.seed, planner=planner, steps=args.steps, context=args.context,
                        videos=args.videos, modes=modes, goal_cost=args.goal_cost, goal_image=args.goal_image,
                        push_cost=args.push_cost)
    if args.threads:
        import torch

        torch.set_num_threads(max(1, args.threads))
    rep = run_plan(cfg)
    for name, key in (("model", "model"), ("simulator (ceiling)", "ceiling"), ("random (floor)", "random")):
        s = rep.get(key)
        if s:
            lo, hi = s["success_ci95"]
            print(f"{name:<20} success {s['success_rate']:.2f} [{lo:.2f}, {hi:.2f}]  "
                  f"steps to success {s['steps_to_success_median']}  {s['seconds_per_step']:.3f} s/step")
    print(f"wrote {args.out}/plan.json")
    return 0
