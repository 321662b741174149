"""`genworld play`: serve the browser page to act inside a trained model (or the true world) in real time."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `play` subcommand."""
    p = subparsers.add_parser(
        "play",
        help="play inside a trained world model in the browser (video, sound, touch)",
        description="Serve a page where you act inside a trained model in real time: live frames, sound, touch "
        "heatmap, proprioception, branching, recording, and a reality check beside the true world. "
        "Then open http://HOST:PORT in a browser. Protocol: docs/play.md.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run directory written by `genworld train`")
    src.add_argument("--world", help="play the true simulator instead of a model (e.g. bounce)")
    p.add_argument("--data", help="dataset to take starting contexts from (default: the run's stored contexts)")
    p.add_argument("--context", type=int, default=None, help="real steps to start from (default: the model's)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-sessions", type=int, default=4, help="concurrent sessions; extra clients are refused")
    p.add_argument("--idle-timeout", type=float, default=300.0, help="seconds without a client message before closing")
    p.add_argument("--frame-format", choices=("raw", "png", "jpeg"), default="raw",
                   help="how frames travel (raw RGB is fastest on loopback; jpeg is smallest)")
    p.add_argument("--max-fps", type=float, default=120.0,
                   help="highest step rate a client may ask for with /ws?fps=N (default: the world's fps)")
    p.add_argument("--record-dir", default="recordings", help="where recordings (mp4 + dataset episodes) go")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for model steps (default 1: a batch-1 step is too small to split, and the "
                        "other cores serve the sockets and encode frames; 0: torch's own choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--map-actions", action="store_true",
                   help="a run with latent actions: the arrow keys press the latent action each of the dataset's "
                        "true actions maps to (learned from its labelled steps); keys 1..K press latents directly")
    p.set_defaults(func=_play)


def _play(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from genworld.serve.app import ServeConfig, create_app
    except ImportError as e:
        raise ImportError(f"genworld play needs the web stack ({e.name}): pip install 'genworld[serve]'") from e
    from genworld.serve.source import Source, SourceConfig

    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    if args.max_sessions < 1:
        raise ValueError(f"--max-sessions must be >= 1, got {args.max_sessions}")
    source = Source.open(SourceConfig(run=args.run, data=args.data, world=args.world, context=args.context,
                                 seed=args.seed, map_actions=args.map_actions))
    cfg = ServeConfig(host=args.host, port=args.port, max_sessions=args.max_sessions,
                      idle_timeout_s=args.idle_timeout, frame_format=args.frame_format, record_dir=args.record_dir,
                      max_fps=args.max_fps)
    app = create_app(source, cfg)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach this address can play and record")
    print(f"genworld play: {source.spec.name} at http://{args.host}:{args.port}  (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", ws_max_size=cfg.transport_max_bytes)
    source.close()
    return 0
