"""Turning one step's predictions into tokens (sampling) and tokens into raw observations (decoding)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from genworld.models.world_model import WorldModel


def sample_codes(logits: torch.Tensor, levels: tuple[int, ...], temperature: float, top_k: int,
                 gen: torch.Generator | None) -> torch.Tensor:
    """Per-channel FSQ logits (..., sum(levels)) -> indices (..., C); temperature 0 is argmax."""
    out = []
    off = 0
    for lv in levels:
        lg = logits[..., off: off + lv]
        off += lv
        if temperature <= 0:
            out.append(lg.argmax(-1))
            continue
        lg = lg / temperature
        if 0 < top_k < lv:
            kth = lg.topk(top_k, dim=-1).values[..., -1:]
            lg = lg.masked_fill(lg < kth, float("-inf"))
        p = lg.softmax(-1).reshape(-1, lv)
        out.append(torch.multinomial(p, 1, generator=gen).view(lg.shape[:-1]))
    return torch.stack(out, dim=-1)


def expected_values(logits: torch.Tensor, levels: tuple[int, ...]) -> torch.Tensor:
    """Per-channel FSQ logits (..., sum(levels)) -> expected code values (..., C) in [-1, 1].

    Decoding the expectation rather than the most likely level is what minimises the squared error of a
    channel whose level the model is unsure of (a disc's sub-patch position, say).
    """
    out = []
    off = 0
    for lv in levels:
        p = logits[..., off: off + lv].float().softmax(-1)
        off += lv
        grid = torch.linspace(-1.0, 1.0, lv, device=logits.device)
        out.append(p @ grid)
    return torch.stack(out, dim=-1)


MEAN_SUFFIX = "#mean"  # sample_step's extra entry: expected image code values to decode instead of the indices


@torch.no_grad()
def sample_step(model: WorldModel, pred: dict[str, torch.Tensor], temperature: float = 0.0, top_k: int = 0,
                gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Predictions of one step {key: (B, n, ...)} -> next-step tokens {key: (B, 1, ...)} (+ reward/done)."""
    tokens: dict[str, torch.Tensor] = {}
    for m in model.videos:
        tok = model.image_tok[m.key.replace(".", "__")]
        idx = sample_codes(pred[m.key], tok.fsq.levels, temperature, top_k, gen)  # (B, h*w, C)
        tokens[m.key] = idx.view(idx.shape[0], 1, *tok.cfg.grid, idx.shape[-1])
        if temperature <= 0 and (model.cfg.decode_expectation or m.key + "#values" in pred):
            # The fed-back tokens stay the most likely codes; only the decoded frame uses the expectation
            # (the regressed values where the model has that head).
            mean = (pred[m.key + "#values"].clamp(-1, 1) if m.key + "#values" in pred
                    else expected_values(pred[m.key], tok.fsq.levels))
            tokens[m.key + MEAN_SUFFIX] = mean.view(mean.shape[0], 1, *tok.cfg.grid, mean.shape[-1])
    for m in model.audios:
        tok = model.audio_tok[m.key.replace(".", "__")]
        tokens[m.key] = sample_codes(pred[m.key], tok.fsq.levels, temperature, top_k, gen)[:, None]
    for m in model.touches:
        out = pred[m.key][:, 0]
        n = out.shape[-1] // 2
        p = torch.sigmoid(out[:, n:])
        thr = model.contact_p.get(m.key, model.cfg.contact_threshold)
        on = (torch.rand(p.shape, generator=gen) < p) if temperature > 0 else (p > thr)
        tokens[m.key] = (out[:, :n] * on)[:, None]
    for m in model.proprios:
        tokens[m.key] = pred[m.key][:, 0][:, None]
    if model.reward_key:
        tokens[model.reward_key] = pred[model.reward_key][:, None]
    if model.done_key:
        tokens[model.done_key] = torch.sigmoid(pred[model.done_key])[:, None]
    return tokens


@torch.no_grad()
def decode_step(model: WorldModel, tokens: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tokens of one step {key: (B, 1, ...)} -> raw observations {key: (B, *shape)} (video uint8).

    Where `sample_step` left expected code values (key + MEAN_SUFFIX), frames decode those."""
    obs: dict[str, torch.Tensor] = {}
    for m in model.videos:
        tok = model.image_tok[m.key.replace(".", "__")]
        mean = tokens.get(m.key + MEAN_SUFFIX)
        img = tok.decode(mean[:, 0]) if mean is not None else tok.decode_indices(tokens[m.key][:, 0])
        obs[m.key] = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    for m in model.audios:
        wav = model.audio_tok[m.key.replace(".", "__")].decode_indices(tokens[m.key][:, 0])
        obs[m.key] = model.norm.audio_out(m.key, wav)
    for m in model.touches + model.proprios:
        x = model.norm.decode(m.key, tokens[m.key][:, 0])
        obs[m.key] = x.view(x.shape[0], *m.shape)
    if model.reward_key and model.reward_key in tokens:
        obs[model.reward_key] = model.norm.decode(model.reward_key, tokens[model.reward_key][:, 0, None])[:, 0]
    if model.done_key and model.done_key in tokens:
        obs[model.done_key] = tokens[model.done_key][:, 0] > 0.5
    return obs


def fixed_logits(idx: torch.Tensor, levels: tuple[int, ...]) -> torch.Tensor:
    """Indices (..., C) -> per-channel logits (..., sum(levels)) that put all the mass on those levels."""
    parts = [torch.nn.functional.one_hot(idx[..., c], lv).float() for c, lv in enumerate(levels)]
    return (torch.cat(parts, -1) - 1) * 1e4


def code_log_prob(logits: torch.Tensor, idx: torch.Tensor, levels: tuple[int, ...]) -> torch.Tensor:
    """Log-probability (...) of codes idx (..., C) under per-channel logits (..., sum(levels))."""
    total = logits.new_zeros(idx.shape[:-1])
    off = 0
    for c, lv in enumerate(levels):
        lp = logits[..., off: off + lv].float().log_softmax(-1)
        total = total + lp.gather(-1, idx[..., c: c + 1])[..., 0]
        off += lv
    return total


@torch.no_grad()
def refine_step(model: WorldModel, pred: dict[str, torch.Tensor], tokens: dict[str, torch.Tensor], t: int,
                cache: Any, prev: dict[str, torch.Tensor] | None, temperature: float = 0.0, top_k: int = 0,
                gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Iterative decoding of one step's image codes (`video_passes` > 1), as MaskGIT decodes an image.

    The first pass (`pred`) predicts every code at once, each on its own, so a disc the model is unsure of
    can vanish: every code where it might be says "background". Here codes at least `video_sure` likely are
    fixed after the first pass; the unsure ones are fixed in `video_passes - 1` rounds, the most likely first,
    and each later pass sees the codes fixed so far (`WorldModel.step(reveal=...)`, against `cache`, the
    cache before step t, which it does not change). Returns `pred` with every camera's logits putting all
    mass on the chosen codes and the values regressed in the pass that fixed each code; the other
    modalities keep the first pass's predictions."""
    K = model.cfg.video_passes
    if K <= 1 or not model.videos:
        return pred
    state = {}
    for m in model.videos:
        lg = pred[m.key]  # (B, n, L)
        state[m.key] = {"idx": torch.zeros(*lg.shape[:-1], len(model.image_tok[m.key.replace(".", "__")].fsq.levels),
                                           dtype=torch.long, device=lg.device),
                        "fixed": torch.zeros(lg.shape[:-1], dtype=torch.bool, device=lg.device),
                        "values": pred.get(m.key + "#values"), "unsure": None}
    cur = pred
    for k in range(1, K):
        reveal = {}
        for m in model.videos:
            st, levels = state[m.key], model.image_tok[m.key.replace(".", "__")].fsq.levels
            cand = sample_codes(cur[m.key], levels, temperature, top_k, gen)  # (B, n, C)
            lp = code_log_prob(cur[m.key], cand, levels)
            if st["unsure"] is None:  # after the first pass: fix the sure codes, count the rest
                sure = lp >= math.log(model.cfg.video_sure)
                st["unsure"] = (~sure).sum(1)  # (B,)
                new = sure
            else:
                new = torch.zeros_like(st["fixed"])
            # keep the least likely floor(unsure * (K - k) / K) codes open, fix the rest
            open_after = (st["unsure"] * (K - k)) // K  # (B,)
            score = lp.masked_fill(st["fixed"] | new, float("inf"))  # already fixed rank last among the open ones
            order = score.argsort(1)  # ascending: least likely first
            rank = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
            still_open = ~(st["fixed"] | new)
            new = new | (still_open & (rank >= open_after[:, None]))
            st["idx"] = torch.where(new[..., None], cand, st["idx"])
            if st["values"] is not None and m.key + "#values" in cur:
                st["values"] = torch.where(new[..., None], cur[m.key + "#values"], st["values"])
            st["fixed"] = st["fixed"] | new
            reveal[m.key] = (st["idx"][:, None], st["fixed"][:, None])
        cur, _ = model.step(tokens, t, cache, prev, reveal=reveal)
    out = dict(pred)
    if getattr(model, "_others_from_last", False):  # EXPERIMENT
        out = dict(cur)
    for m in model.videos:
        st, levels = state[m.key], model.image_tok[m.key.replace(".", "__")].fsq.levels
        out[m.key] = torch.where(st["fixed"][..., None], fixed_logits(st["idx"], levels), cur[m.key])
        if st["values"] is not None:
            out[m.key + "#values"] = torch.where(st["fixed"][..., None], st["values"], cur[m.key + "#values"])
    return out
