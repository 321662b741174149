"""Causal spatio-temporal transformer: full attention within a step, causal across steps.

Input is a grid of token embeddings (B, T, S, D): T steps of S tokens each. A token of step t sees
every token of steps <= t. Time enters through rotary embeddings on the step index (so a sliding
window of cached steps keeps relative positions inside the trained range); the slot within a step
is a learned embedding added by the caller. A KV cache lets inference run one step (S tokens) per
pass.

Memory: besides the window, every step may see one more step, a real one from earlier in the episode (the
first real context step of a rollout), whatever its age. Its tokens attend only to themselves; the window's
tokens attend to them at a relative time distance of at most `window` steps (the span trained), so what the
world looked like stays readable after the sliding window has forgotten it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DynamicsConfig:
    """Size of the dynamics transformer."""

    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    window: int = 8  # steps visible to a token (itself included); training windows have this length


KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (k, v), each (B, H, T_cached * S, hd)
Memory = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (k before rotation, v) of the memory step, (B, H, S, hd)


def rope(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, H, N, hd) by positions pos (N,) float, on half-split pairs."""
    hd = x.shape[-1]
    freqs = 1.0 / (100.0 ** (torch.arange(0, hd // 2, device=x.device, dtype=torch.float32) / (hd // 2)))
    ang = pos[:, None].float() * freqs[None]  # (N, hd/2)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    def __init__(self, cfg: DynamicsConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.ln1 = nn.LayerNorm(cfg.dim)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.ln2 = nn.LayerNorm(cfg.dim)
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, hidden), nn.GELU(), nn.Linear(hidden, cfg.dim))

    def forward(self, x: torch.Tensor, pos_q: torch.Tensor, mask: torch.Tensor | None,
                past: tuple[torch.Tensor, torch.Tensor] | None, mem: tuple[torch.Tensor, torch.Tensor] | None = None,
                pos_mem: float = 0.0) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, N, D) at positions pos_q (N,) -> (x, (k, v) of x); `past` are cached (rotated)
        keys and values, `mem` the memory step's (k before rotation, v), rotated here to position `pos_mem`."""
        B, N, D = x.shape
        hd = D // self.heads
        q, k_raw, v = self.qkv(self.ln1(x)).view(B, N, 3, self.heads, hd).permute(2, 0, 3, 1, 4)  # (B, H, N, hd)
        q, k = rope(q, pos_q), rope(k_raw, pos_q)
        new = (k, v)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        if mem is not None:
            n = mem[0].shape[2]
            k = torch.cat([rope(mem[0], torch.full((n,), pos_mem, device=x.device)), k], dim=2)
            v = torch.cat([mem[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, N, hd)
        x = x + self.proj(y.transpose(1, 2).reshape(B, N, D))
        x = x + self.mlp(self.ln2(x))
        return x, new


class Dynamics(nn.Module):
    """Transformer over (B, T, S, D) step-token grids, block-causal in time."""

    def __init__(self, cfg: DynamicsConfig) -> None:
        super().__init__()
        if cfg.dim % cfg.heads or (cfg.dim // cfg.heads) % 2:
            raise ValueError(f"dynamics dim {cfg.dim} must split into {cfg.heads} heads of even size")
        self.cfg = cfg
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.ln_f = nn.LayerNorm(cfg.dim)

    def forward(self, x: torch.Tensor, t0: int = 0, memory: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, S, D) -> (B, T, S, D); steps are numbered t0.. for the rotary time positions. `memory`
        (B, S, D), a step from before the window, is seen by every step at position t0 - 1."""
        B, T, S, D = x.shape
        if T > self.cfg.window:
            raise ValueError(f"{T} steps exceed the attention window of {self.cfg.window}; use step() with a cache")
        step_of = torch.arange(T, device=x.device).repeat_interleave(S)  # (T*S,)
        if memory is not None:
            step_of = torch.cat([step_of.new_full((S,), -1), step_of])
        mask = step_of[None, :] <= step_of[:, None]  # (N, N) query sees keys of its step and earlier
        if memory is not None:  # the memory sees only itself
            mask[:S, S:] = False
        pos = (step_of + t0).float()
        h = x.reshape(B, T * S, D)
        if memory is not None:
            h = torch.cat([memory, h], dim=1)
        for blk in self.blocks:
            h, _ = blk(h, pos, mask, None)
        if memory is not None:
            h = h[:, S:]
        return self.ln_f(h).reshape(B, T, S, D)

    @torch.no_grad()
    def memorize(self, x: torch.Tensor) -> Memory:
        """The memory step's tokens x (B, S, D) -> per layer (k before rotation, v), for `step`."""
        S = x.shape[1]
        pos = torch.zeros(S, device=x.device)
        h, out = x, []
        B, _, D = x.shape
        for blk in self.blocks:
            # the keys before rotation, so that `step` can place the memory at any rotary time (once per reset)
            k_raw = blk.qkv(blk.ln1(h)).view(B, S, 3, blk.heads, D // blk.heads)[:, :, 1].transpose(1, 2)
            h, (_, v) = blk(h, pos, None, None)
            out.append((k_raw, v))
        return out

    def step(self, x: torch.Tensor, t: int, cache: KVCache | None, memory: Memory | None = None,
             t_memory: int = 0) -> tuple[torch.Tensor, KVCache]:
        """One step's tokens x (B, S, D) at step index t, attending to the cache (and to `memory`, the step t_memory
        <= t memorised) -> (out (B, S, D), cache).

        The returned cache holds at most window-1 past steps plus this one (oldest dropped), so a token
        always sees the same span as in training; the memory is placed at most `window` steps back, as in training.
        """
        B, S, D = x.shape
        pos = torch.full((S,), float(t), device=x.device)
        pos_mem = float(max(t_memory, t - self.cfg.window))
        keep = (self.cfg.window - 1) * S  # past tokens a query may see
        h = x
        new_cache: KVCache = []
        for i, blk in enumerate(self.blocks):
            past = None
            if cache is not None:
                pk, pv = cache[i]
                past = (pk[:, :, -keep:], pv[:, :, -keep:]) if keep > 0 else None
            h, (k, v) = blk(h, pos, None, past, memory[i] if memory is not None else None, pos_mem)
            if past is not None:
                k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
            new_cache.append((k[:, :, -keep:] if keep > 0 else k[:, :, :0], v[:, :, -keep:] if keep > 0 else v[:, :, :0]))
        return self.ln_f(h), new_cache
