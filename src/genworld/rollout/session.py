"""`WorldSession`: the learned model behind the `Session` protocol (reset, step, observe, branch).

Stepping costs one transformer pass over one step's tokens: past steps live in a KV cache that keeps
the last `window - 1` steps (a sliding window), so rollouts of any length run at constant cost.
Predicted tokens are fed back as they were sampled (no decode/re-encode round trip). A model with
`memory` also sees the first real context step at every step, however long the rollout; with `canvas`,
each predicted frame redraws only the code patches whose codes changed and keeps the previous frame's
pixels elsewhere, so what did not move stays exactly as it was.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genworld.models import WorldModel
from genworld.models.sampling import compose_on_canvas, decode_step, sample_step
from genworld.spec import WorldSpec

ACTION_TOLERANCE = 1e-3  # continuous actions may exceed [low, high] by this much (float round-off)


class WorldSession:
    """Steps a trained world model for a batch of B parallel futures (see `genworld.rollout.base.Session`)."""

    def __init__(self, model: WorldModel, device: str = "cpu", temperature: float = 0.0, top_k: int = 0,
                 seed: int = 0, contexts: dict[str, np.ndarray] | None = None) -> None:
        self.model = model.to(device).eval()
        self.spec: WorldSpec = model.spec
        self.device = device
        self.temperature, self.top_k = float(temperature), int(top_k)
        self.gen = torch.Generator().manual_seed(seed)
        self.contexts = contexts or {}
        self.obs_keys = [m.key for m in model.videos + model.audios + model.touches + model.proprios]
        self._cache: Any = None
        self._pending: dict[str, torch.Tensor] | None = None  # tokens (B, 1, ...) of the latest step, no action
        self._prev: dict[str, torch.Tensor] | None = None  # tokens of the step before it (motion cue), or None
        self._memory: Any = None  # the first context step, memorised (models/dynamics.py), with `memory`
        self._canvas: dict[str, torch.Tensor] = {}  # per camera, the latest frame (B, H, W, 3) uint8, with `canvas`
        self._t = 0

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def load(cls, run_dir: str | Path, device: str = "cpu", temperature: float = 0.0, top_k: int = 0,
             seed: int = 0) -> WorldSession:
        """The model of a run directory (its newest checkpoint), ready to reset."""
        from safetensors.torch import load_file

        from genworld.train.checkpoint import latest_checkpoint, load_checkpoint, load_model_weights
        from genworld.train.config import read_run_config

        run_dir = Path(run_dir)
        cfg = read_run_config(run_dir)
        path = latest_checkpoint(run_dir)
        if path is None:
            raise FileNotFoundError(f"{run_dir}: no checkpoint yet; train first (genworld train --out {run_dir})")
        weights, _, _ = load_checkpoint(path)
        model = WorldModel(cfg.model)
        load_model_weights(model, weights, str(path))
        ctx_path = run_dir / "contexts.safetensors"
        contexts = {}
        if ctx_path.exists():
            try:
                contexts = {k: v.numpy() for k, v in load_file(str(ctx_path)).items()}
            except Exception as e:  # safetensors raises its own error types for corrupt files
                raise ValueError(f"{ctx_path} is corrupt ({e}); delete it (sessions then need a context from a "
                                 "dataset) or retrain") from e
        cal_path = run_dir / "calibration.json"
        if cal_path.exists():
            try:
                cal = json.loads(cal_path.read_text())
                model.contact_p = {k: float(v["contact_p"]) for k, v in cal.get("contact", {}).items()}
                model.change_p = {k: float(v["change_p"]) for k, v in cal.get("change", {}).items()}
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise ValueError(f"{cal_path} is corrupt ({e!r}); delete it (contacts then use p > "
                                 f"{cfg.model.contact_threshold}, code changes p > 0.5) or retrain") from e
            unknown = (set(model.contact_p) - {m.key for m in model.touches}) | \
                (set(model.change_p) - {m.key for m in model.videos})
            if unknown:
                raise ValueError(f"{cal_path} names keys this model lacks: {sorted(unknown)}")
        return cls(model, device, temperature, top_k, seed, contexts)

    @property
    def batch_size(self) -> int:
        if self._pending is None:
            return 0
        return int(next(iter(self._pending.values())).shape[0])

    @property
    def window(self) -> int:
        return self.model.cfg.dynamics.window

    def stored_context(self, index: int = 0, length: int = 4) -> dict[str, np.ndarray]:
        """A real context {key: (1, length, *shape)} saved in the run (for sessions without a dataset)."""
        if not self.contexts:
            raise ValueError("this run stores no contexts (contexts.safetensors); pass a context from a dataset")
        n = len(next(iter(self.contexts.values())))
        return {k: v[index % n: index % n + 1, :length] for k, v in self.contexts.items()}

    # ---- protocol ----------------------------------------------------------------------------
    def _to_batch(self, data: dict[str, np.ndarray], lead: int, where: str, keys: list[str]) -> dict[str, torch.Tensor]:
        out = {}
        for k in keys:
            if k not in data:
                raise ValueError(f"{where}: missing key {k!r}; expected {keys}")
            x = np.asarray(data[k])
            m = self.spec[k]
            if x.ndim != lead + len(m.shape) or tuple(x.shape[lead:]) != m.shape:
                raise ValueError(f"{where}, {k}: shape {x.shape}, expected (B{', C' if lead == 2 else ''}, *{m.shape})")
            if x.dtype.kind == "f" and not np.isfinite(x).all():
                raise ValueError(f"{where}, {k}: contains NaN or inf")
            out[k] = torch.as_tensor(x).to(self.device)
        return out

    @torch.inference_mode()
    def reset(self, context: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Start from C real steps {key: (B, C, *shape)}; returns the last context step {key: (B, *shape)}."""
        keys = self.obs_keys + [self.spec.action.key]
        ctx = self._to_batch(context, 2, "reset(context)", keys)
        C = ctx[keys[0]].shape[1]
        if C < 1:
            raise ValueError("reset(context): the context needs at least one step")
        tokens = self.model.tokenize(ctx)
        self._cache, self._t, self._prev = None, 0, None
        self._memory = self.model.memorize({k: v[:, :1] for k, v in tokens.items()})
        for t in range(C - 1):
            one = {k: v[:, t: t + 1] for k, v in tokens.items()}
            _, self._cache = self.model.step(one, self._t, self._cache, self._prev, self._memory)
            self._prev = {k: one[k] for k in self.obs_keys}
            self._t += 1
        self._pending = {k: tokens[k][:, C - 1: C] for k in self.obs_keys}
        self._canvas = {m.key: ctx[m.key][:, -1].to(torch.uint8) for m in self.model.videos} if self.model.cfg.canvas else {}
        return {k: np.array(context[k])[:, -1] for k in self.obs_keys}  # copies: never alias the caller's data

    def _action_tokens(self, action: np.ndarray) -> torch.Tensor:
        a = self.spec.action
        x = np.asarray(action)
        B = self.batch_size
        if x.shape != (B, *a.shape):
            raise ValueError(f"step(action): shape {x.shape}, expected {(B, *a.shape)} (batch {B}, action {a.shape})")
        if a.discrete:
            if x.dtype.kind not in "iu" or x.min() < 0 or x.max() >= a.n_choices:
                raise ValueError(f"step(action): discrete actions must be integers in 0..{a.n_choices - 1}, got {x}")
            return torch.as_tensor(x, dtype=torch.long, device=self.device)[:, None]
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise ValueError("step(action): contains NaN or inf")
        lo = -math.inf if a.low is None else a.low - ACTION_TOLERANCE
        hi = math.inf if a.high is None else a.high + ACTION_TOLERANCE
        if x.min() < lo or x.max() > hi:
            raise ValueError(f"step(action): values outside [{a.low}, {a.high}] (min {x.min():.3g}, max {x.max():.3g})")
        t = torch.as_tensor(x, device=self.device).reshape(B, 1, -1)
        return self.model.norm.encode(a.key, t)

    @torch.inference_mode()
    def step(self, action: np.ndarray) -> dict[str, np.ndarray]:
        """Apply actions (B, *action_shape); returns the predicted next step {key: (B, *shape)}."""
        if self._pending is None:
            raise RuntimeError("step() before reset(): start the session from a context first")
        tokens = {**self._pending, self.spec.action.key: self._action_tokens(action)}
        pred, self._cache = self.model.step(tokens, self._t, self._cache, self._prev, self._memory)
        nxt = sample_step(self.model, pred, self.temperature, self.top_k, self.gen)
        self._t += 1
        self._prev = self._pending
        self._pending = {k: v for k, v in nxt.items() if k in self.obs_keys}  # what the next step reads
        obs = decode_step(self.model, nxt)
        for k, before in self._canvas.items():
            obs[k] = self._canvas[k] = compose_on_canvas(self.model, k, obs[k], before, self._prev[k], nxt[k])
        return {k: v.cpu().numpy() for k, v in obs.items()}

    @torch.inference_mode()
    def observe(self, obs: dict[str, np.ndarray]) -> None:
        """Replace the latest (predicted) step with real observations {key: (B, *shape)} (any subset of keys)."""
        if self._pending is None:
            raise RuntimeError("observe() before reset()")
        keys = [k for k in self.obs_keys if k in obs]
        real = {k: v[:, None] for k, v in self._to_batch(obs, 1, "observe(obs)", keys).items()}
        B = self.batch_size
        real[self.spec.action.key] = torch.zeros((B, 1) if self.spec.action.discrete else (B, 1, *self.spec.action.shape))
        tokens = self.model.tokenize(real)
        for k in keys:
            if k in self._canvas:
                self._canvas[k] = real[k][:, 0].to(torch.uint8)
        self._pending.update({k: tokens[k] for k in keys})

    def snapshot(self) -> dict[str, Any]:
        """The session's state (tensors are never modified in place, so references suffice)."""
        return {"cache": self._cache, "pending": dict(self._pending or {}), "t": self._t,
                "prev": None if self._prev is None else dict(self._prev), "gen": self.gen.get_state(),
                "memory": self._memory, "canvas": dict(self._canvas)}

    def restore(self, snap: dict[str, Any]) -> None:
        self._memory, self._canvas = snap["memory"], dict(snap["canvas"])
        self._cache, self._pending, self._t = snap["cache"], dict(snap["pending"]), snap["t"]
        self._prev = None if snap["prev"] is None else dict(snap["prev"])
        self.gen.set_state(snap["gen"])

    def expand(self, n: int) -> None:
        """Repeat each future n times (B -> B*n), e.g. to branch one context for a planner."""
        if self._pending is None:
            raise RuntimeError("expand() before reset()")
        rep = lambda x: x.repeat_interleave(n, dim=0)  # noqa: E731
        self._pending = {k: rep(v) for k, v in self._pending.items()}
        if self._prev is not None:
            self._prev = {k: rep(v) for k, v in self._prev.items()}
        if self._cache is not None:
            self._cache = [(rep(k), rep(v)) for k, v in self._cache]
        if self._memory is not None:
            self._memory = [(rep(k), rep(v)) for k, v in self._memory]
        self._canvas = {k: rep(v) for k, v in self._canvas.items()}

    @torch.inference_mode()
    def latent(self) -> np.ndarray:
        """(B, D) features of the latest step, for planners' latent goal distances."""
        if self._pending is None:
            raise RuntimeError("latent() before reset()")
        return self._latent_of(self._pending)

    @torch.inference_mode()
    def encode_latent(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """(B, D) features of real observations {key: (B, *shape)} (e.g. a goal), comparable with latent()."""
        real = {k: v[:, None] for k, v in self._to_batch(obs, 1, "encode_latent(obs)", self.obs_keys).items()}
        B = real[self.obs_keys[0]].shape[0]
        real[self.spec.action.key] = torch.zeros((B, 1) if self.spec.action.discrete else (B, 1, *self.spec.action.shape))
        tokens = self.model.tokenize(real)
        return self._latent_of({k: tokens[k] for k in self.obs_keys})

    def _latent_of(self, pending: dict[str, torch.Tensor]) -> np.ndarray:
        B = next(iter(pending.values())).shape[0]
        a = self.spec.action
        zero = torch.zeros((B, 1), dtype=torch.long) if a.discrete else torch.zeros((B, 1, math.prod(a.shape)))
        return self.model.latent({**pending, a.key: zero.to(self.device)}).cpu().numpy()

    def info(self) -> dict[str, Any]:
        """A JSON-able description (for UIs and logs)."""
        return {"world": self.spec.name, "fps": self.spec.fps, "window": self.window,
                "tokens_per_step": self.model.tokens_per_step, "temperature": self.temperature,
                "top_k": self.top_k, "batch_size": self.batch_size, "spec": json.loads(self.spec.dumps())}
