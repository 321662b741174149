"""`genworld dream`: roll a trained model open loop on a real episode and write a video with sound."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dream", help="open-loop rollout video: ground truth | model, with the model's sound",
                       description=__doc__)
    p.add_argument("--run", required=True, help="run directory (genworld train --out)")
    p.add_argument("--data", required=True, help="dataset directory the episode comes from")
    p.add_argument("--episode", type=int, default=0, help="episode index (default 0)")
    p.add_argument("--context", type=int, default=4, help="real steps given to the model (default 4)")
    p.add_argument("--horizon", type=int, default=32, help="steps the model predicts (default 32)")
    p.add_argument("--out", required=True, help="output .mp4")
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (0 = most likely codes)")
    p.add_argument("--top-k", type=int, default=0, help="sample among the k most likely levels (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genworld.data import Dataset
    from genworld.rollout.dream import dream_video
    from genworld.rollout.session import WorldSession
    from genworld.train.data import check_compatible, check_episode, model_keys

    sess = WorldSession.load(args.run, device=args.device, temperature=args.temperature, top_k=args.top_k,
                             seed=args.seed)
    ds = Dataset(args.data)
    check_compatible(sess.spec, ds.spec, f"dream --run {args.run} --data {args.data}")
    if not 0 <= args.episode < ds.num_episodes:
        raise ValueError(f"--episode {args.episode} outside 0..{ds.num_episodes - 1} of {args.data}")
    ep = ds.episode(args.episode, keys=model_keys(ds.spec))
    check_episode(ds.spec, ep, f"{args.data}, episode {args.episode}")
    T = len(ep[sess.spec.action.key])
    horizon = min(args.horizon, T - args.context)
    if horizon < 1:
        raise ValueError(f"episode {args.episode} has {T} steps: too short for --context {args.context}")
    if horizon < args.horizon:
        print(f"note: horizon cut to {horizon} (episode has {T} steps)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    res = dream_video(sess, ep, args.context, horizon, out)
    psnr = {k: round(v, 2) for k, v in res.items() if k.endswith("psnr_mean")}
    print(f"wrote {out}: {res['frames']} frames (context {args.context}, horizon {horizon}); PSNR {psnr}")
    return 0
