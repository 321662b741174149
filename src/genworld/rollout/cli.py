"""`genworld dream`: roll a trained model open loop on a real episode and write a video with sound.
`genworld imagine`: train a policy inside the model with stable-baselines3, score it in the real world."""

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
    p.add_argument("--latent-actions", help="a run with latent actions: the latent actions to press after the "
                   "context, comma-separated (e.g. 3,3,1; the last one repeats); default: those inferred from "
                   "the episode's frames")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)

    q = sub.add_parser(
        "imagine", help="learn a policy inside the model (stable-baselines3), score it in the real world",
        description="Train a policy with stable-baselines3 purely inside the world model (DreamEnv), with the "
                    "world's reward as the model predicts it, then score it in the real world. --in-world trains "
                    "in the real world for the same number of steps instead: the reference. Writes OUT/imagine.json "
                    "and one policy per seed.\n\nexample:\n  genworld imagine --run runs/cartpole --steps 20000 "
                    "--out imagine/model\n  genworld imagine --run runs/cartpole --steps 20000 --in-world --out "
                    "imagine/world", formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--run", required=True, help="run directory (genworld train --out)")
    q.add_argument("--algo", default="ppo", help="ppo (default), a2c or sac (continuous actions)")
    q.add_argument("--steps", type=int, default=20000, help="training steps (default 20000)")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--in-world", action="store_true", help="train in the real world instead (the reference)")
    q.add_argument("--seeds", type=int, default=3, help="policies trained, one per seed (default 3)")
    q.add_argument("--eval-episodes", type=int, default=10, help="real episodes per policy (default 10)")
    q.add_argument("--max-steps", type=int, default=200, help="steps per episode (default 200)")
    q.add_argument("--obs-keys", help="comma-separated modalities the policy sees (default: proprio and touch)")
    q.add_argument("--data", help="dataset of the world: imagined episodes start from random windows of it "
                   "(default: the run's few stored contexts)")
    q.add_argument("--dream-steps", type=int, help="steps per imagined episode (default: 8 with --data, else "
                   "--max-steps)")
    q.add_argument("--debug", action="store_true", help="show tracebacks")
    q.set_defaults(func=run_imagine)


def run_imagine(args: argparse.Namespace) -> int:
    from genworld.rollout.imagine import ImagineConfig, imagine

    keys = tuple(k for k in args.obs_keys.split(",") if k) if args.obs_keys else None
    r = imagine(ImagineConfig(run=args.run, out=args.out, algo=args.algo, steps=args.steps, in_world=args.in_world,
                              seeds=args.seeds, eval_episodes=args.eval_episodes, max_steps=args.max_steps,
                              obs_keys=keys, data=args.data, dream_steps=args.dream_steps))
    lo, hi = r["real_return_ci95"]
    print(f"{r['algo']} trained in the {r['trained_in']} for {r['steps']} steps: real-world return "
          f"{r['real_return_mean']:.2f} [{lo:.2f}, {hi:.2f}] over {r['seeds']} seeds (random "
          f"{r['random_return_mean']:.2f}); wrote {args.out}/imagine.json")
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genworld.data import Dataset
    from genworld.rollout.dream import dream_video
    from genworld.rollout.session import WorldSession
    from genworld.train.data import check_compatible, check_episode, model_keys

    sess = WorldSession.load(args.run, device=args.device, temperature=args.temperature, top_k=args.top_k,
                             seed=args.seed)
    ds = Dataset(args.data)
    if not 0 <= args.episode < ds.num_episodes:
        raise ValueError(f"--episode {args.episode} outside 0..{ds.num_episodes - 1} of {args.data}")
    from genworld.train.latent import latent_spec, read_actions

    actions = read_actions(args.run)
    if actions["kind"] == "latent":  # the episode's actions become the latent ones the run's model infers
        import numpy as np

        from genworld.models.latent_actions import load_latent_actions

        data_spec = latent_spec(ds.spec, int(actions["k"]))
        check_compatible(sess.spec, data_spec, f"dream --run {args.run} --data {args.data}")
        ep = ds.episode(args.episode, keys=[k for k in model_keys(ds.spec) if ds.spec[k].kind != "action"])
        lam, _ = load_latent_actions(str(Path(args.run) / actions["model"]))
        ep["action"] = lam.infer(ep[actions["video_key"]])
        if args.latent_actions:
            try:
                press = [int(a) for a in args.latent_actions.split(",") if a.strip()]
            except ValueError:
                raise ValueError(f"--latent-actions {args.latent_actions!r}: expected integers like 3,3,1") from None
            if not press or min(press) < 0 or max(press) >= int(actions["k"]):
                raise ValueError(f"--latent-actions {args.latent_actions!r}: each must be in 0..{actions['k'] - 1}")
            n = len(ep["action"]) - (args.context - 1)
            ep["action"][args.context - 1:] = np.asarray((press + [press[-1]] * n)[:n], np.int64)
        check_episode(data_spec, ep, f"{args.data}, episode {args.episode}")
    else:
        if args.latent_actions:
            raise ValueError(f"--latent-actions: run {args.run} was trained on the dataset's actions, not latent ones")
        check_compatible(sess.spec, ds.spec, f"dream --run {args.run} --data {args.data}")
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
