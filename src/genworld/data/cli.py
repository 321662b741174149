"""`genworld data info | export-video | import-video`: look inside a dataset, watch and hear an episode, make a
dataset from videos."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect datasets and import videos: info, export-video, import-video",
                       description="Inspect genworld / LeRobot datasets.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    i = dsub.add_parser("info", help="summary of a dataset: world, episodes, features, sizes on disk",
                        description="Print what a dataset holds: world, fps, episodes, frames, duration, each "
                                    "feature with its shape and dtype, and the size on disk of each stream.")
    i.add_argument("dir", help="dataset directory")
    i.add_argument("--json", action="store_true", help="print meta/info.json features as JSON instead")
    i.set_defaults(func=run_info)
    e = dsub.add_parser("export-video", help="write one episode as an mp4 with its sound, for people",
                        description="Write episode I as an H.264 (yuv420p) mp4 that browsers play, frames upscaled "
                                    "crisply (nearest neighbour), cameras side by side, the first microphone as "
                                    "an AAC sound track and the touch sensors as a strip under the frames.")
    e.add_argument("dir", help="dataset directory")
    e.add_argument("--episode", type=int, default=0, help="episode index (default: 0)")
    e.add_argument("--out", required=True, help="output .mp4 file")
    e.add_argument("--scale", type=int, default=4, help="upscale factor (default: 4)")
    e.set_defaults(func=run_export)
    v = dsub.add_parser("import-video", help="make a dataset (no actions) from videos or image folders",
                        description="Decode MP4, WebM, MKV, MOV, AVI and animated GIF files and folders of images "
                                    "into a genworld dataset with video and the sound track where a file has one, "
                                    "cut into episodes; no action column (train with --actions latent). A file that "
                                    "cannot be decoded is named and skipped (--strict: stop); re-running resumes."
                                    "\n\nexample:\n  genworld data import-video clips/*.mp4 --out data/clips "
                                    "--fps 10 --size 64x64", formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("paths", nargs="+", help="video files, folders of videos, or folders of images")
    v.add_argument("--out", required=True, help="dataset directory (created, or resumed)")
    v.add_argument("--fps", type=int, default=10, help="steps per second (default 10)")
    v.add_argument("--size", default="64x64", help="frame size HxW (default 64x64; centre-cropped to its aspect)")
    v.add_argument("--clip-steps", type=int, default=64, help="steps per episode (default 64)")
    v.add_argument("--audio-rate", type=int, help="sound sample rate (default: 16 kHz rounded to a multiple of fps)")
    v.add_argument("--strict", action="store_true", help="stop at the first file that cannot be decoded")
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=run_import_video)


def run_import_video(args: argparse.Namespace) -> int:
    from genworld.data.import_video import ImportConfig, import_videos, parse_size

    r = import_videos(ImportConfig(paths=tuple(args.paths), out=args.out, fps=args.fps, size=parse_size(args.size),
                                   clip_steps=args.clip_steps, audio_rate=args.audio_rate, strict=args.strict,
                                   progress=not args.quiet))
    sound = f", sound at {r['audio_rate']} Hz" if r["audio_rate"] else ", no sound"
    print(f"{r['out']}: {r['episodes']} episodes ({r['new_episodes']} new, {r['new_steps']} steps) from "
          f"{r['imported']} files{sound}; {r['already']} already imported, {len(r['skipped'])} skipped")
    print(f"next: genworld train --data {r['out']} --actions latent --out runs/{Path(r['out']).name}")
    return 0


def _size(path) -> int:  # noqa: ANN001
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def run_info(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from genworld.data import Dataset

    ds = Dataset(args.dir)
    if args.json:
        print(json.dumps(ds.info["features"], indent=2))
        return 0
    root = Path(args.dir)
    n = ds.num_frames
    lengths = ds.lengths
    print(f"{root}  ({ds.version}, world {ds.spec.name!r})")
    if ds.spec.description:
        print(f"  {ds.spec.description}")
    span = f", length {lengths.min()}..{lengths.max()}" if len(lengths) else ""
    print(f"  episodes {ds.num_episodes}, frames {n}, fps {ds.fps}, duration {n / ds.fps:.1f} s{span}")
    if ds.tasks:
        print(f"  tasks: {', '.join(repr(t) for t in ds.tasks[:5])}{' ...' if len(ds.tasks) > 5 else ''}")
    recipe = ds.info.get("genworld_collect")
    if recipe:
        print(f"  collected with: {' '.join(f'{k}={v}' for k, v in recipe.items())}")
    print("  features:")
    for m in ds.spec.modalities:
        shape = "x".join(map(str, m.shape)) or "scalar"
        where = {"video": "mp4", "audio": "flac"}.get(m.kind, "parquet")
        rate = f"{m.rate:g} Hz" if m.kind == "audio" else ""
        print(f"    {m.key:<28} {m.kind:<8} {shape:<10} {m.dtype:<8} {where:<8} {rate}")
    sizes = {"data (parquet)": _size(root / "data"), "videos (mp4)": _size(root / "videos"),
             "audio (flac)": _size(root / "audio"), "meta": _size(root / "meta"), "cache": _size(root / ".cache")}
    print("  on disk: " + ", ".join(f"{k} {_mb(v)}" for k, v in sizes.items() if v))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from genworld.data import Dataset
    from genworld.data.export import write_episode_mp4

    ds = Dataset(args.dir)
    ep = ds.episode(args.episode)
    if args.scale < 1:
        raise ValueError(f"--scale must be >= 1, got {args.scale}")
    out = write_episode_mp4(args.out, ds.spec, ep, scale=args.scale)
    n = len(next(iter(ep.values())))
    print(f"{out}: episode {args.episode}, {n} steps, {n / ds.fps:.1f} s"
          f"{', with sound' if ds.spec.of_kind('audio') else ''}")
    return 0
