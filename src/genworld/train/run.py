"""A training run from start to finish: run directory set-up, split, stats, trainer, and the files a
session needs later without the dataset (spec.json, stats.json, contexts.safetensors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from genworld.models import WorldModel
from genworld.models.normalizer import compute_stats
from genworld.spec import WorldSpec
from genworld.train.checkpoint import atomic_write_text, latest_checkpoint
from genworld.train.config import RunConfig
from genworld.train.data import EpisodeStore, check_compatible, split_episodes
from genworld.train.distributed import DistInfo
from genworld.train.logger import Logger
from genworld.train.trainer import Trainer


def write_contexts(path: Path, store: EpisodeStore, episodes: list[int], length: int, n: int, seed: int) -> None:
    """Save n real windows {key: (n, length, *shape)} from `episodes` for dataset-free sessions."""
    rng = np.random.default_rng(seed)
    picks = []
    for i in range(n):
        e = episodes[i % len(episodes)]
        T = store.length(e)
        if T >= length:
            picks.append((e, int(rng.integers(0, T - length + 1))))
    if not picks:
        return
    tensors = {k: torch.as_tensor(np.stack([v[e][s: s + length] for e, s in picks])).contiguous()
               for k, v in store.arrays.items()}
    tensors = {k: (t.to(torch.uint8) if t.dtype == torch.bool else t) for k, t in tensors.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"windows": json.dumps(picks)})
    tmp.replace(path)


def calibrate_run(run_dir: Path, store: EpisodeStore, train_eps: list[int], stats: dict[str, Any],
                  logger: Logger | None = None) -> dict[str, Any]:
    """Calibrate the trained model's contact thresholds on (at most 24) training episodes and write them to
    RUN/calibration.json, which `WorldSession.load` applies."""
    from genworld.rollout.session import WorldSession
    from genworld.train.quality import calibrate_change, calibrate_contact

    session = WorldSession.load(run_dir)
    context = min(4, session.window - 1)
    eps = [e for e in train_eps if store.length(e) >= context + 4][:24]
    if not eps:
        return {}
    change = calibrate_change(session, store, eps, context=context)
    cal = calibrate_contact(session, store, eps, stats, context=context)
    atomic_write_text(Path(run_dir) / "calibration.json", json.dumps({"contact": cal, "change": change}, indent=2))
    if logger is not None:
        for k, v in change.items():
            logger.info(f"change threshold of {k}: p > {v['change_p']} (training-episode PSNR h = 1..{v['horizon']} "
                        f"{v['psnr']:.2f} dB, {v['psnr_at_0.5']:.2f} at 0.5)")
        for k, v in cal.items():
            logger.info(f"contact threshold of {k}: p > {v['contact_p']} (training-episode F1 {v['f1']:.3f}, "
                        f"{v['f1_at_0.5']:.3f} at 0.5)")
    return cal


def train_run(cfg: RunConfig, store: EpisodeStore, run_dir: Path, resume: bool, dist: DistInfo,
              progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a run in `run_dir`; returns the final state and validation metrics."""
    run_dir = Path(run_dir)
    has_ckpt = latest_checkpoint(run_dir) is not None
    if has_ckpt and not resume:
        raise ValueError(f"{run_dir} already holds a training run; pass --resume to continue it or choose "
                         "another --out")
    spec = WorldSpec.from_json(cfg.model.spec)
    check_compatible(spec, store.spec, f"run {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    split_path, stats_path = run_dir / "split.json", run_dir / "stats.json"
    if split_path.exists():
        sp = json.loads(split_path.read_text())
        split = (sp["train"], sp["val"])
        if max(split[0] + split[1]) >= store.num_episodes:
            raise ValueError(f"{split_path} names episodes beyond the dataset's {store.num_episodes}; "
                             "this run was trained on another dataset")
    else:
        split = split_episodes(store.num_episodes, cfg.train.val_episodes, cfg.train.seed)
    if stats_path.exists():
        stats = json.loads(stats_path.read_text())
    else:
        stats = compute_stats(spec, {k: [v[i] for i in split[0]] for k, v in store.arrays.items()})
    if dist.is_main:
        atomic_write_text(run_dir / "config.json", cfg.to_json())
        atomic_write_text(run_dir / "spec.json", spec.dumps())
        atomic_write_text(stats_path, json.dumps(stats, indent=2))
        atomic_write_text(split_path, json.dumps({"train": split[0], "val": split[1], "seed": cfg.train.seed}))
    torch.manual_seed(cfg.train.seed)
    model = WorldModel(cfg.model)
    model.norm.set_stats(stats)
    logger = Logger(run_dir, enabled=dist.is_main, progress=progress)
    trainer = Trainer(cfg, model, store, split, run_dir, dist, logger)
    if resume and trainer.resume():
        logger.info(f"resuming {run_dir} at stage {trainer.state['stage']}, step {trainer.state['step']}")
    result = trainer.train()
    if dist.is_main:
        write_contexts(run_dir / "contexts.safetensors", store, split[1] or split[0],
                       cfg.model.dynamics.window, cfg.train.n_contexts, cfg.train.seed)
        if model.touches:
            result["contact_calibration"] = calibrate_run(run_dir, store, split[0], stats, logger)
    logger.close()
    return result
