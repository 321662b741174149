"""The `genworld` command: one entry point, one subcommand per job.

Each room that offers commands has a `cli.py` with `register(subparsers)`; those modules import only
argparse at the top and the heavy libraries inside their handlers, so `genworld --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# (module, one line for the overview); a module that is absent is skipped.
COMMAND_MODULES: tuple[str, ...] = (
    "genworld.worlds.cli",  # worlds, collect
    "genworld.data.cli",  # data info | export-video | import
    "genworld.train.cli",  # train
    "genworld.rollout.cli",  # dream
    "genworld.evaluate.cli",  # eval
    "genworld.serve.cli",  # play
    "genworld.plan.cli",  # plan
    "genworld.demo",  # demo
)

EPILOG = """\
typical flow:
  genworld collect bounce --episodes 64 --steps 128 --out data/bounce
  genworld train --data data/bounce --out runs/bounce --preset tiny --max-minutes 8
  genworld dream --run runs/bounce --data data/bounce --episode 0 --context 4 --horizon 32 --out dream.mp4
  genworld eval  --run runs/bounce --data data/bounce --out report
  genworld play  --run runs/bounce --data data/bounce      (then open http://127.0.0.1:8000)
  genworld plan  --run runs/bounce --task push --episodes 20 --out plan
"""


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="genworld",
        description="genworld: a multimodal world model (vision, sound, touch, proprioception, actions).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from genworld import __version__

    parser.add_argument("--version", action="version", version=f"genworld {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `genworld` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, KeyError, ImportError, RuntimeError) as e:
        if getattr(args, "debug", False):
            raise
        print(f"genworld {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
