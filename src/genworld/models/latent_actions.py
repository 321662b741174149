"""Latent action model: a small discrete set of actions learned from consecutive frames alone (Genie's idea).

The encoder sees frames t-1, t and t+1 and must name the change from t to t+1 with one of K codes (a
categorical bottleneck: straight-through Gumbel-softmax over K logits, with a penalty on a batch that uses
few codes, so the bottleneck cannot collapse onto one code). The decoder sees only frames t-1 and t (so it knows where everything is and how it moves)
and the code, and predicts frame t+1. What the two past frames cannot tell, the code has to carry: in an
interactive world that is mostly the action. A dataset's own action column is never read.

    lam = LatentActionModel(LatentActionConfig(k=8), image_hw=(64, 64))
    loss, info = lam.loss(prev, cur, nxt)            # (B, 3, H, W) floats in [0, 1]
    codes = lam.infer(frames)                        # (T,) int64 for an episode (T, H, W, 3) uint8
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LatentActionConfig:
    k: int = 8
    """number of latent actions"""
    width: int = 32
    """channels of the convolutional encoder and decoder"""
    code_dim: int = 16
    diversity: float = 0.1
    """weight of the penalty log K - H(mean code distribution of the batch): keeps every code in use"""
    tau: float = 1.0
    """Gumbel-softmax temperature"""
    steps: int = 1000
    batch: int = 32
    lr: float = 1e-3
    max_side: int = 64
    """frames are area-downsampled to at most this side"""
    moving_weight: float = 10.0
    """extra weight of the reconstruction error on pixels that change between t and t+1"""

    def check(self) -> None:
        if self.k < 2:
            raise ValueError(f"latent actions: K must be at least 2, got {self.k}")
        if self.steps < 1 or self.batch < 1:
            raise ValueError("latent actions: steps and batch must be >= 1")

    def to_json(self) -> dict:
        return asdict(self)


def _conv_stack(cin: int, width: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = cin
    for _ in range(n):
        layers += [nn.Conv2d(c, width, 4, 2, 1), nn.GELU()]
        c = width
    return nn.Sequential(*layers)


class LatentActionModel(nn.Module):
    def __init__(self, cfg: LatentActionConfig, image_hw: tuple[int, int]) -> None:
        super().__init__()
        cfg.check()
        self.cfg = cfg
        H, W = image_hw
        self.scale = max(1, int(np.ceil(max(H, W) / cfg.max_side)))
        h, w = H // self.scale, W // self.scale
        self.hw = (h, w)
        self.n_down = 3 if min(h, w) >= 32 else 2
        fh, fw = h >> self.n_down, w >> self.n_down
        c = cfg.width
        self.enc = _conv_stack(12, c, self.n_down)
        self.enc_out = nn.Linear(c * fh * fw, cfg.k)
        self.codebook = nn.Parameter(torch.randn(cfg.k, cfg.code_dim))
        self.dec_in = _conv_stack(6, c, self.n_down)
        self.film = nn.Linear(cfg.code_dim, 2 * c)
        ups: list[nn.Module] = []
        for _ in range(self.n_down):
            ups += [nn.ConvTranspose2d(c, c, 4, 2, 1), nn.GELU()]
        self.dec_up = nn.Sequential(*ups)
        self.dec_out = nn.Conv2d(c + 6, 3, 3, 1, 1)
        self.register_buffer("usage", torch.full((cfg.k,), 1.0 / cfg.k))

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.scale) if self.scale > 1 else x

    def encode(self, prev: torch.Tensor, cur: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) of the code naming the change cur -> nxt."""
        x = torch.cat([prev, cur, nxt, 4.0 * (nxt - cur)], 1)  # the change itself, amplified: what to name
        return self.enc_out(self.enc(x).flatten(1))

    def quantise(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(codes (B,), code vectors (B, D): one-hot straight-through while training, the diversity penalty)."""
        idx = logits.argmax(1)
        if self.training:
            y = F.gumbel_softmax(logits, tau=self.cfg.tau, hard=True)
            p = logits.softmax(1).mean(0)
            penalty = float(np.log(self.cfg.k)) + (p * torch.log(p + 1e-9)).sum()
        else:
            y = F.one_hot(idx, self.cfg.k).float()
            penalty = logits.new_zeros(())
        return idx, y @ self.codebook, penalty

    def decode(self, prev: torch.Tensor, cur: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """Predicted frame t+1 (B, 3, h, w) in [0, 1] from frames t-1, t and a code vector."""
        past = torch.cat([prev, cur], 1)
        f = self.dec_in(past)
        scale, shift = self.film(code).chunk(2, 1)
        f = f * (1 + scale[..., None, None]) + shift[..., None, None]
        f = self.dec_up(f)
        return (cur + self.dec_out(torch.cat([f, past], 1))).clamp(0, 1)  # a change on top of frame t

    def loss(self, prev: torch.Tensor, cur: torch.Tensor, nxt: torch.Tensor) -> tuple[torch.Tensor, dict]:
        prev, cur, nxt = self._prep(prev), self._prep(cur), self._prep(nxt)
        z = self.encode(prev, cur, nxt)
        idx, q, div = self.quantise(z)
        pred = self.decode(prev, cur, q)
        # Pixels that change carry the action; the still background would otherwise dominate the error.
        moving = ((nxt - cur).abs().amax(1, keepdim=True) > 0.02).float()
        rec = ((pred - nxt) ** 2 * (1.0 + self.cfg.moving_weight * moving)).mean()
        with torch.no_grad():
            self.usage.mul_(0.99).add_(0.01 * torch.bincount(idx, minlength=self.cfg.k).float() / len(idx))
        return rec + self.cfg.diversity * div, {"rec": float(rec.detach()), "diversity": float(div.detach()),
                                                "codes": idx}

    @torch.no_grad()
    def infer(self, frames: np.ndarray, batch: int = 256) -> np.ndarray:
        """Latent action (T,) int64 of every step of an episode (T, H, W, 3) uint8: step t's code names the change
        t -> t+1 (frame t-1 repeats frame 0 at t = 0); the last step, whose outcome is unseen, takes the
        previous step's code."""
        T = len(frames)
        if T < 2:
            return np.zeros(T, np.int64)
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        x = self._prep(x)
        prev = torch.cat([x[:1], x[:-2]])
        out = []
        for s in range(0, T - 1, batch):
            e = min(T - 1, s + batch)
            out.append(self.quantise(self.encode(prev[s:e], x[s:e], x[s + 1:e + 1]))[0])
        codes = torch.cat(out).numpy().astype(np.int64)
        return np.concatenate([codes, codes[-1:]])


def frame_triples(episodes: list[np.ndarray], rng: np.random.Generator, n: int) -> tuple[torch.Tensor, ...]:
    """n random (t-1, t, t+1) frame triples (each (n, 3, H, W) in [0, 1]) from episodes (T_i, H, W, 3) uint8."""
    lens = np.array([len(e) for e in episodes])
    ok = np.flatnonzero(lens >= 2)
    ep = rng.choice(ok, n, p=(lens[ok] - 1) / (lens[ok] - 1).sum())
    t = np.array([rng.integers(0, lens[e] - 1) for e in ep])
    def get(ts: np.ndarray) -> torch.Tensor:
        arr = np.stack([episodes[e][max(i, 0)] for e, i in zip(ep, ts)])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0
    return get(t - 1), get(t), get(t + 1)


def train_latent_actions(episodes: list[np.ndarray], cfg: LatentActionConfig, seed: int = 0,
                         progress: bool = True) -> tuple[LatentActionModel, dict]:
    """Fit a latent action model on the frames of `episodes` (T_i, H, W, 3) uint8; returns it and its last losses."""
    from tqdm import tqdm

    cfg.check()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    lam = LatentActionModel(cfg, episodes[0].shape[1:3])
    lam.train()
    opt = torch.optim.AdamW(lam.parameters(), lr=cfg.lr, weight_decay=1e-4)
    info: dict = {}
    bar = tqdm(range(cfg.steps), desc="latent actions", disable=not progress, dynamic_ncols=True)
    for step in bar:
        lr = cfg.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / cfg.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        loss, info = lam.loss(*frame_triples(episodes, rng, cfg.batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 25 == 0:
            bar.set_postfix(rec=f"{info['rec']:.5f}", used=int((lam.usage > 0.2 / cfg.k).sum()))
    lam.eval()
    return lam, {"rec_mse": info.get("rec"), "codes_used": int((lam.usage > 0.2 / cfg.k).sum())}


def save_latent_actions(lam: LatentActionModel, path_stem: str, extra: dict) -> None:
    """`<stem>.safetensors` (weights) and `<stem>.json` (config, image size, `extra`), atomically."""
    import json
    import os

    from safetensors.torch import save_file

    tmp = path_stem + ".safetensors.tmp"
    save_file({k: v.contiguous() for k, v in lam.state_dict().items()}, tmp)
    os.replace(tmp, path_stem + ".safetensors")
    meta = {"config": lam.cfg.to_json(), "image_hw": [lam.hw[0] * lam.scale, lam.hw[1] * lam.scale], **extra}
    tmpj = path_stem + ".json.tmp"
    with open(tmpj, "w") as f:
        json.dump(meta, f, indent=2)
    os.replace(tmpj, path_stem + ".json")


def load_latent_actions(path_stem: str) -> tuple[LatentActionModel, dict]:
    """A latent action model saved by `save_latent_actions` (no pickle: safetensors and JSON)."""
    import json

    from safetensors.torch import load_file

    meta = json.loads(open(path_stem + ".json").read())
    lam = LatentActionModel(LatentActionConfig(**meta["config"]), tuple(meta["image_hw"]))
    lam.load_state_dict(load_file(path_stem + ".safetensors"))
    lam.eval()
    return lam, meta
