"""The trainer: stage 1 fits the tokenizers, stage 2 fits the dynamics on tokens cached once.

Both stages draw batches that are pure functions of (seed, step), set the learning rate from
(step, elapsed time) and checkpoint atomically, so a killed run resumed with `--resume` continues
exactly where the last checkpoint left it. Under torchrun each rank takes its slice of the same
global batch and DDP averages the gradients.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genworld.models import WorldModel
from genworld.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_model_weights,
    optim_state_dict,
    save_checkpoint,
    set_rng_state,
)
from genworld.train.config import RunConfig
from genworld.train.data import EpisodeStore, memory_steps, sample_frames, sample_windows
from genworld.train.distributed import DistInfo, all_max, all_mean
from genworld.train.logger import Logger
from genworld.train.tokens import TokenCache


class _Stage(nn.Module):
    """Wraps the model so DDP sees one forward that returns the stage's loss."""

    def __init__(self, model: WorldModel, stage: int) -> None:
        super().__init__()
        self.model, self.stage = model, stage

    def forward(self, *args: Any, **kw: Any) -> tuple[torch.Tensor, dict[str, float]]:
        if self.stage == 1:
            return self.model.tokenizer_loss(*args)
        return self.model.dynamics_loss(*args, **kw)


class Trainer:
    """Trains a WorldModel on an EpisodeStore into a run directory."""

    def __init__(self, cfg: RunConfig, model: WorldModel, store: EpisodeStore, split: tuple[list[int], list[int]],
                 run_dir: Path, dist: DistInfo, logger: Logger) -> None:
        self.cfg, self.tc = cfg, cfg.train
        self.model = model.to(dist.device)
        self.store, self.dist, self.log = store, dist, logger
        self.train_eps, self.val_eps = split
        self.run_dir = Path(run_dir)
        self.lengths = [store.length(i) for i in range(store.num_episodes)]
        self.state: dict[str, Any] = {"stage": 1, "step": 0, "global_step": 0, "elapsed_s": 0.0,
                                      "stage_elapsed_s": 0.0, "done": False}
        self.optim: torch.optim.Optimizer | None = None
        self._optim_resume: tuple[dict, list] | None = None
        gb = self.tc.batch_size
        if gb % dist.world_size or self.tc.tok_batch_size % dist.world_size:
            raise ValueError(f"batch sizes {gb}/{self.tc.tok_batch_size} must divide by the {dist.world_size} ranks")

    # ---- state -------------------------------------------------------------------------------
    def resume(self) -> bool:
        """Load the newest checkpoint if there is one; returns whether one was loaded."""
        path = latest_checkpoint(self.run_dir)
        if path is None:
            return False
        weights, optim, meta = load_checkpoint(path)
        load_model_weights(self.model, weights, str(path))
        set_rng_state(meta["rng"])
        self.state = {k: meta[k] for k in self.state}
        self._optim_resume = (optim, meta["optim_groups"])
        return True

    def _save(self) -> None:
        if self.dist.is_main:
            save_checkpoint(self.run_dir, self.model, self.optim, self.state)
        self._last_save = time.perf_counter()

    def _make_optim(self, stage: int) -> None:
        m = self.model
        train_p = m.tokenizer_parameters() if stage == 1 else m.dynamics_parameters()
        ids = {id(p) for p in train_p}
        for p in m.parameters():
            p.requires_grad_(id(p) in ids)
        lr = self.tc.lr_tok if stage == 1 else self.tc.lr_dyn
        self.optim = torch.optim.AdamW(train_p, lr=lr, weight_decay=self.tc.weight_decay, betas=(0.9, 0.95))
        if self._optim_resume is not None and self._optim_resume[0]:
            self.optim.load_state_dict(optim_state_dict(*self._optim_resume))
        self._optim_resume = None
        net: nn.Module = _Stage(m, stage)
        if self.dist.distributed:
            net = nn.parallel.DistributedDataParallel(net, device_ids=None if self.dist.device == "cpu"
                                                      else [self.dist.local_rank])
        if self.tc.compile and stage == 2:
            net = torch.compile(net)
        self.net = net

    # ---- budget and schedule -----------------------------------------------------------------
    def _budget(self, stage: int) -> tuple[int, float]:
        """(steps, seconds) of a stage; seconds is inf without --max-minutes."""
        steps = self.tc.tok_steps if stage == 1 else self.tc.dyn_steps
        if self.tc.max_minutes is None:
            return steps, math.inf
        total = self.tc.max_minutes * 60
        if stage == 1:
            return steps, total * self.tc.tok_fraction
        return steps, max(total - self.state["elapsed_s"] + self.state["stage_elapsed_s"], 1.0)

    def _lr(self, stage: int) -> float:
        steps, secs = self._budget(stage)
        progress = min(1.0, max(self.state["step"] / max(steps, 1), self.state["stage_elapsed_s"] / secs))
        base = self.tc.lr_tok if stage == 1 else self.tc.lr_dyn
        warm = min(1.0, (self.state["step"] + 1) / self.tc.warmup)
        return base * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    def _tick(self, seconds: float) -> float:
        """Put wall-clock seconds on the run's and the stage's clock; under --max-minutes every rank adds the
        slowest rank's seconds, so all ranks agree on the learning rate and on when a stage ends."""
        if self.tc.max_minutes is not None:
            seconds = all_max(seconds, self.dist)
        self.state["elapsed_s"] += seconds
        self.state["stage_elapsed_s"] += seconds
        return seconds

    def _stage_over(self, stage: int) -> bool:
        steps, secs = self._budget(stage)
        return self.state["step"] >= steps or self.state["stage_elapsed_s"] >= secs

    # ---- batches -----------------------------------------------------------------------------
    def _rows(self, global_batch: int) -> slice:
        b = global_batch // self.dist.world_size
        return slice(self.dist.rank * b, (self.dist.rank + 1) * b)

    def _frame_batch(self, step: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        picks = sample_frames(self.lengths, self.train_eps, self.tc.tok_batch_size, self.tc.seed, step)
        picks = picks[self._rows(self.tc.tok_batch_size)]
        dev = self.dist.device
        frames = {m.key: torch.as_tensor(np.stack([self.store.arrays[m.key][e][t] for e, t in picks])).to(dev)
                  for m in self.model.videos}
        audio = {m.key: torch.as_tensor(np.stack([self.store.arrays[m.key][e][t] for e, t in picks])).to(dev)
                 for m in self.model.audios}
        return frames, audio

    # ---- loops -------------------------------------------------------------------------------
    def _memory(self, cache: TokenCache, windows: list[tuple[int, int]], step: int, rows: slice | None = None
                ) -> dict[str, torch.Tensor] | None:
        """The memory step of each window (tokens (B, 1, ...)) for a model with `memory`, else None; drawn for the
        global batch's `windows` and sliced to `rows`, so data-parallel ranks split one process's draw."""
        if not self.cfg.model.memory:
            return None
        return cache.gather(memory_steps(windows, self.tc.seed, step)[rows or slice(None)], 1)

    def _run_stage(self, stage: int, cache: TokenCache | None) -> None:
        self._make_optim(stage)
        self.net.train()
        window = self.cfg.model.dynamics.window
        gb = self.tc.tok_batch_size if stage == 1 else self.tc.batch_size
        bar = self.log.bar(stage, *self._budget(stage), start=self.state["step"],
                           elapsed=lambda: self.state["stage_elapsed_s"])
        t_prev = time.perf_counter()
        while not self._stage_over(stage):
            step = self.state["step"]
            t_step = time.perf_counter()
            lr = self._lr(stage)
            for g in self.optim.param_groups:
                g["lr"] = lr
            with self._autocast():
                if stage == 1:
                    loss, logs = self.net(*self._frame_batch(step))
                else:
                    windows = sample_windows(self.lengths, self.train_eps, window, gb, self.tc.seed, step)
                    tokens = cache.gather(windows[self._rows(gb)], window)
                    gen = torch.Generator().manual_seed(self.tc.seed * 1_000_003 + step)
                    loss, logs = self.net(tokens, gen, rows=self._rows(gb), global_batch=gb,
                                          memory=self._memory(cache, windows, step, self._rows(gb)))
            if not torch.isfinite(loss):
                raise RuntimeError(f"stage {stage} step {step}: loss is {loss.item()}; lower the learning rate "
                                   f"(--lr) or check the data; the last good checkpoint is in {self.run_dir}")
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_([p for g in self.optim.param_groups for p in g["params"]],
                                                   self.tc.grad_clip)
            self.optim.step()
            now = time.perf_counter()
            self._tick(now - t_prev)  # wall time: the step, and the validation and checkpoint before it
            t_prev, step_s = now, now - t_step
            self.state["step"] += 1
            self.state["global_step"] += 1
            if step % self.tc.log_every == 0 or self._stage_over(stage):
                rec = {"stage": stage, "step": step + 1, "global_step": self.state["global_step"], "lr": lr,
                       "grad_norm": float(gnorm), "samples_per_s": gb / step_s,
                       "elapsed_s": round(self.state["elapsed_s"], 2),
                       **{k: all_mean(v, self.dist) for k, v in logs.items()}}
                self.log.metrics(rec)
                bar.set_postfix(loss=f"{rec.get('loss', loss.item()):.3f}", sps=f"{gb / step_s:.0f}")
            bar.update(1)
            if (step + 1) % self.tc.val_every == 0:
                self.log.metrics(self.validate(stage, cache))
            if ((step + 1) % self.tc.ckpt_every == 0 or now - self._last_save > self.tc.ckpt_every_s):
                self._save()
        self._tick(time.perf_counter() - t_prev)  # the last step's validation and checkpoint
        bar.close()

    @torch.no_grad()
    def validate(self, stage: int, cache: TokenCache | None) -> dict[str, float]:
        """Held-out reconstruction (stage 1) or teacher-forced next-step loss (stage 2)."""
        eps = self.val_eps or self.train_eps
        self.model.eval()
        if stage == 1:
            picks = sample_frames(self.lengths, eps, 64, self.tc.seed + 7, 0)
            frames = {m.key: torch.as_tensor(np.stack([self.store.arrays[m.key][e][t] for e, t in picks]))
                      .to(self.dist.device) for m in self.model.videos}
            audio = {m.key: torch.as_tensor(np.stack([self.store.arrays[m.key][e][t] for e, t in picks]))
                     .to(self.dist.device) for m in self.model.audios}
            _, logs = self.model.tokenizer_loss(frames, audio)
        else:
            windows = sample_windows(self.lengths, eps, self.cfg.model.dynamics.window, 32, self.tc.seed + 7, 0)
            _, logs = self.model.dynamics_loss(cache.gather(windows, self.cfg.model.dynamics.window),
                                               memory=self._memory(cache, windows, 10**9))
        self.model.train()
        return {"stage": stage, "global_step": self.state["global_step"], **{f"val/{k}": v for k, v in logs.items()}}

    def _autocast(self) -> Any:
        on = self.tc.bf16 and self.dist.device.startswith("cuda")
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=on) if on else torch.autocast("cpu", enabled=False)

    def train(self) -> dict[str, Any]:
        """Run (or finish) both stages; returns the final state."""
        self._last_save = time.perf_counter()
        if self.state["done"]:
            self.log.info(f"{self.run_dir}: training already finished at step {self.state['global_step']}")
            return self.state
        if self.state["stage"] == 1:
            self._run_stage(1, None)
            self.state.update(stage=2, step=0, stage_elapsed_s=0.0)
            self.optim, self._optim_resume = None, None  # stage 2 starts a fresh optimiser
            self._save()
        t0 = time.perf_counter()
        bar = self.log.counter(self.store.num_episodes, "tokenizing the episodes", "ep")
        cache = TokenCache.build(self.model, self.store, self.dist.device, bar=bar)
        bar.close()
        built = self._tick(time.perf_counter() - t0)  # tokenizing is part of stage 2's wall-clock budget
        self.log.info(f"tokenized {self.store.num_episodes} episodes in {built:.1f} s")
        self._run_stage(2, cache)
        self.state["done"] = True
        self._save()
        final = self.validate(2, cache)
        self.log.metrics(final)
        return {**self.state, **final}
