"""Next-step prediction losses of the world model, per modality kind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from genworld.models.world_model import WorldModel


def code_ce(logits: torch.Tensor, idx: torch.Tensor, levels: tuple[int, ...],
            weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of per-channel FSQ logits (..., sum(levels)) against indices (..., C), optionally weighted
    per code position by `weight` (...). The weighted terms are averaged over the positions, not divided by the
    weights' sum: a batch split across data-parallel ranks then averages to the loss of the whole batch."""
    total = logits.new_zeros(idx.shape[:-1])
    off = 0
    for c, lv in enumerate(levels):
        ce = F.cross_entropy(logits[..., off: off + lv].reshape(-1, lv), idx[..., c].reshape(-1), reduction="none")
        total = total + ce.view(idx.shape[:-1])
        off += lv
    total = total / len(levels)
    if weight is None:
        return total.mean()
    return (total * weight).mean()


def contact_bce(model: WorldModel, key: str, logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE of contact logits against scaled touch values (...), a taxel in contact above the data's threshold."""
    contact = (target > model.norm.contact_level(key)).float()
    pos_weight = logit.new_tensor(model.cfg.contact_pos_weight)
    return F.binary_cross_entropy_with_logits(logit, contact, pos_weight=pos_weight)


def next_step_losses(model: WorldModel, pred: dict[str, torch.Tensor], tokens: dict[str, torch.Tensor],
                     inputs: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Predictions at steps 0..T-2 against tokens at 1..T-1; reward/done at every step. `inputs`, the tokens the
    model read where they differ from the targets (self-forcing), decide which codes changed."""
    inputs = tokens if inputs is None else inputs
    w = model.cfg.loss_weights
    total: Any = 0.0
    logs: dict[str, float] = {}
    B, T = tokens[model.action.key].shape[:2]
    for m in model.videos + model.audios:
        tok = (model.image_tok if m.kind == "video" else model.audio_tok)[m.key.replace(".", "__")]
        codes = tokens[m.key].reshape(B, T, -1, tok.fsq.dim)
        idx = codes[:, 1:]
        # Most codes of a frame repeat the previous step's (static background); the ones that change
        # carry the dynamics, so they weigh more (a code the model read wrong counts as changed too).
        seen = inputs[m.key].reshape(B, T, -1, tok.fsq.dim)[:, :-1]
        changed = ((idx != codes[:, :-1]) | (idx != seen)).any(-1).float()  # (B, T-1, n)
        loss = code_ce(pred[m.key][:, :-1], idx, tok.fsq.levels, 1 + model.cfg.changed_code_weight * changed)
        total = total + w.get(m.kind, 1.0) * loss
        logs[f"{m.key}/ce"] = loss.item()
        if m.key + "#change" in pred:  # does each code differ from the one the model read?
            moved = (idx != seen).any(-1).float()
            bce = F.binary_cross_entropy_with_logits(pred[m.key + "#change"][:, :-1], moved)
            total = total + w.get(m.kind, 1.0) * bce
            logs[f"{m.key}/change_bce"] = bce.item()
        if m.key + "#values" in pred:
            err = (pred[m.key + "#values"][:, :-1] - tok.fsq.values(idx)).pow(2).mean(-1)
            wt = 1 + model.cfg.changed_code_weight * changed
            reg = (err * wt).mean()  # averaged over positions, as code_ce (data-parallel ranks agree)
            total = total + model.cfg.video_regress * reg
            logs[f"{m.key}/value_mse"] = reg.item()
    for m in model.touches:
        out = pred[m.key][:, :-1]  # (B, T-1, 1, 2n)
        n = out.shape[-1] // 2
        target = tokens[m.key][:, 1:]  # (B, T-1, n) scaled
        value, logit = out[..., 0, :n], out[..., 0, n:]
        # The value head learns the force of a contact (where there is one); whether there is one is the contact
        # head's. Trained toward zero on every other taxel too, it would learn the force times the chance of a
        # contact, and a rollout would show a contact it is sure of as one too weak to count. (Averaged over all
        # taxels, as before: averaged over the contacts alone, it weighed so much more that the frames lost 0.6 dB.)
        pressed = (target > model.norm.contact_level(m.key)).float()
        force = ((value - target).pow(2) * pressed).mean()
        loss = force + contact_bce(model, m.key, logit, target)
        total = total + w.get("touch", 1.0) * loss
        logs[f"{m.key}/loss"] = loss.item()
    for m in model.proprios:
        loss = (pred[m.key][:, :-1, 0] - tokens[m.key][:, 1:]).pow(2).mean()
        total = total + w.get("proprio", 1.0) * loss
        logs[f"{m.key}/mse"] = loss.item()
    if model.reward_key and model.reward_key in tokens:
        loss = F.mse_loss(pred[model.reward_key], tokens[model.reward_key])
        total = total + w.get("reward", 1.0) * loss
        logs["reward/mse"] = loss.item()
    if model.done_key and model.done_key in tokens:
        loss = F.binary_cross_entropy_with_logits(pred[model.done_key], tokens[model.done_key])
        total = total + w.get("done", 1.0) * loss
        logs["done/bce"] = loss.item()
    logs["loss"] = float(total.detach()) if torch.is_tensor(total) else float(total)
    return total, logs
