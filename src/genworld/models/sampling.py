"""Turning one step's predictions into tokens (sampling) and tokens into raw observations (decoding)."""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def _kept(model: WorldModel, pred: dict[str, torch.Tensor], key: str, temperature: float,
          gen: torch.Generator | None) -> torch.Tensor | None:
    """The change gate of camera `key`: (B, n, 1) True where a code stays as it is (its change probability is at most
    the run's threshold; at temperature > 0, drawn with that probability); None without a gate."""
    if key + "#change" not in pred:
        return None
    p = torch.sigmoid(pred[key + "#change"])
    return ((torch.rand(p.shape, generator=gen) >= p) if temperature > 0 else (p <= model.change_p.get(key, 0.5)))[..., None]


@torch.no_grad()
def sample_step(model: WorldModel, pred: dict[str, torch.Tensor], temperature: float = 0.0, top_k: int = 0,
                gen: torch.Generator | None = None, flow: bool = True) -> dict[str, torch.Tensor]:
    """Predictions of one step {key: (B, n, ...)} -> next-step tokens {key: (B, 1, ...)} (+ reward/done).

    A camera with a code sampler (`flow_width`) draws its codes from it, at any temperature (its noise comes from
    `gen`), and its frame decodes the drawn codes; `flow=False` takes the heads' most likely codes instead."""
    tokens: dict[str, torch.Tensor] = {}
    for m in model.videos:
        tok = model.image_tok[m.key.replace(".", "__")]
        if flow and m.key.replace(".", "__") in model.flow and m.key + "#cur" in pred:
            idx, vals = model.sample_codes(pred, m.key, gen)
            keep = _kept(model, pred, m.key, temperature, gen)  # the change gate holds for the sampler's draw too
            if keep is not None:
                idx = torch.where(keep, pred[m.key + "#cur"], idx)
                vals = tok.fsq.values(idx)
            tokens[m.key] = idx.view(idx.shape[0], 1, *tok.cfg.grid, idx.shape[-1])
            tokens[m.key + MEAN_SUFFIX] = vals.view(vals.shape[0], 1, *tok.cfg.grid, vals.shape[-1])
            continue
        idx = sample_codes(pred[m.key], tok.fsq.levels, temperature, top_k, gen)  # (B, h*w, C)
        keep = _kept(model, pred, m.key, temperature, gen)
        if keep is not None:
            idx = torch.where(keep, pred[m.key + "#cur"], idx)
        tokens[m.key] = idx.view(idx.shape[0], 1, *tok.cfg.grid, idx.shape[-1])
        if temperature <= 0 and (model.cfg.decode_expectation or m.key + "#values" in pred):
            # The fed-back tokens stay the most likely codes; only the decoded frame uses the expectation
            # (the regressed values where the model has that head).
            mean = (pred[m.key + "#values"].clamp(-1, 1) if m.key + "#values" in pred
                    else expected_values(pred[m.key], tok.fsq.levels))
            if keep is not None:
                mean = torch.where(keep, tok.fsq.values(pred[m.key + "#cur"]), mean)
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
        # A taxel in contact presses at least as hard as the data's contact threshold: the value head predicts
        # the force given a contact, and the contact head alone says whether there is one.
        floor = model.norm.contact_level(m.key) * 1.05 + 1e-4
        tokens[m.key] = (torch.maximum(out[:, :n], floor) * on)[:, None]
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


def compose_on_canvas(model: WorldModel, key: str, frame: torch.Tensor, canvas: torch.Tensor, before: torch.Tensor,
                      after: torch.Tensor) -> torch.Tensor:
    """A decoded frame (B, H, W, 3) uint8 where camera `key`'s codes changed from `before` to `after` (B, 1, h, w, C),
    the previous frame `canvas` elsewhere.

    The image tokenizer's encoder sees only each code's own patch, so a code that did not change says its patch
    did not change: keeping the previous pixels there costs nothing and keeps every still thing exact, instead of
    redrawing it through the decoder at its reconstruction error every step."""
    tok = model.image_tok[key.replace(".", "__")]
    f = tok.cfg.factor
    H, W = frame.shape[1:3]
    changed = (after[:, 0] != before[:, 0]).any(-1)  # (B, h, w)
    mask = changed.repeat_interleave(f, 1).repeat_interleave(f, 2)[:, :H, :W]
    return torch.where(mask[..., None], frame, canvas)
