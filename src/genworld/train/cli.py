"""`genworld train`: fit a world model to a dataset (one process, or many under torchrun)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a world model on a dataset", description=__doc__ + """
Stage 1 fits the tokenizers, stage 2 the dynamics transformer on tokens cached once. Scale out with
  torchrun --nproc-per-node=K -m genworld.cli train --data DIR --out RUN ...""",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset directory (genworld collect / data import)")
    p.add_argument("--out", required=True, help="run directory (config.json, checkpoints, metrics.jsonl)")
    p.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"], help="model size (default tiny)")
    p.add_argument("--max-steps", type=int, help="total optimiser steps, split between the two stages")
    p.add_argument("--max-minutes", type=float, help="wall-clock budget for both stages: steps, validation, checkpoints and tokenizing the data count; "
                   "the statistics before and the contact calibration after (seconds) come on top")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--batch-size", type=int, help="global batch of windows for the dynamics stage")
    p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"], help="default auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the dynamics (GPU)")
    p.add_argument("--seed", type=int, help="seed for the split, sampling and init (default 0)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change one setting of the preset (repeatable), KEY a dotted path into config.json, VALUE "
                        "JSON: e.g. --set model.flow_width=32 --set model.dynamics.window=6 --set train.lr_dyn=2e-3 "
                        "(options: docs/model.md)")
    p.add_argument("--actions", default="dataset",
                   help="dataset (the dataset's own actions, default) or latent[:K]: learn K latent actions (default "
                        "8) from the frames first, for video without actions (genworld data import-video)")
    p.add_argument("--latent-steps", type=int, default=1000, help="training steps of the latent action model "
                   "(default 1000; about 2 minutes on 2 cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to metrics.jsonl)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def apply_overrides(cfg, args: argparse.Namespace):  # noqa: ANN001 - RunConfig, imported lazily
    """Budget and device flags of this command onto a RunConfig."""
    tc = cfg.train
    if args.max_steps is not None:
        if args.max_steps < 2:
            raise ValueError("--max-steps must be at least 2 (one per stage)")
        tc.tok_steps = max(1, round(args.max_steps * tc.tok_fraction))
        tc.dyn_steps = args.max_steps - tc.tok_steps
    if args.max_minutes is not None:
        if args.max_minutes <= 0:
            raise ValueError("--max-minutes must be positive")
        tc.max_minutes = args.max_minutes
        if args.max_steps is None:  # time decides; steps only cap
            tc.tok_steps, tc.dyn_steps = 10**9, 10**9
    if args.batch_size is not None:
        tc.batch_size = args.batch_size
    if args.device is not None:
        tc.device = args.device
    if args.compile:
        tc.compile = True
    if args.seed is not None:
        tc.seed = args.seed
    return cfg


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genworld.train.config import preset, read_run_config, set_options
    from genworld.train.data import load_dataset
    from genworld.train.distributed import init_distributed
    from genworld.train.latent import latent_store, parse_actions
    from genworld.train.run import train_run

    store = load_dataset(args.data)
    out = Path(args.out)
    k = parse_actions(args.actions)
    if k is not None:
        store = latent_store(store, k, out, args.resume, progress=not args.no_progress, steps=args.latent_steps)
    elif not store.spec.of_kind("action"):
        raise ValueError(f"{args.data}: the dataset has no actions (imported video?); train with --actions latent[:K] "
                         "to learn latent actions from its frames")
    if args.resume and (out / "config.json").exists():
        if args.set:
            raise ValueError(f"--set with --resume: a resumed run keeps the settings in {out / 'config.json'}; "
                             "start a new run (another --out) to change them")
        cfg = read_run_config(out)
    else:
        cfg = set_options(preset(args.preset, store.spec), args.set)
    cfg = apply_overrides(cfg, args)
    dist = init_distributed(cfg.train.device)
    result = train_run(cfg, store, out, args.resume, dist, progress=not args.no_progress)
    if dist.is_main:
        val = {k: round(v, 4) for k, v in result.items() if k.startswith("val/")}
        print(f"trained {out}: {result['global_step']} steps in {result['elapsed_s'] / 60:.1f} min; {val}")
    return 0
