"""The multimodal world model: tokenizers for every modality, a dynamics transformer, and heads.

One step of an episode is S tokens: the image code grid of each camera (h*w tokens), a few audio
tokens per microphone, one token per touch sensor, one per proprio vector, and one for the action.
The transformer's output at step t predicts the tokens of step t+1 at the same slots (all of them
in one pass); the action slot's output also predicts step t's reward and done.

Token dict ("tokens"), per key, shapes (B, T, ...):
    video    long FSQ indices (B, T, h, w, Cv)
    audio    long FSQ indices (B, T, n, Ca)
    touch    float, scaled    (B, T, n_taxels)
    proprio  float, standardised (B, T, d)
    action   float, standardised (B, T, d), or long (B, T) when discrete
    next.reward float standardised (B, T); next.done float 0/1 (B, T)   (targets only)
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genworld.models.audio_tokenizer import AudioTokenizer
from genworld.models.code_flow import CodeFlow
from genworld.models.config import WorldModelConfig
from genworld.models.dynamics import Dynamics, KVCache, Memory
from genworld.models.grouping import CodeGroups
from genworld.models.image_tokenizer import ImageTokenizer
from genworld.models.losses import next_step_losses
from genworld.models.normalizer import Normalizer
from genworld.models.sampling import expected_values, sample_step
from genworld.spec import WorldSpec


def mkey(key: str) -> str:
    """A dataset key as a ModuleDict name (no dots allowed there)."""
    return key.replace(".", "__")


class WorldModel(nn.Module):
    """Tokenizers + dynamics + heads for the modalities of one WorldSpec."""

    def __init__(self, cfg: WorldModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.spec = spec = WorldSpec.from_json(cfg.spec)
        self.videos = spec.of_kind("video")
        self.audios = spec.of_kind("audio")
        self.touches = spec.of_kind("touch")
        self.proprios = spec.of_kind("proprio")
        self.action = spec.action
        self.reward_key = next((m.key for m in spec.of_kind("reward")), None)
        self.done_key = next((m.key for m in spec.of_kind("done")), None)
        if not (self.videos or self.audios or self.touches or self.proprios):
            raise ValueError(f"world {spec.name!r} has no observation modality the model can predict")
        self.norm = Normalizer(spec)
        # Per touch key, the contact probability above which a taxel is on at temperature 0; a run calibrates
        # it on training episodes after training (calibration.json), else cfg.contact_threshold.
        self.contact_p: dict[str, float] = {}
        # Per camera with a change gate, the change probability above which a code is redrawn; calibrated on training
        # episodes after training (calibration.json, train/quality.py), else 0.5.
        self.change_p: dict[str, float] = {}
        self.image_tok = nn.ModuleDict({mkey(m.key): ImageTokenizer(replace(cfg.image, image_shape=m.shape))
                                        for m in self.videos})
        self.audio_tok = nn.ModuleDict({mkey(m.key): AudioTokenizer(replace(cfg.audio, samples=m.shape[0]))
                                        for m in self.audios})
        D = cfg.dynamics.dim
        self.slots: dict[str, slice] = {}  # key -> token slots within a step
        self.inp = nn.ModuleDict()
        self.out = nn.ModuleDict()
        self.delta = nn.ModuleDict()  # optional: embedding of an image token's change since the previous step
        self.regress = nn.ModuleDict()  # optional: the next step's image code values, regressed
        s = 0
        self.groups: dict[str, CodeGroups] = {}
        for m in self.videos + self.audios:  # code positions grouped into tokens
            if m.kind == "video":
                tok = self.image_tok[mkey(m.key)]
                g = CodeGroups(tok.cfg.grid, (cfg.video_patch, cfg.video_patch))
            else:
                tok = self.audio_tok[mkey(m.key)]
                g = CodeGroups((1, tok.cfg.n_tokens), (1, tok.cfg.n_tokens // max(cfg.audio_slots, 1)))
            self.groups[m.key] = g
            self.slots[m.key] = slice(s, s + g.n_groups)
            self.inp[mkey(m.key)] = nn.Linear(g.size * tok.fsq.dim, D)
            self.out[mkey(m.key)] = nn.Linear(D, g.size * sum(tok.fsq.levels))
            if m.kind == "video" and cfg.video_delta:
                self.delta[mkey(m.key)] = nn.Linear(g.size * tok.fsq.dim, D, bias=False)
            if m.kind == "video" and cfg.video_regress > 0:
                self.regress[mkey(m.key)] = nn.Linear(D, g.size * tok.fsq.dim)
            s += g.n_groups
        for m in self.touches:  # value and contact logit per taxel
            n = math.prod(m.shape)
            self.slots[m.key] = slice(s, s + 1)
            self.inp[mkey(m.key)] = nn.Linear(n, D)
            self.out[mkey(m.key)] = nn.Linear(D, 2 * n)
            s += 1
        for m in self.proprios:
            n = math.prod(m.shape)
            self.slots[m.key] = slice(s, s + 1)
            self.inp[mkey(m.key)] = nn.Linear(n, D)
            self.out[mkey(m.key)] = nn.Linear(D, n)
            s += 1
        # Optional: P points in the image read linearly off the proprio vector, and an MLP of each image token's
        # offset to them added to its embedding: where the agent is, to a fraction of a token, for every token
        # without attention having to find it (docs/model.md, "Pointers from proprio").
        self.pointer: nn.Linear | None = None
        if cfg.proprio_pointers > 0 and self.videos and self.proprios:
            n_prop = sum(math.prod(m.shape) for m in self.proprios)
            self.pointer = nn.Linear(n_prop, 2 * cfg.proprio_pointers)
            nn.init.zeros_(self.pointer.weight)
            nn.init.zeros_(self.pointer.bias)
            self.pointer_mlp = nn.Sequential(nn.Linear(2 * cfg.proprio_pointers, 64), nn.GELU(), nn.Linear(64, D))
        a = self.action
        self.slots[a.key] = slice(s, s + 1)
        self.inp[mkey(a.key)] = nn.Embedding(a.n_choices, D) if a.discrete else nn.Linear(math.prod(a.shape), D)
        s += 1
        self.tokens_per_step = s
        self.slot_emb = nn.Parameter(torch.randn(s, D) * 0.02)
        # With `memory`, one real step from earlier in the episode is seen by every step (models/dynamics.py); this
        # embedding tells its tokens from the window's.
        self.memory_emb = nn.Parameter(torch.zeros(D)) if cfg.memory else None
        self.dynamics = Dynamics(cfg.dynamics)
        # Optional (`video_copy`): image heads relative to the current codes. The level logits get a learned bias toward
        # each code's current level, the regressed values are a change from the current ones, and a change head gives
        # each code position the odds that its code changes; rollouts redraw a code only where they are better than
        # even, so what the model is unsure about stays as it was instead of being redrawn as an average.
        self.change = nn.ModuleDict()
        self.copy_gain = nn.ParameterDict()
        if cfg.video_copy:
            for m in self.videos:
                self.change[mkey(m.key)] = nn.Linear(D, self.groups[m.key].size)
                self.copy_gain[mkey(m.key)] = nn.Parameter(torch.tensor(2.0))
        # Optional: a flow-matching sampler per camera that draws the next code grid jointly (models/code_flow.py).
        self.flow = nn.ModuleDict()
        if cfg.flow_width > 0:
            if cfg.flow_steps < 1:
                raise ValueError(f"model.flow_steps={cfg.flow_steps}: the code sampler needs at least one step")
            for m in self.videos:
                tok = self.image_tok[mkey(m.key)]
                self.flow[mkey(m.key)] = CodeFlow(tok.fsq.dim, D, self.groups[m.key], cfg.flow_width)
        self.reward_head = nn.Linear(D, 1) if self.reward_key else None
        self.done_head = nn.Linear(D, 1) if self.done_key else None

    # ---- tokenizers -------------------------------------------------------------------------
    def tokenizer_parameters(self) -> list[nn.Parameter]:
        return list(self.image_tok.parameters()) + list(self.audio_tok.parameters())

    def dynamics_parameters(self) -> list[nn.Parameter]:
        tok = {id(p) for p in self.tokenizer_parameters()}
        return [p for p in self.parameters() if id(p) not in tok]

    def tokenizer_loss(self, frames: dict[str, torch.Tensor], audio: dict[str, torch.Tensor]
                       ) -> tuple[torch.Tensor, dict[str, float]]:
        """frames {key: (N, H, W, 3) uint8}, audio {key: (N, S) raw} -> summed reconstruction loss."""
        total: Any = 0.0
        logs: dict[str, float] = {}
        for k, x in frames.items():
            loss, lg = self.image_tok[mkey(k)].loss(x)
            total = total + loss
            logs.update({f"{k}/{n}": v for n, v in lg.items()})
        for k, x in audio.items():
            loss, lg = self.audio_tok[mkey(k)].loss(self.norm.audio_in(k, x))
            total = total + loss
            logs.update({f"{k}/{n}": v for n, v in lg.items()})
        return total, logs

    @torch.no_grad()
    def tokenize(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Raw data {key: (B, T, *shape)} -> tokens (see module docstring); absent keys are skipped."""
        out: dict[str, torch.Tensor] = {}
        for m in self.videos:
            if m.key not in batch:
                continue
            x = batch[m.key]
            _, idx = self.image_tok[mkey(m.key)].encode(x.flatten(0, 1))
            out[m.key] = idx.view(*x.shape[:2], *idx.shape[1:])
        for m in self.audios:
            if m.key not in batch:
                continue
            x = batch[m.key]
            _, idx = self.audio_tok[mkey(m.key)].encode(self.norm.audio_in(m.key, x.flatten(0, 1).float()))
            out[m.key] = idx.view(*x.shape[:2], *idx.shape[1:])
        for m in self.touches + self.proprios:
            if m.key in batch:
                out[m.key] = self.norm.encode(m.key, batch[m.key].flatten(2).float())
        a = batch[self.action.key]
        out[self.action.key] = a.long() if self.action.discrete else self.norm.encode(self.action.key, a.flatten(2).float())
        if self.reward_key and self.reward_key in batch:
            out[self.reward_key] = self.norm.encode(self.reward_key, batch[self.reward_key].float()[..., None])[..., 0]
        if self.done_key and self.done_key in batch:
            out[self.done_key] = batch[self.done_key].float()
        return out

    # ---- dynamics ---------------------------------------------------------------------------
    def embed(self, tokens: dict[str, torch.Tensor], gen: torch.Generator | None = None,
              rows: slice | None = None, global_batch: int | None = None,
              prev: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Tokens (B, T, ...) -> embeddings (B, T, S, D); with `gen`, context corruption is applied.

        Corruption noise is drawn on the CPU for `global_batch` rows and the `rows` slice is used, so a
        batch split across data-parallel ranks is corrupted exactly as it would be in one process.
        `prev` holds the image codes of the step before the first one (B, 1, ...) when there is one.
        """
        parts = []
        B, T = tokens[self.action.key].shape[:2]
        G, rows = (global_batch or B), (rows or slice(0, B))
        dev = tokens[self.action.key].device
        c = self.cfg.corruption
        rate = None
        if gen is not None:
            on = (torch.rand(G, generator=gen) < c.prob).float()
            rate = (on * torch.rand(G, generator=gen))[rows].to(dev)  # (B,) corruption strength in [0, 1)
        for m in self.videos + self.audios:
            tok = (self.image_tok if m.kind == "video" else self.audio_tok)[mkey(m.key)]
            idx = tokens[m.key]
            idx = idx.reshape(B, T, -1, idx.shape[-1])  # (B, T, n, C)
            if rate is not None:
                shape = (G, *idx.shape[1:3])
                swap = (torch.rand(shape, generator=gen)[rows].to(dev) < (rate * c.max_replace)[:, None, None])
                rnd = tok.fsq.random_indices(shape, gen)[rows].to(dev)
                idx = torch.where(swap[..., None], rnd, idx)
            vals = tok.fsq.values(idx)  # (B, T, n, C)
            e = self.inp[mkey(m.key)](self.groups[m.key].group(vals))  # (B, T, groups, D)
            if mkey(m.key) in self.delta:
                # The change since the previous step (zero for the first step without one): motion is
                # then a per-token input instead of something attention must work out across steps.
                if prev is not None and m.key in prev:
                    before = tok.fsq.values(prev[m.key].reshape(B, 1, -1, idx.shape[-1]))
                else:
                    before = vals[:, :1]
                diff = vals - torch.cat([before, vals[:, :-1]], dim=1)
                e = e + self.delta[mkey(m.key)](self.groups[m.key].group(diff))
            if m.key == self.videos[0].key and self.pointer is not None:  # one map fits one camera's projection
                e = e + self._pointer_features(self.pointers(tokens), self.groups[m.key])
            parts.append(e)
        for m in self.touches + self.proprios:
            x = tokens[m.key]
            if rate is not None:
                noise = torch.randn((G, *x.shape[1:]), generator=gen)[rows].to(dev)
                x = x + noise * (rate * c.max_noise)[:, None, None]
            parts.append(self.inp[mkey(m.key)](x)[:, :, None])
        parts.append(self.inp[mkey(self.action.key)](tokens[self.action.key])[:, :, None])
        return torch.cat(parts, dim=2) + self.slot_emb  # (B, T, S, D)

    def pointers(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, P, 2): the image points read linearly off each step's (normalised) proprio tokens."""
        assert self.pointer is not None
        prop = torch.cat([tokens[m.key] for m in self.proprios], dim=-1)
        return self.pointer(prop).unflatten(-1, (-1, 2))

    @staticmethod
    def pointer_offsets(ptr: torch.Tensor, g: CodeGroups) -> torch.Tensor:
        """Points (..., P, 2) as (x, y) in [-1, 1] -> (..., groups, P, 2): each token's centre minus each point,
        in units of half a token (neighbouring tokens are 2 apart), tokens in row-major order."""
        (gh, gw), (ph, pw) = g.grid, g.patch
        ny, nx = gh // ph, gw // pw
        ys = (torch.arange(ny, device=ptr.device) + 0.5) / ny * 2 - 1
        xs = (torch.arange(nx, device=ptr.device) + 0.5) / nx * 2 - 1
        centres = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)  # (groups, 2)
        return (centres[:, None] - ptr[..., None, :, :]) * ptr.new_tensor([nx, ny])

    def _pointer_features(self, ptr: torch.Tensor, g: CodeGroups) -> torch.Tensor:
        """Points (B, T, P, 2) -> (B, T, groups, D): an MLP of each image token's offset from them."""
        return self.pointer_mlp(self.pointer_offsets(ptr, g).flatten(-2))

    def heads(self, h: torch.Tensor, tokens: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Dynamics output (..., S, D) -> raw predictions per key for the next step (and this step's reward/done).

        `tokens`, the input tokens of the same steps, are what the image heads of `video_copy` and the code samplers
        (`flow_width`) predict relative to."""
        pred = {}
        for m in self.videos + self.audios:  # per code position: (..., n_codes, sum(levels))
            hm = h[..., self.slots[m.key], :]
            pred[m.key] = self.groups[m.key].ungroup(self.out[mkey(m.key)](hm))
            if mkey(m.key) in self.regress:  # (..., n_codes, C) code values
                pred[m.key + "#values"] = self.groups[m.key].ungroup(self.regress[mkey(m.key)](hm))
            relative = m.kind == "video" and (mkey(m.key) in self.change or mkey(m.key) in self.flow)
            if relative:
                if tokens is None or m.key not in tokens:
                    raise ValueError("heads: video_copy and the code sampler predict relative to the current codes; "
                                     "pass the tokens")
                cur = tokens[m.key].flatten(-3, -2)  # (..., n, C) the current step's code indices
                pred[m.key + "#cur"] = cur
            if m.kind == "video" and mkey(m.key) in self.change:
                fsq = self.image_tok[mkey(m.key)].fsq
                # A code that stays as it is is the likeliest thing in most of a frame: a learned bias toward each
                # channel's current level makes it one parameter away, instead of a copy through the transformer.
                onehot = torch.cat([F.one_hot(cur[..., c], lv) for c, lv in enumerate(fsq.levels)], -1)
                pred[m.key] = pred[m.key] + self.copy_gain[mkey(m.key)] * onehot
                if m.key + "#values" in pred:
                    pred[m.key + "#values"] = fsq.values(cur) + pred[m.key + "#values"]
                pred[m.key + "#change"] = self.groups[m.key].ungroup(self.change[mkey(m.key)](hm))[..., 0]
            if mkey(m.key) in self.flow:  # the code sampler is conditioned on the tokens (and the current codes)
                pred[m.key + "#hidden"] = hm
        for m in self.touches + self.proprios:
            pred[m.key] = self.out[mkey(m.key)](h[..., self.slots[m.key], :])  # (..., 1, out)
        ha = h[..., self.slots[self.action.key], :][..., 0, :]
        if self.reward_head is not None:
            pred[self.reward_key] = self.reward_head(ha)[..., 0]
        if self.done_head is not None:
            pred[self.done_key] = self.done_head(ha)[..., 0]
        return pred

    def predicted_values(self, pred: dict[str, torch.Tensor], key: str) -> torch.Tensor:
        """The dynamics' estimate of the next step's code values (B, T, h, w, C), from its predictions (B, T, ...)."""
        tok = self.image_tok[mkey(key)]
        v = (pred[key + "#values"].clamp(-1, 1) if key + "#values" in pred else expected_values(pred[key], tok.fsq.levels))
        return v.reshape(*v.shape[:2], *tok.cfg.grid, tok.fsq.dim)

    def embed_memory(self, memory: dict[str, torch.Tensor] | None) -> torch.Tensor | None:
        """The memory step's tokens {key: (B, 1, ...)} -> its embeddings (B, S, D); None without `memory`."""
        if memory is None or self.memory_emb is None:
            return None
        return self.embed(memory)[:, 0] + self.memory_emb

    def memorize(self, memory: dict[str, torch.Tensor]) -> Memory | None:
        """The memory step's tokens {key: (B, 1, ...)} -> what `step` needs of it (None without `memory`)."""
        e = self.embed_memory(memory)
        return None if e is None else self.dynamics.memorize(e)

    def forward(self, tokens: dict[str, torch.Tensor], gen: torch.Generator | None = None,
                rows: slice | None = None, global_batch: int | None = None,
                memory: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Teacher-forced predictions for every step of a window: {key: (B, T, ...)}. `memory` holds the tokens
        (B, 1, ...) of a step from before the window (with `cfg.memory`)."""
        x = self.embed(tokens, gen, rows, global_batch)
        return self.heads(self.dynamics(x, memory=self.embed_memory(memory)), tokens)

    def step(self, tokens: dict[str, torch.Tensor], t: int, cache: KVCache | None,
             prev: dict[str, torch.Tensor] | None = None, memory: Memory | None = None, t_memory: int = 0
             ) -> tuple[dict[str, torch.Tensor], KVCache]:
        """One cached inference step: tokens of step t {key: (B, 1, ...)} (and `prev`, those of step t-1,
        None at the first step; `memory`, from `memorize`, of step t_memory) -> predictions {key: (B, ...)}."""
        h, cache = self.dynamics.step(self.embed(tokens, prev=prev)[:, 0], t, cache, memory, t_memory)
        return self.heads(h, {k: v[:, 0] for k, v in tokens.items()}), cache

    def flow_loss(self, pred: dict[str, torch.Tensor], tokens: dict[str, torch.Tensor],
                  gen: torch.Generator | None = None, rows: slice | None = None, global_batch: int | None = None
                  ) -> tuple[torch.Tensor, dict[str, float]]:
        """The code samplers' flow-matching loss on `flow_batch` of the window's (B * (T-1)) predicted frames, the
        changed codes weighted as in the code loss. The frames are drawn for `global_batch` rows and sliced."""
        B, T = tokens[self.action.key].shape[:2]
        G, rows = (global_batch or B), (rows or slice(0, B))
        pick = torch.randperm(G * (T - 1), generator=gen)[: self.cfg.flow_batch]
        pick = pick[(pick // (T - 1) >= rows.start) & (pick // (T - 1) < rows.stop)] - rows.start * (T - 1)
        total: Any = 0.0
        logs: dict[str, float] = {}
        for m in self.videos:
            if mkey(m.key) not in self.flow or len(pick) == 0:
                continue
            tok = self.image_tok[mkey(m.key)]
            gh, gw = tok.cfg.grid

            def grid(x: torch.Tensor, gh: int = gh, gw: int = gw) -> torch.Tensor:  # (B, T-1, n, C) -> (N, C, gh, gw)
                return x.flatten(0, 1)[pick].reshape(-1, gh, gw, x.shape[-1]).permute(0, 3, 1, 2)

            codes = tokens[m.key].reshape(B, T, -1, tok.fsq.dim)
            target = tok.fsq.values(codes[:, 1:])
            now = tok.fsq.values(pred[m.key + "#cur"][:, :-1])
            mean = self.predicted_values(pred, m.key).flatten(2, 3)[:, :-1].detach()
            changed = (codes[:, 1:] != codes[:, :-1]).any(-1).float()  # (B, T-1, n)
            weight = (1 + self.cfg.changed_code_weight * changed).flatten(0, 1)[pick].reshape(-1, gh, gw)
            h = pred[m.key + "#hidden"][:, :-1].flatten(0, 1)[pick]
            loss = self.flow[mkey(m.key)].loss(grid(target), grid(now), grid(mean), h, weight, gen)
            total = total + self.cfg.loss_weights.get("video", 1.0) * loss
            logs[f"{m.key}/flow_mse"] = loss.item()
        return total, logs

    @torch.no_grad()
    def sample_codes(self, pred: dict[str, torch.Tensor], key: str, gen: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step's predictions {key: (N, ...)} -> camera `key`'s sampled next codes: (indices, values), each
        (N, gh*gw, C), drawn jointly by its code sampler."""
        tok = self.image_tok[mkey(key)]
        gh, gw = tok.cfg.grid
        N = pred[key].shape[0]

        def grid(x: torch.Tensor) -> torch.Tensor:  # (N, n, C) -> (N, C, gh, gw)
            return x.reshape(N, gh, gw, -1).permute(0, 3, 1, 2)

        mean = (pred[key + "#values"].clamp(-1, 1) if key + "#values" in pred
                else expected_values(pred[key], tok.fsq.levels))
        x = self.flow[mkey(key)].sample(grid(tok.fsq.values(pred[key + "#cur"])), grid(mean), pred[key + "#hidden"],
                                        self.cfg.flow_steps, gen)
        lv = tok.fsq._lv.to(x.device)
        idx = ((x.permute(0, 2, 3, 1).reshape(N, gh * gw, -1) + 1) / 2 * (lv - 1)).round().long()
        idx = torch.minimum(idx.clamp(min=0), lv.long() - 1)
        return idx, tok.fsq.values(idx)

    @torch.no_grad()
    def own_context(self, tokens: dict[str, torch.Tensor], gen: torch.Generator, rows: slice | None = None,
                    global_batch: int | None = None, memory: dict[str, torch.Tensor] | None = None
                    ) -> dict[str, torch.Tensor]:
        """Tokens (B, T, ...) whose observation tokens of steps 1..T-1 are, in a `self_forcing` share of the rows, the
        model's own most likely predictions of them from the true steps before (what a rollout would feed back)."""
        B, T = tokens[self.action.key].shape[:2]
        G, rows = (global_batch or B), (rows or slice(0, B))
        pick = (torch.rand(G, generator=gen) < self.cfg.self_forcing)[rows].to(tokens[self.action.key].device)
        if T < 2 or not bool(pick.any()):
            return tokens
        was = self.training
        self.eval()
        pred = self(tokens, memory=memory)
        self.train(was)
        flat = {k: v[:, :-1].reshape(B * (T - 1), *v.shape[2:]) for k, v in pred.items()}
        own = sample_step(self, flat, flow=False)  # {key: (B * (T-1), 1, ...)}
        out = dict(tokens)
        for k in [m.key for m in self.videos + self.audios + self.touches + self.proprios]:
            if k not in tokens:
                continue
            o = own[k].reshape(B, T - 1, *tokens[k].shape[2:]).to(tokens[k].dtype)
            sel = pick.view(B, *([1] * (o.ndim - 1)))
            out[k] = torch.cat([tokens[k][:, :1], torch.where(sel, o, tokens[k][:, 1:])], dim=1)
        return out

    def latent(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """Observation tokens of one step {key: (B, 1, ...)} -> (B, D) mean slot embedding (for goal distances)."""
        e = self.embed(tokens)[:, 0]
        a = self.slots[self.action.key]
        return torch.cat([e[:, : a.start], e[:, a.stop:]], dim=1).mean(1)

    def dynamics_loss(self, tokens: dict[str, torch.Tensor], gen: torch.Generator | None = None,
                      rows: slice | None = None, global_batch: int | None = None,
                      memory: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Next-step prediction loss over a window of T >= 2 steps, weighted per modality kind; `memory` holds the
        tokens (B, 1, ...) of a step from before each window.

        With `self_forcing` > 0, in training (`gen` given) that share of the windows sees, from its second step on,
        the model's own predictions of each step (made from the true steps before it, without gradient) instead of
        the true tokens, and learns to predict the true next step from them: the context a rollout feeds back."""
        inputs = tokens
        if gen is not None and self.cfg.self_forcing > 0:
            inputs = self.own_context(tokens, gen, rows, global_batch, memory)
        pred = self(inputs, gen, rows, global_batch, memory=memory)
        total, logs = next_step_losses(self, pred, tokens, inputs)
        if len(self.flow):
            extra, more = self.flow_loss(pred, tokens, gen, rows, global_batch)
            total = total + extra
            logs.update(more)
            logs["loss"] = float(total.detach())
        return total, logs
