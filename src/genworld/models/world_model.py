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
from genworld.models.contact_reader import ContactReader
from genworld.models.dynamics import Dynamics, KVCache, Memory
from genworld.models.grouping import CodeGroups
from genworld.models.image_tokenizer import ImageTokenizer
from genworld.models.normalizer import Normalizer
from genworld.models.objects import FEATURES, OBJECTS, SIZE_UNIT, read_slots
from genworld.models.sampling import MEAN_SUFFIX, expected_values
from genworld.models.video_codes import VideoCodeIO
from genworld.spec import WorldSpec

OBJECT_INPUTS = 12  # per slot: present, x, y, size, velocity (2), offset from the pointer (2), its length, next offset (2), its length
OBJECT_OUTPUTS = 7  # per slot: change of x, y, size beyond constant velocity; presence logit; x, y, size of a slot that was absent
PAIR_INPUTS = 15  # per pair of slots: see WorldModel._pair_features
PAIR_EMB = 8  # a learned embedding of each slot (its colour) in the pair contact head
EDGE_INPUTS = 14  # per slot: see WorldModel._edge_features
RENDER_INPUTS = 4  # per (code position, slot): see WorldModel._render
RENDER_REACH = 2.0  # code positions farther than this from a slot's rim (in codes) get nothing from it
PAIR_NOISE_PX = 0.2  # std of the noise on the next positions of the extra pair examples (a rollout's error at h = 1)


def mkey(key: str) -> str:
    """A dataset key as a ModuleDict name (no dots allowed there)."""
    return key.replace(".", "__")


def _contact_mlp(inputs: int, taxels: int) -> nn.Sequential:
    """A slot contact head: two hidden layers of 32, and a last layer at zero so that it adds nothing at first."""
    last = nn.Linear(32, taxels)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.Linear(inputs, 32), nn.GELU(), nn.Linear(32, 32), nn.GELU(), last)


def _masked_max(head: nn.Module, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """max over the items (dim -2) of head(feats (..., N, F)) where mask (..., N); -1e4 where none. The head runs on
    the masked items only: of a palette's K slots a frame shows a few, so most of the K * K pairs are absent."""
    lead, N = mask.shape[:-1], mask.shape[-1]
    flat = mask.reshape(-1)
    idx = flat.nonzero().squeeze(1)
    y = head(feats.reshape(flat.shape[0], -1)[idx])  # (M, n)
    out = y.new_full((flat.shape[0] // max(N, 1), y.shape[-1]), -1e4)
    out = out.scatter_reduce(0, (idx // N)[:, None].expand_as(y), y, "amax", include_self=True)
    return out.reshape(*lead, y.shape[-1])


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
        self.n_obj = cfg.object_slots if self.videos else 0  # object slots of the first camera (models/objects.py)
        self.norm = Normalizer(spec, deltas=cfg.proprio_residual, object_slots=self.n_obj)
        # Per touch key, the contact probability above which a taxel is on at temperature 0; a run calibrates
        # it on training episodes after training (calibration.json), else cfg.contact_threshold.
        self.contact_p: dict[str, float] = {}
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
            if m.kind == "video" and cfg.video_conv > 0:
                self.inp[mkey(m.key)] = VideoCodeIO(tok.cfg.grid, tok.fsq.levels, g, D, cfg.video_conv)
            else:
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
        # Optional: one token of object slots (models/objects.py): its embedding reads each slot's presence,
        # position, size, velocity and offset from the pointer; its head predicts each slot's next state as a
        # change. Each image token of the first camera also gets an MLP of its offsets from the slots.
        self.pair_heads, self.edge_heads = nn.ModuleDict(), nn.ModuleDict()  # the slots' contact heads (below)
        if self.n_obj:
            K = self.n_obj
            self.slots[OBJECTS] = slice(s, s + 1)
            self.inp[OBJECTS] = nn.Linear(K * OBJECT_INPUTS, D)
            self.out[OBJECTS] = nn.Linear(D, K * OBJECT_OUTPUTS)
            self.object_mlp = nn.Sequential(nn.Linear(5 * K, 64), nn.GELU(), nn.Linear(64, D))
            s += 1
            # Contacts from the slots' geometry: for every ordered pair of present slots, an MLP of their offset now,
            # predicted a step on and extrapolated at constant velocity (with the closest approach along each), their
            # sizes and a learned embedding of each slot's colour; the maximum over pairs is added to each touch
            # key's contact logits (it starts at zero). Which slot carries the sensor is learned, not told.
            self.pair_emb = nn.Parameter(torch.randn(K, PAIR_EMB) * 0.5)
            for m in self.touches:
                self.pair_heads[mkey(m.key)] = _contact_mlp(PAIR_INPUTS + 2 * PAIR_EMB, math.prod(m.shape))
            # Optional: the same for each slot against the frame's four edges (the walls of a 2-D arena), so a contact
            # with a wall has an explanation too; the maximum over slots joins the pairs' maximum.
            for m in self.touches if cfg.object_edges else ():
                self.edge_heads[mkey(m.key)] = _contact_mlp(EDGE_INPUTS + PAIR_EMB, math.prod(m.shape))
        # Optional: a renderer of the slots' predicted next state on the first camera's code grid. Each code position
        # gets, from every present slot, a learned feature of its offset from the slot's predicted centre and rim (in
        # code units; the slot's colour is a learned bias), summed over slots; an MLP of the sum corrects the
        # position's level logits and regressed values. The image head then draws a disc where the slot says it is,
        # to a fraction of a pixel, instead of where a 96-wide token can say it (docs/model.md, "Slot renderer").
        self.render: nn.ModuleDict | None = None
        if cfg.object_render > 0 and self.n_obj:
            W, tok = cfg.object_render, self.image_tok[mkey(self.videos[0].key)]
            last = nn.Linear(W, sum(tok.fsq.levels) + (tok.fsq.dim if cfg.video_regress > 0 else 0))
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)  # starts as the model without it
            self.render = nn.ModuleDict({"pair": nn.Linear(RENDER_INPUTS, W),
                                         "head": nn.Sequential(nn.GELU(), nn.Linear(W, W), nn.GELU(), last)})
            self.render_emb = nn.Parameter(torch.randn(self.n_obj, W) * 0.5)
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
        # Optional: a local convolutional path on the first camera's code grid (linear token path only). Its stem
        # reads each code's values, their change since the previous step and its offset from the pointers; its
        # head adds the transformer's output, expanded back to code positions, and refines the level logits and
        # regressed values with a 3x3 convolution. A disc's sub-patch motion is then a local, translation-
        # equivariant computation at code resolution instead of something squeezed through a token.
        self.local: nn.ModuleDict | None = None
        v0 = self.videos[0] if self.videos else None
        if cfg.video_local > 0 and cfg.video_conv > 0:
            raise ValueError(f"video_local={cfg.video_local} needs the linear token path; it cannot be combined "
                             f"with video_conv={cfg.video_conv}")
        if cfg.video_local > 0 and v0 is not None:
            tok, W = self.image_tok[mkey(v0.key)], cfg.video_local
            C, L = tok.fsq.dim, sum(tok.fsq.levels)
            n_in = 2 * C + (2 * cfg.proprio_pointers if self.pointer is not None else 0)
            head = nn.Conv2d(W, L + (C if cfg.video_regress > 0 else 0), 1)
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)  # starts as the model without it
            self.local = nn.ModuleDict({
                "stem": nn.Sequential(nn.Conv2d(n_in, W, 3, padding=1), nn.GELU(), nn.Conv2d(W, W, 3, padding=1)),
                "up": nn.Linear(D, self.groups[v0.key].size * W),
                "head": nn.Sequential(nn.GELU(), nn.Conv2d(W, W, 3, padding=1), nn.GELU(), head)})
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
        # Optional, per touch key: a convolutional contact reader on the first camera's code grid, whose
        # probability is averaged with the touch head's at inference.
        self.reader = nn.ModuleDict()
        if cfg.contact_reader > 0 and self.videos:
            tok = self.image_tok[mkey(self.videos[0].key)]
            cond = (a.n_choices if a.discrete else math.prod(a.shape)) + sum(math.prod(m.shape) for m in self.proprios)
            for m in self.touches:
                self.reader[mkey(m.key)] = ContactReader(tok.fsq.dim, cond, math.prod(m.shape), cfg.contact_reader)
        # Optional (`video_copy`): image heads relative to the current codes. The level logits get a learned bias toward
        # each code's current level, the regressed values are a change from the current ones, and a change head gives
        # each code position the odds that its code changes; rollouts redraw a code only where they are better than
        # even, so what the model is unsure about stays as it was instead of being redrawn as an average.
        self.change = nn.ModuleDict()
        self.copy_gain = nn.ParameterDict()
        if cfg.video_copy:
            if cfg.video_conv > 0:
                raise ValueError(f"video_copy needs the linear token path; it cannot be combined with "
                                 f"video_conv={cfg.video_conv}")
            for m in self.videos:
                self.change[mkey(m.key)] = nn.Linear(D, self.groups[m.key].size)
                self.copy_gain[mkey(m.key)] = nn.Parameter(torch.tensor(2.0))
        # Optional: a flow-matching sampler per camera that draws the next code grid jointly (models/code_flow.py).
        self.flow = nn.ModuleDict()
        if cfg.flow_width > 0:
            if cfg.video_conv > 0:
                raise ValueError(f"flow_width={cfg.flow_width} needs the linear token path; it cannot be combined "
                                 f"with video_conv={cfg.video_conv}")
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
        if self.n_obj and self.videos[0].key in batch:
            out[OBJECTS] = read_slots(batch[self.videos[0].key], self.norm.objects_palette, int(self.norm.objects_count))
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
              prev: dict[str, torch.Tensor] | None = None,
              local: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Tokens (B, T, ...) -> embeddings (B, T, S, D); with `gen`, context corruption is applied.

        With `video_local`, `local` receives the local path's features of the first camera (B, T, W, gh, gw).

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
        obj = self._object_inputs(tokens, prev) if self.n_obj else None
        if obj is not None and local is not None:  # for the heads: slot positions and velocities as the model saw them
            local[OBJECTS + "#xy"], local[OBJECTS + "#vel"] = obj[1], obj[2]
        for m in self.videos + self.audios:
            tok = (self.image_tok if m.kind == "video" else self.audio_tok)[mkey(m.key)]
            idx = tokens[m.key]
            idx = idx.reshape(B, T, -1, idx.shape[-1])  # (B, T, n, C)
            if rate is not None:
                shape = (G, *idx.shape[1:3])
                swap = (torch.rand(shape, generator=gen)[rows].to(dev) < (rate * c.max_replace)[:, None, None])
                rnd = tok.fsq.random_indices(shape, gen)[rows].to(dev)
                idx = torch.where(swap[..., None], rnd, idx)
            io = self.inp[mkey(m.key)]
            if isinstance(io, VideoCodeIO):
                before = None
                if prev is not None and m.key in prev:
                    before = tok.fsq.values(prev[m.key].reshape(B, 1, -1, idx.shape[-1]))
                parts.append(io.embed(tok.fsq.values(idx), before))  # (B, T, groups, D)
            else:
                vals = tok.fsq.values(idx)  # (B, T, n, C)
                e = io(self.groups[m.key].group(vals))  # (B, T, groups, D)
                want_local = m.key == self.videos[0].key and self.local is not None and local is not None
                if mkey(m.key) in self.delta or want_local:
                    # The change since the previous step (zero for the first step without one): motion is
                    # then a per-token input instead of something attention must work out across steps.
                    if prev is not None and m.key in prev:
                        before = tok.fsq.values(prev[m.key].reshape(B, 1, -1, idx.shape[-1]))
                    else:
                        before = vals[:, :1]
                    diff = vals - torch.cat([before, vals[:, :-1]], dim=1)
                if mkey(m.key) in self.delta:
                    e = e + self.delta[mkey(m.key)](self.groups[m.key].group(diff))
                ptr = self.pointers(tokens) if m.key == self.videos[0].key and self.pointer is not None else None
                if ptr is not None:  # one map fits one camera's projection
                    e = e + self._pointer_features(ptr, self.groups[m.key])
                if obj is not None and m.key == self.videos[0].key:
                    e = e + self._object_token_features(torch.cat([obj[1], obj[1] + obj[2]], -2), obj[3],
                                                        self.groups[m.key])
                if want_local:
                    local[m.key] = self._local_features(ptr, vals, diff, tok.cfg.grid)
                parts.append(e)
        for m in self.touches + self.proprios:
            x = tokens[m.key]
            if rate is not None:
                noise = torch.randn((G, *x.shape[1:]), generator=gen)[rows].to(dev)
                x = x + noise * (rate * c.max_noise)[:, None, None]
            parts.append(self.inp[mkey(m.key)](x)[:, :, None])
        if obj is not None:
            parts.append(self.inp[OBJECTS](obj[0])[:, :, None])
        parts.append(self.inp[mkey(self.action.key)](tokens[self.action.key])[:, :, None])
        return torch.cat(parts, dim=2) + self.slot_emb  # (B, T, S, D)

    def _object_inputs(self, tokens: dict[str, torch.Tensor], prev: dict[str, torch.Tensor] | None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Object slots (B, T, K, 4) -> the slot token's inputs (B, T, K * OBJECT_INPUTS), and each slot's position
        (B, T, K, 2), velocity (B, T, K, 2) and presence (B, T, K, 1). Velocities are changes since the
        previous step (`prev`, or none at a window's first step). Context corruption leaves the slots alone: a
        slot's velocity is the difference of two positions, so noise on them would teach the head to second-guess
        every velocity, and it then adds that doubt to rollouts (measured: docs/model.md)."""
        if OBJECTS not in tokens:
            raise ValueError(f"this model reads object slots: the tokens need {OBJECTS!r} (tokenize the frames of "
                             f"{self.videos[0].key!r})")
        o = tokens[OBJECTS]
        B, T = o.shape[:2]
        p, xy, size = o[..., :1], o[..., 1:3], o[..., 3:4]
        px = 2 / self.videos[0].shape[1]  # one pixel in the slots' x units
        if prev is not None and OBJECTS in prev:
            xb, pb = prev[OBJECTS][..., 1:3], prev[OBJECTS][..., :1]
        else:
            xb, pb = xy[:, :1], p[:, :1]
        both = p * torch.cat([pb, p[:, :-1]], 1)
        vel = (xy - torch.cat([xb, xy[:, :-1]], 1)) * both  # (B, T, K, 2) in x units per step
        if self.pointer is not None:
            ptr = self.pointers(tokens)[..., :1, :]  # (B, T, 1, 2)
            pb_ptr = self.pointers(prev)[..., :1, :] if prev is not None and all(m.key in prev for m in self.proprios) \
                else ptr[:, :1]
            pvel = ptr - torch.cat([pb_ptr, ptr[:, :-1]], 1)
        else:
            ptr, pvel = torch.zeros_like(xy[..., :1, :]), torch.zeros_like(xy[..., :1, :])
        off = (xy - ptr) / (8 * px)  # in units of 8 pixels
        nxt = off + (vel - pvel) / (8 * px)  # the offset a step on, if nothing changes speed
        feats = torch.cat([p, xy, size, vel / (4 * px), off, off.norm(dim=-1, keepdim=True), nxt,
                           nxt.norm(dim=-1, keepdim=True)], -1) * p
        return feats.reshape(B, T, -1), xy, vel, p

    def _pair_features(self, p: torch.Tensor, now: torch.Tensor, vel: torch.Tensor, nxt: torch.Tensor,
                       size: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slots' presence (..., K, 1), positions now (..., K, 2), velocities, predicted next positions and sizes ->
        features of every ordered pair (..., K*K, PAIR_INPUTS + 2 * PAIR_EMB) and which pairs count (..., K*K).

        Per pair (i, j), in units of 8 pixels: slot j's offset from slot i now, predicted a step on and a step on at
        constant velocity (2 each); the closest approach along now -> predicted and now -> constant velocity; the two
        sizes; in pixels, the gap between the rims now and at those two closest approaches (taking each slot for a
        disc); the direction now (2); then a learned embedding of each slot."""
        K = self.n_obj
        unit = 8 * 2 / self.videos[0].shape[1]  # 8 pixels

        def rel(x: torch.Tensor) -> torch.Tensor:  # (..., K, 2) -> (..., K*K, 2): slot j minus slot i
            return ((x[..., None, :, :] - x[..., :, None, :]) / unit).flatten(-3, -2)

        def closest(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # distance to 0 along the segment a -> b
            d = b - a
            s = (-(a * d).sum(-1, keepdim=True) / d.pow(2).sum(-1, keepdim=True).clamp(min=1e-6)).clamp(0, 1)
            return (a + s * d).norm(dim=-1, keepdim=True)

        d0, d1, dc = rel(now), rel(nxt), rel(now + vel)
        far = d0.norm(dim=-1, keepdim=True)
        grid = size.expand(*size.shape[:-2], K, K)  # [i, j] = size of slot i
        si, sj = grid.flatten(-2)[..., None], grid.transpose(-1, -2).flatten(-2)[..., None]
        ei = self.pair_emb[:, None, :].expand(K, K, PAIR_EMB).flatten(0, 1)
        ej = self.pair_emb[None, :, :].expand(K, K, PAIR_EMB).flatten(0, 1)
        lead = d0.shape[:-2]
        reach = (si + sj) / math.sqrt(math.pi)  # the sum of the two radii (a slot's size is sqrt(area) / 8 px)

        def gap(d: torch.Tensor) -> torch.Tensor:  # pixels between the two rims, clamped
            return ((d - reach) * 8).clamp(-4, 8)

        feats = torch.cat([d0, d1, dc, closest(d0, d1), closest(d0, dc), si, sj, gap(far), gap(closest(d0, d1)),
                           gap(closest(d0, dc)), d0 / far.clamp(min=1e-3),
                           ei.expand(*lead, *ei.shape), ej.expand(*lead, *ej.shape)], -1)
        pres = p[..., 0] > 0.5
        mask = (pres[..., :, None] & pres[..., None, :] & ~torch.eye(K, dtype=torch.bool, device=p.device)).flatten(-2)
        return feats, mask

    def slot_contacts(self, p: torch.Tensor, now: torch.Tensor, vel: torch.Tensor, nxt: torch.Tensor,
                      size: torch.Tensor) -> dict[str, torch.Tensor]:
        """Contact logits of each touch key (..., n) from the slots' geometry alone: the maximum of the pair heads
        over present pairs and, with `object_edges`, of the edge heads over present slots; zero with neither."""
        pairs, mask = self._pair_features(p, now, vel, nxt, size)
        edges = self._edge_features(now, vel, nxt, size) if len(self.edge_heads) else None
        pres = p[..., 0] > 0.5
        out = {}
        for m in self.touches:
            add = _masked_max(self.pair_heads[mkey(m.key)], pairs, mask)  # (..., n)
            if edges is not None:
                add = torch.maximum(add, _masked_max(self.edge_heads[mkey(m.key)], edges, pres))
            out[m.key] = torch.where(add > -1e3, add, torch.zeros_like(add))
        return out

    def _edge_features(self, now: torch.Tensor, vel: torch.Tensor, nxt: torch.Tensor, size: torch.Tensor
                       ) -> torch.Tensor:
        """Slots' positions now (..., K, 2), velocities, predicted next positions and sizes -> (..., K, EDGE_INPUTS
        + PAIR_EMB): in pixels, each slot's rim gap to the left, top, right and bottom edges of the frame now, a
        step on as predicted and at constant velocity (clamped to [-4, 8]), its velocity, then its embedding."""
        H, W = self.videos[0].shape[:2]
        r = size / math.sqrt(math.pi) * SIZE_UNIT  # the radius in pixels, taking the slot for a disc

        def gaps(xy: torch.Tensor) -> torch.Tensor:
            x, y = (xy[..., :1] + 1) * W / 2, (xy[..., 1:2] + 1) * H / 2
            return torch.cat([x - r, y - r, W - x - r, H - y - r], -1).clamp(-4, 8)

        emb = self.pair_emb.expand(*now.shape[:-2], *self.pair_emb.shape)
        return torch.cat([gaps(now), gaps(nxt), gaps(now + vel), vel * W / 2 / 4, emb], -1)

    def _render(self, obj: torch.Tensor, key: str) -> torch.Tensor:
        """Slots (..., K, 4) (presence probability, x, y, size) -> corrections (..., h*w, L [+ C]) of camera `key`'s
        code positions (row-major): the slot renderer (`object_render`). Each present slot reaches only the code
        positions of a square window around it (within RENDER_REACH codes of its rim), gathered sparsely."""
        assert self.render is not None
        tok = self.image_tok[mkey(key)]
        (gh, gw), f = tok.cfg.grid, tok.cfg.factor
        H, W = self.spec[key].shape[:2]
        lead, K = obj.shape[:-2], obj.shape[-2]
        flat = obj.reshape(-1, 4)  # (N*K, 4)
        items = (flat[:, 0] > 0.1).nonzero().squeeze(1)  # the present slots
        o = flat[items]
        x, y = (o[:, 1] + 1) / 2 * W / f, (o[:, 2] + 1) / 2 * H / f  # centres, in codes
        r = (o[:, 3] * SIZE_UNIT / math.sqrt(math.pi) / f).clamp(0, max(gh, gw))  # a disc's radius, in codes (bounded: a
        # wild predicted size must not grow the window without end)
        half = int(math.ceil(float(r.max()) + RENDER_REACH)) if len(items) else 1
        span = torch.arange(-half, half + 1, device=obj.device)
        cx = x.floor().long()[:, None, None] + span[None, None, :]  # (M, 1, S) code columns of the window
        cy = y.floor().long()[:, None, None] + span[None, :, None]  # (M, S, 1)
        dx, dy = torch.broadcast_tensors(x[:, None, None] - (cx + 0.5), y[:, None, None] - (cy + 0.5))  # (M, S, S)
        rr = r[:, None, None].expand_as(dx)
        rim = torch.sqrt(dx * dx + dy * dy + 1e-6) - rr
        inside = (cx >= 0) & (cx < gw) & (cy >= 0) & (cy < gh) & (rim.abs() < RENDER_REACH)
        feats = torch.stack([dx, dy, rr, rim], -1).clamp(-2 * half, 2 * half)
        pair = F.gelu(self.render["pair"](feats) + self.render_emb[items % K][:, None, None])  # (M, S, S, Wd)
        pair = pair * (o[:, 0, None, None] * inside)[..., None]
        n = flat.shape[0] // K
        where = ((items // K)[:, None, None] * (gh * gw) + cy.clamp(0, gh - 1) * gw + cx.clamp(0, gw - 1))
        drawn = pair.new_zeros(n * gh * gw, pair.shape[-1])
        drawn = drawn.index_add(0, where.reshape(-1), pair.reshape(-1, pair.shape[-1]))
        return self.render["head"](drawn).reshape(*lead, gh * gw, -1)

    def _object_token_features(self, points: torch.Tensor, p: torch.Tensor, g: CodeGroups) -> torch.Tensor:
        """Slot positions now and a step on (B, T, 2K, 2) and presence (B, T, K, 1) -> (B, T, groups, D): an MLP of
        each image token's offsets from them (half-token units, zero for absent slots)."""
        off = self.pointer_offsets(points, g) * torch.cat([p, p], -2)[..., None, :, :]  # (B, T, G, 2K, 2)
        pres = p[..., 0][..., None, :].expand(*off.shape[:3], p.shape[-2])
        return self.object_mlp(torch.cat([off.flatten(-2), pres], -1))

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

    def _local_features(self, ptr: torch.Tensor | None, vals: torch.Tensor, diff: torch.Tensor,
                        grid: tuple[int, int]) -> torch.Tensor:
        """The local path's stem: code values and their change (B, T, n, C) [+ offsets from the points `ptr`
        (B, T, P, 2)] -> (B, T, W, gh, gw)."""
        assert self.local is not None
        B, T = vals.shape[:2]
        x = [vals, diff]
        if ptr is not None:  # each code's offset from each point, in units of 4 codes
            x.append(self.pointer_offsets(ptr, CodeGroups(grid, (1, 1))).flatten(-2) / 8)
        x = torch.cat(x, -1).reshape(B * T, *grid, -1).permute(0, 3, 1, 2)
        y = self.local["stem"](x)
        return y.reshape(B, T, *y.shape[1:])

    def _local_head(self, hm: torch.Tensor, feats: torch.Tensor, grid: tuple[int, int], key: str) -> torch.Tensor:
        """Token outputs (..., G, D) and stem features (..., W, gh, gw) -> (..., gh*gw, L [+ C]) corrections."""
        assert self.local is not None
        lead = hm.shape[:-2]
        up = self.groups[key].ungroup(self.local["up"](hm))  # (..., n, W)
        x = up.reshape(-1, *grid, up.shape[-1]).permute(0, 3, 1, 2) + feats.reshape(-1, *feats.shape[-3:])
        y = self.local["head"](x)  # (N, L [+ C], gh, gw)
        return y.permute(0, 2, 3, 1).reshape(*lead, grid[0] * grid[1], y.shape[1])

    def heads(self, h: torch.Tensor, local: dict[str, torch.Tensor] | None = None,
              tokens: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Dynamics output (..., S, D) -> raw predictions per key for the next step (and this step's reward/done).

        `local` holds the local path's stem features (..., W, gh, gw) of the first camera (`video_local`); `tokens`
        the input tokens of the same steps, which heads that predict a change (`proprio_residual`) add it to."""
        pred = {}
        for m in self.videos + self.audios:  # per code position: (..., n_codes, sum(levels))
            io = self.inp[mkey(m.key)]
            hm = h[..., self.slots[m.key], :]
            pred[m.key] = (io.logits(hm) if isinstance(io, VideoCodeIO)
                           else self.groups[m.key].ungroup(self.out[mkey(m.key)](hm)))
            if mkey(m.key) in self.regress:  # (..., n_codes, C) code values
                pred[m.key + "#values"] = self.groups[m.key].ungroup(self.regress[mkey(m.key)](hm))
            if m.kind == "video" and mkey(m.key) in self.change:
                if tokens is None or m.key not in tokens:
                    raise ValueError("heads: video_copy predicts codes relative to the current ones; pass the tokens")
                fsq = self.image_tok[mkey(m.key)].fsq
                cur = tokens[m.key].flatten(-3, -2)  # (..., n, C) the current step's code indices
                # A code that stays as it is is the likeliest thing in most of a frame: a learned bias toward each
                # channel's current level makes it one parameter away, instead of a copy through the transformer.
                onehot = torch.cat([F.one_hot(cur[..., c], lv) for c, lv in enumerate(fsq.levels)], -1)
                pred[m.key] = pred[m.key] + self.copy_gain[mkey(m.key)] * onehot
                if m.key + "#values" in pred:
                    pred[m.key + "#values"] = fsq.values(cur) + pred[m.key + "#values"]
                pred[m.key + "#change"] = self.groups[m.key].ungroup(self.change[mkey(m.key)](hm))[..., 0]
                pred[m.key + "#cur"] = cur
            if mkey(m.key) in self.flow:  # what the code sampler is conditioned on: the tokens and the current codes
                pred[m.key + "#hidden"] = hm
                if tokens is not None and m.key in tokens:
                    fsq = self.image_tok[mkey(m.key)].fsq
                    pred[m.key + "#now"] = fsq.values(tokens[m.key]).flatten(-3, -2)  # (..., n, C)
            if local is not None and m.key in local:
                fix = self._local_head(hm, local[m.key], self.image_tok[mkey(m.key)].cfg.grid, m.key)
                L = pred[m.key].shape[-1]
                pred[m.key] = pred[m.key] + fix[..., :L]
                if m.key + "#values" in pred:
                    pred[m.key + "#values"] = pred[m.key + "#values"] + fix[..., L:]
        for m in self.touches + self.proprios:
            pred[m.key] = self.out[mkey(m.key)](h[..., self.slots[m.key], :])  # (..., 1, out)
        if self.cfg.proprio_residual:
            if tokens is None:
                raise ValueError("heads: proprio_residual predicts a change, so it needs the current step's tokens")
            for m in self.proprios:  # the head's output is the change, in units of its std
                pred[m.key] = tokens[m.key].reshape(pred[m.key].shape) + pred[m.key] * self.norm.delta_scale(m.key)
        if self.n_obj:
            if tokens is None:
                raise ValueError("heads: object slots are predicted as a change, so they need the current step's tokens")
            raw = self.out[OBJECTS](h[..., self.slots[OBJECTS], :][..., 0, :]).unflatten(-1, (self.n_obj, OBJECT_OUTPUTS))
            cur = tokens[OBJECTS].reshape(raw.shape[:-1] + (FEATURES,))
            px = 2 / self.videos[0].shape[1]
            here = cur[..., :1] > 0.5
            # A present slot moves on at its velocity (Newton's first law) plus a learned change: a disc in free
            # flight needs no correction at all, a pushed or bouncing one a small one.
            now = local[OBJECTS + "#xy"] if local is not None and OBJECTS + "#xy" in local else cur[..., 1:3]
            vel = local[OBJECTS + "#vel"] if local is not None and OBJECTS + "#vel" in local else torch.zeros_like(now)
            xy = torch.where(here, now + vel + raw[..., 0:2] * px, raw[..., 4:6])
            size = torch.where(here, cur[..., 3:4] + raw[..., 2:3] * 0.25, raw[..., 6:7])
            pred[OBJECTS] = torch.cat([torch.sigmoid(raw[..., 3:4]), xy, size], -1)  # (..., K, 4)
            pred[OBJECTS + "#logit"] = raw[..., 3]
            if len(self.pair_heads):
                for k, add in self.slot_contacts(cur[..., :1], now, vel, xy, cur[..., 3:4]).items():
                    n = add.shape[-1]
                    pred[k + "#pairs"] = add  # the slots' contact logits alone, for their own loss
                    out = pred[k]  # (..., 1, 2n)
                    pred[k] = torch.cat([out[..., :n], out[..., n:] + add[..., None, :]], -1)
        if self.render is not None:
            key = self.videos[0].key
            fix = self._render(pred[OBJECTS].detach(), key)
            L = pred[key].shape[-1]
            pred[key] = pred[key] + fix[..., :L]
            if key + "#values" in pred:
                pred[key + "#values"] = pred[key + "#values"] + fix[..., L:]
        ha = h[..., self.slots[self.action.key], :][..., 0, :]
        if self.reward_head is not None:
            pred[self.reward_key] = self.reward_head(ha)[..., 0]
        if self.done_head is not None:
            pred[self.done_key] = self.done_head(ha)[..., 0]
        return pred

    # ---- contact reader ---------------------------------------------------------------------
    def code_values(self, tokens: dict[str, torch.Tensor], key: str) -> torch.Tensor:
        """A camera's code values (B, T, h, w, C): the expected values where a rollout left them, else the codes'."""
        if key + MEAN_SUFFIX in tokens:
            return tokens[key + MEAN_SUFFIX]
        return self.image_tok[mkey(key)].fsq.values(tokens[key])

    def predicted_values(self, pred: dict[str, torch.Tensor], key: str) -> torch.Tensor:
        """The dynamics' estimate of the next step's code values (B, T, h, w, C), from its predictions (B, T, ...)."""
        tok = self.image_tok[mkey(key)]
        v = (pred[key + "#values"].clamp(-1, 1) if key + "#values" in pred else expected_values(pred[key], tok.fsq.levels))
        return v.reshape(*v.shape[:2], *tok.cfg.grid, tok.fsq.dim)

    def reader_cond(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, c): the step's action (one-hot when discrete) and proprio tokens, the contact reader's conditioning."""
        a = tokens[self.action.key]
        a = F.one_hot(a, self.action.n_choices).float() if self.action.discrete else a.flatten(2)
        return torch.cat([a] + [tokens[m.key] for m in self.proprios], dim=-1)

    def _read_contacts(self, pred: dict[str, torch.Tensor], tokens: dict[str, torch.Tensor],
                       prev: dict[str, torch.Tensor] | None) -> None:
        """Average the touch heads' contact probabilities (B, T, 1, 2n) with the readers' (in place).

        The reader of step t sees the codes of steps t and t-1: `prev` holds step -1's (B, 1, ...), or
        the first step counts as unchanged."""
        key = self.videos[0].key
        now = self.code_values(tokens, key)  # (B, T, h, w, C)
        first = self.code_values(prev, key) if prev is not None and key in prev else now[:, :1]
        before = torch.cat([first, now[:, :-1]], dim=1)
        cond = self.reader_cond(tokens)
        B, T = now.shape[:2]
        for m in self.touches:
            out = pred[m.key]
            n = out.shape[-1] // 2
            read = self.reader[mkey(m.key)](now.flatten(0, 1), before.flatten(0, 1), cond.flatten(0, 1)).view(B, T, 1, n)
            p = (torch.sigmoid(out[..., n:]) + torch.sigmoid(read)) / 2
            pred[m.key] = torch.cat([out[..., :n], torch.logit(p, eps=1e-6)], dim=-1)

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
                read_contacts: bool = True, memory: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Teacher-forced predictions for every step of a window: {key: (B, T, ...)}, with the contact
        readers' probabilities averaged in (as `step` does) unless `read_contacts` is False. `memory` holds
        the tokens (B, 1, ...) of a step from before the window (with `cfg.memory`)."""
        local: dict[str, torch.Tensor] = {}
        x = self.embed(tokens, gen, rows, global_batch, local=local)
        pred = self.heads(self.dynamics(x, memory=self.embed_memory(memory)), local, tokens)
        if read_contacts and len(self.reader):
            self._read_contacts(pred, tokens, None)
        return pred

    def step(self, tokens: dict[str, torch.Tensor], t: int, cache: KVCache | None,
             prev: dict[str, torch.Tensor] | None = None, memory: Memory | None = None, t_memory: int = 0
             ) -> tuple[dict[str, torch.Tensor], KVCache]:
        """One cached inference step: tokens of step t {key: (B, 1, ...)} (and `prev`, those of step t-1,
        None at the first step; `memory`, from `memorize`, of step t_memory) -> predictions {key: (B, ...)}."""
        local: dict[str, torch.Tensor] = {}
        h, cache = self.dynamics.step(self.embed(tokens, prev=prev, local=local)[:, 0], t, cache, memory, t_memory)
        pred = self.heads(h, {k: v[:, 0] for k, v in local.items()}, {k: v[:, 0] for k, v in tokens.items()})
        if len(self.reader):
            pred = {k: v[:, None] for k, v in pred.items()}  # (B, 1, ...) as in forward
            self._read_contacts(pred, tokens, prev)
            pred = {k: v[:, 0] for k, v in pred.items()}
        return pred, cache

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

            def grid(x: torch.Tensor) -> torch.Tensor:  # (B, T-1, n, C) -> picked (N, C, gh, gw)
                return x.flatten(0, 1)[pick].reshape(-1, gh, gw, x.shape[-1]).permute(0, 3, 1, 2)

            codes = tokens[m.key].reshape(B, T, -1, tok.fsq.dim)
            target = tok.fsq.values(codes[:, 1:])
            now = pred[m.key + "#now"][:, :-1]
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
        x = self.flow[mkey(key)].sample(grid(pred[key + "#now"]), grid(mean), pred[key + "#hidden"],
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
        from genworld.models.sampling import sample_step

        B, T = tokens[self.action.key].shape[:2]
        G, rows = (global_batch or B), (rows or slice(0, B))
        pick = (torch.rand(G, generator=gen) < self.cfg.self_forcing)[rows].to(tokens[self.action.key].device)
        if T < 2 or not bool(pick.any()):
            return tokens
        was = self.training
        self.eval()
        pred = self(tokens, read_contacts=True, memory=memory)
        self.train(was)
        flat = {k: v[:, :-1].reshape(B * (T - 1), *v.shape[2:]) for k, v in pred.items()}
        own = sample_step(self, flat, flow=False)  # {key: (B * (T-1), 1, ...)}
        out = dict(tokens)
        keys = [m.key for m in self.videos + self.audios + self.touches + self.proprios]
        if self.n_obj:
            keys.append(OBJECTS)
        for k in keys:
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
                      pairs: dict[str, torch.Tensor] | None = None, pair_rows: slice | None = None,
                      pair_batch: int | None = None, memory: dict[str, torch.Tensor] | None = None
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """Next-step prediction loss over a window of T >= 2 steps, weighted per modality kind; `pairs`, extra
        windows of 3 steps (object slots and touch only; rows `pair_rows` of `pair_batch`), teach the slots'
        contact heads alone; `memory` holds the tokens (B, 1, ...) of a step from before each window.

        With `self_forcing` > 0, in training (`gen` given) that share of the windows sees, from its second step on,
        the model's own predictions of each step (made from the true steps before it, without gradient) instead of
        the true tokens, and learns to predict the true next step from them: the context a rollout feeds back."""
        from genworld.models.losses import contact_reader_losses, next_step_losses, slot_contact_losses

        inputs = tokens
        if gen is not None and self.cfg.self_forcing > 0:
            inputs = self.own_context(tokens, gen, rows, global_batch, memory)
        # readers learn on their own below
        pred = self(inputs, gen, rows, global_batch, read_contacts=False, memory=memory)
        total, logs = next_step_losses(self, pred, tokens, inputs)
        if len(self.flow):
            extra, more = self.flow_loss(pred, tokens, gen, rows, global_batch)
            total = total + extra
            logs.update(more)
            logs["loss"] = float(total.detach())
        if pairs is not None and len(self.pair_heads):
            extra, more = slot_contact_losses(self, pairs, gen, pair_rows, pair_batch)
            total = total + extra
            logs.update(more)
            logs["loss"] = float(total.detach())
        if len(self.reader) and tokens[self.action.key].shape[1] >= 3:
            extra, more = contact_reader_losses(self, pred, tokens, gen, rows, global_batch)
            total = total + extra
            logs.update(more)
            logs["loss"] = float(total.detach())
        return total, logs
