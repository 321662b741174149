"""Next-step prediction losses of the world model, per modality kind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from genworld.models.world_model import WorldModel


def code_ce(logits: torch.Tensor, idx: torch.Tensor, levels: tuple[int, ...],
            weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of per-channel FSQ logits (..., sum(levels)) against indices (..., C), optionally
    a weighted mean over code positions with `weight` (...)."""
    total = logits.new_zeros(idx.shape[:-1])
    off = 0
    for c, lv in enumerate(levels):
        ce = F.cross_entropy(logits[..., off: off + lv].reshape(-1, lv), idx[..., c].reshape(-1), reduction="none")
        total = total + ce.view(idx.shape[:-1])
        off += lv
    total = total / len(levels)
    if weight is None:
        return total.mean()
    return (total * weight).sum() / weight.sum()


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
            reg = (err * wt).sum() / wt.sum()
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
        if m.key + "#pairs" in pred:  # the object pair head also learns on its own (models/objects.py)
            loss = loss + contact_bce(model, m.key, pred[m.key + "#pairs"][:, :-1], target)
        total = total + w.get("touch", 1.0) * loss
        logs[f"{m.key}/loss"] = loss.item()
    for m in model.proprios:
        err = pred[m.key][:, :-1, 0] - tokens[m.key][:, 1:]
        if model.cfg.proprio_residual:  # in units of the change's std: fine position counts as much as velocity
            err = err / model.norm.delta_scale(m.key)
        loss = err.pow(2).mean()
        total = total + w.get("proprio", 1.0) * loss
        logs[f"{m.key}/mse"] = loss.item()
    if model.n_obj:
        loss = object_loss(model, pred, tokens)
        total = total + w.get("objects", 1.0) * loss
        logs["objects/loss"] = loss.item()
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


def object_loss(model: WorldModel, pred: dict[str, torch.Tensor], tokens: dict[str, torch.Tensor]) -> torch.Tensor:
    """Object slots (models/objects.py): presence BCE, plus a Huber loss (1 px) on the position and size of
    slots present at both steps, and a tenth of it for slots that appear."""
    from genworld.models.objects import OBJECTS

    o = tokens[OBJECTS]
    cur, tgt = o[:, :-1], o[:, 1:]
    out, logit = pred[OBJECTS][:, :-1], pred[OBJECTS + "#logit"][:, :-1]
    bce = F.binary_cross_entropy_with_logits(logit, tgt[..., 0])
    px = 2 / model.videos[0].shape[1]
    err = torch.cat([(out[..., 1:3] - tgt[..., 1:3]) / px, (out[..., 3:4] - tgt[..., 3:4]) * 8], -1)
    pos = F.huber_loss(err, torch.zeros_like(err), reduction="none", delta=1.0).sum(-1)
    keep = (cur[..., 0] > 0.5) & (tgt[..., 0] > 0.5)
    new = (cur[..., 0] <= 0.5) & (tgt[..., 0] > 0.5)
    return (bce + (pos * keep).sum() / keep.sum().clamp(min=1)
            + 0.1 * (pos * new).sum() / new.sum().clamp(min=1))


def slot_contact_losses(model: WorldModel, pairs: dict[str, torch.Tensor], gen: torch.Generator | None = None,
                        rows: slice | None = None, global_batch: int | None = None
                        ) -> tuple[torch.Tensor, dict[str, float]]:
    """The slots' contact heads on extra windows of 3 steps (object slots and touch; `pairs`): slots of t-1 and t,
    and of t+1 standing in for the dynamics' prediction -> contacts of t+1.

    The heads are small and see one example per step of a window, so on a training budget of minutes they are
    short of examples, not of capacity; these cost no transformer work. The next positions get noise of
    `PAIR_NOISE_PX` (drawn from `gen` in training for `global_batch` windows, of which these are the `rows`) so
    the heads do not learn to trust a prediction more than a rollout's is worth."""
    from genworld.models.objects import OBJECTS
    from genworld.models.world_model import PAIR_NOISE_PX

    o = pairs[OBJECTS]
    if o.ndim != 4 or o.shape[1] != 3:
        raise ValueError(f"slot_contact_losses: expected slots (B, 3, K, 4), got {tuple(o.shape)}")
    prev, cur, nxt = o[:, 0], o[:, 1], o[:, 2]
    p = cur[..., :1]
    vel = (cur[..., 1:3] - prev[..., 1:3]) * p * prev[..., :1]
    px = 2 / model.videos[0].shape[1]
    nxt_xy = torch.where(nxt[..., :1] > 0.5, nxt[..., 1:3], cur[..., 1:3] + vel)
    if gen is not None:
        G, rows = (global_batch or o.shape[0]), (rows or slice(0, o.shape[0]))
        noise = torch.randn((G, *nxt_xy.shape[1:]), generator=gen)
        nxt_xy = nxt_xy + noise[rows].to(nxt_xy.device) * PAIR_NOISE_PX * px
    total: Any = 0.0
    logs: dict[str, float] = {}
    for key, logit in model.slot_contacts(p, cur[..., 1:3], vel, nxt_xy, cur[..., 3:4]).items():
        loss = contact_bce(model, key, logit, pairs[key][:, 2])
        total = total + model.cfg.loss_weights.get("touch", 1.0) * loss
        logs[f"{key}/pairs_bce"] = loss.item()
    return total, logs


def contact_reader_losses(model: WorldModel, pred: dict[str, torch.Tensor], tokens: dict[str, torch.Tensor],
                          gen: torch.Generator | None = None, rows: slice | None = None,
                          global_batch: int | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The contact readers' loss on the last k steps t of each window (T >= 3): codes of t and t-1 -> contacts of t+1.

    In training (`gen` given), a `contact_reader_mix` share of the windows gives the reader the dynamics'
    own estimate of step t's codes instead of the true ones (detached), as it will read in rollouts. The
    draw is made for `global_batch` rows and sliced, so data-parallel ranks split one process's batch.
    """
    cfg, w = model.cfg, model.cfg.loss_weights
    B, T = tokens[model.action.key].shape[:2]
    k = max(1, min(T - 2, -(-cfg.contact_reader_samples // B)))
    now_s, before_s = slice(T - 1 - k, T - 1), slice(T - 2 - k, T - 2)  # t = T-1-k .. T-2, all >= 1
    key = model.videos[0].key
    values = model.code_values(tokens, key)
    now, before = values[:, now_s], values[:, before_s]
    if gen is not None and cfg.contact_reader_mix > 0:
        G, rows = (global_batch or B), (rows or slice(0, B))
        mix = (torch.rand(G, generator=gen) < cfg.contact_reader_mix)[rows].to(now.device)
        own = model.predicted_values(pred, key)[:, before_s].detach()  # predicted at t-1: step t's values
        now = torch.where(mix[:, None, None, None, None], own, now)
    cond = model.reader_cond(tokens)[:, now_s].flatten(0, 1)
    total: Any = 0.0
    logs: dict[str, float] = {}
    for m in model.touches:
        logit = model.reader[m.key.replace(".", "__")](now.flatten(0, 1), before.flatten(0, 1), cond).view(B, k, -1)
        loss = contact_bce(model, m.key, logit, tokens[m.key][:, T - k:])  # contacts of steps t+1
        total = total + w.get("touch", 1.0) * loss
        logs[f"{m.key}/reader_bce"] = loss.item()
    return total, logs
