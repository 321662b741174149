"""`genworld worlds` (what worlds there are and what they produce) and `genworld collect`."""

from __future__ import annotations

import argparse
import json

# Worlds whose name needs an argument are shown with an example.
EXAMPLES = {"arcade": "arcade:Breakout", "gym": "gym:CartPole-v1", "drive": "drive:highway",
            "metaworld": "metaworld:push-v3"}
NOTES = {"metaworld": "Meta-World pins MuJoCo 3.3.0; tabletop runs on it too, so genworld[worlds] installs both side "
                      "by side (tabletop alone, genworld[mujoco], takes any MuJoCo >= 3.2)"}
GYM_IDS = """\
gym ids are Gymnasium's own:
  gym:CartPole-v1                   an env Gymnasium has registered
  gym:my_package.envs:MyEnv-v0      imports my_package.envs first (which registers MyEnv-v0), as
                                    gymnasium.make("my_package.envs:MyEnv-v0") does
  gym:ns/Env-v0                     runs the installed 'gymnasium.envs' plugins of namespace ns
                                    if Gymnasium has not registered it yet
  gym:ale_py:ALE/Pong-v5            an env of a package that registers its envs when imported
A module is imported from the Python path: install its package, or add its folder to PYTHONPATH.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worlds", help="list the worlds, their modalities and exploration policies",
                       description="List registered worlds with their modalities (shape, rate, dtype) and "
                                   "exploration policies. Worlds that need a missing extra say what to install.",
                       epilog=GYM_IDS, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", nargs="?", help="show only this world (e.g. bounce, tabletop, arcade:Pong, gym:Pendulum-v1, "
                                           "gym:my_package.envs:MyEnv-v0)")
    p.add_argument("--json", action="store_true", help="print the specs as JSON")
    p.set_defaults(func=run_worlds)

    c = sub.add_parser(
        "collect", help="record episodes of a world into a dataset (workers, resume)",
        description="Run WORLD under an exploration policy and record episodes as a LeRobot v3.0 dataset "
                    "with sound, touch and ground truth. Episode i depends only on (--seed, i): the result "
                    "does not depend on --workers, and running the same command again after an interruption "
                    "continues where it stopped.",
        epilog="examples:\n  genworld collect bounce --episodes 64 --steps 128 --out data/bounce --workers 2\n"
               "  genworld collect bounce-gravity --episodes 16 --steps 96 --out data/grav --set n_objects=3\n"
               "  genworld collect arcade:Pong --episodes 8 --steps 500 --out data/pong --policy sticky\n"
               "  genworld collect gym:CartPole-v1 --episodes 32 --steps 200 --out data/cartpole\n"
               "  PYTHONPATH=. genworld collect gym:my_envs:MyEnv-v0 --episodes 8 --steps 100 --out data/mine",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("world", help="world name (see `genworld worlds`)")
    c.add_argument("--episodes", type=int, required=True, help="total episodes wanted in --out")
    c.add_argument("--steps", type=int, required=True, help="steps per episode (fewer if the world ends it)")
    c.add_argument("--out", required=True, help="dataset directory (created, or resumed if it holds this job)")
    c.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    c.add_argument("--workers", type=int, default=1, help="simulator processes (default: 1)")
    c.add_argument("--policy", default=None, help="exploration policy (default: mixed, else random)")
    c.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides",
                   help="world config override, repeatable (e.g. --set n_objects=3)")
    c.add_argument("--episodes-per-file", type=int, default=8, help="episodes per committed file (default: 8)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=run_collect)


def _spec_lines(spec) -> list[str]:  # noqa: ANN001
    lines = []
    for m in spec.modalities:
        shape = "x".join(map(str, m.shape)) or "scalar"
        extra = f" choices {list(m.names)}" if m.discrete else (
            f" in [{m.low:g}, {m.high:g}]" if m.low is not None and m.high is not None else "")
        rate = f"{m.rate:g} Hz" if m.kind == "audio" else f"{spec.fps} fps"
        lines.append(f"    {m.key:<28} {m.kind:<8} {shape:<10} {m.dtype:<8} {rate}{extra}")
    return lines


def run_worlds(args: argparse.Namespace) -> int:
    from genworld.worlds import MissingExtraError, make_world, registered_worlds

    entries = registered_worlds()
    names = [args.name] if args.name else sorted(entries)
    specs = {}
    for name in names:
        base = name.partition(":")[0]
        entry = entries.get(base)
        if entry is None:
            make_world(name)  # raises UnknownWorldError listing the known ones
        target = name if (":" in name or base not in EXAMPLES) else EXAMPLES[base]
        if args.json:
            try:
                w = make_world(target)
                specs[target] = w.spec.to_json()
                w.close()
            except MissingExtraError as e:
                specs[target] = {"error": str(e)}
            continue
        print(f"{name}{'  (e.g. ' + EXAMPLES[base] + ')' if base in EXAMPLES and ':' not in name else ''}")
        print(f"  {entry.description}")
        print(f"  policies: {', '.join(entry.policies)}")
        from genworld.plan.tasks import tasks_for

        if tasks_for(name):
            print(f"  planning tasks (genworld plan --task): {', '.join(tasks_for(name))}")
        if base in NOTES:
            print(f"  note: {NOTES[base]}")
        if base == "gym" and ":" not in name:
            print("  the id forms (module, plugin namespace): genworld worlds --help")
        try:
            w = make_world(target)
        except MissingExtraError as e:
            print(f"  not available: {e}\n")
            continue
        except (RuntimeError, ValueError, ImportError) as e:
            print(f"  not available here: {e}\n")
            continue
        print(f"  modalities of {target}:")
        print("\n".join(_spec_lines(w.spec)))
        w.close()
        print()
    if args.json:
        print(json.dumps(specs, indent=2))
    return 0


def run_collect(args: argparse.Namespace) -> int:
    from genworld.worlds.collect import CollectConfig, collect, parse_overrides

    cfg = CollectConfig(world=args.world, episodes=args.episodes, steps=args.steps, out=args.out, seed=args.seed,
                        workers=args.workers, policy=args.policy, overrides=parse_overrides(args.overrides),
                        episodes_per_file=args.episodes_per_file, progress=not args.quiet)
    s = collect(cfg)
    if s.get("already_complete"):
        print(f"{cfg.out}: already complete ({s['episodes']} episodes of {cfg.world}); nothing to do")
        return 0
    resumed = f", resumed at episode {s['resumed_at']}" if s["resumed_at"] else ""
    print(f"{cfg.out}: {s['episodes']} episodes of {cfg.world} ({s['new_episodes']} new{resumed}; "
          f"{s['steps']} steps in {s['seconds']:.1f}s, {s['steps_per_s']:.0f} steps/s, policy {s['policy']})")
    if s.get("interrupted"):
        print(f"interrupted: the {s['episodes']} finished episodes are saved; run the same command to continue")
        return 130
    print(f"next: genworld data info {cfg.out}")
    return 0
