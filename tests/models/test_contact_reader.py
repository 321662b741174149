"""The contact reader: a convolution over the image code grid whose contact probability joins the touch head's."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genworld.models.contact_reader import ContactReader
from genworld.models.sampling import MEAN_SUFFIX

from .test_world_model import batch_of, small_model

TOUCH = "observation.tactile.ring"


def two_discs(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grids (n, 12, 12, 2) holding two 'discs' (channel 0 = 1 on their cells) at random places, the same grids
    one step before (each disc one cell to the left), and targets (n, 2): [discs side by side, discs stacked]."""
    vals = -torch.ones(n, 12, 12, 2)
    before = -torch.ones(n, 12, 12, 2)
    y = torch.zeros(n, 2)
    for i in range(n):
        y0, x0 = (int(v) for v in rng.integers(1, 10, 2))
        kind = int(rng.integers(0, 3))  # 0: side by side, 1: stacked, 2: far apart
        y1, x1 = [(y0, x0 + 1), (y0 + 1, x0), (int(rng.integers(0, 12)), (x0 + 6) % 12)][kind]
        for yy, xx in ((y0, x0), (y1, x1)):
            vals[i, yy, xx, 0] = 1.0
            before[i, yy, max(xx - 1, 0), 0] = 1.0
        if kind < 2:
            y[i, kind] = 1.0
    return vals, before, y


def test_reader_learns_a_local_contact_rule_that_holds_anywhere_in_the_frame() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    reader = ContactReader(code_dim=2, cond_dim=3, n_taxels=2, channels=16)
    opt = torch.optim.Adam(reader.parameters(), 3e-3)
    cond = torch.zeros(64, 3)
    for _ in range(600):
        vals, before, y = two_discs(64, rng)
        loss = F.binary_cross_entropy_with_logits(reader(vals, before, cond), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    vals, before, y = two_discs(400, np.random.default_rng(1))  # new places
    with torch.no_grad():
        acc = ((reader(vals, before, torch.zeros(400, 3)) > 0).float() == y).float().mean().item()
    assert acc > 0.97, acc


def test_reader_probability_is_averaged_with_the_touch_heads_in_forward_and_step() -> None:
    model = small_model(window=6, contact_reader=8)
    tokens = model.tokenize(batch_of(model, 2, 4))
    raw = model(tokens, read_contacts=False)[TOUCH]  # (B, T, 1, 2n)
    both = model(tokens)[TOUCH]
    n = raw.shape[-1] // 2
    assert torch.equal(both[..., :n], raw[..., :n])  # contact values come from the head alone
    key = "observation.images.top"
    now = model.code_values(tokens, key)
    before = torch.cat([now[:, :1], now[:, :-1]], dim=1)
    read = model.reader[TOUCH.replace(".", "__")](now.flatten(0, 1), before.flatten(0, 1),
                                                  model.reader_cond(tokens).flatten(0, 1)).view(2, 4, 1, n)
    expect = (torch.sigmoid(raw[..., n:]) + torch.sigmoid(read)) / 2
    assert torch.allclose(torch.sigmoid(both[..., n:]), expect, atol=1e-5)
    # a step reads the expected code values a greedy rollout leaves (key + MEAN_SUFFIX) instead of the codes
    one = {k: v[:, 1:2] for k, v in tokens.items()}
    prev = {k: v[:, :1] for k, v in tokens.items()}
    p1, _ = model.step(one, 1, None, prev)
    soft = {**one, key + MEAN_SUFFIX: model.code_values(one, key) * 0.5}
    p2, _ = model.step(soft, 1, None, prev)
    assert torch.equal(p1[TOUCH][..., :n], p2[TOUCH][..., :n]) and not torch.allclose(p1[TOUCH], p2[TOUCH])


def test_reader_trains_on_the_last_steps_and_reads_the_models_own_codes_only_in_training() -> None:
    model = small_model(window=6, contact_reader=8, contact_reader_mix=1.0).train()
    tokens = model.tokenize(batch_of(model, 4, 6))
    name = f"{TOUCH}/reader_bce"
    _, a = model.dynamics_loss(tokens)
    _, b = model.dynamics_loss(tokens)
    assert name in a and a[name] == b[name]  # without a generator (validation): true codes, deterministic
    _, mixed = model.dynamics_loss(tokens, gen=torch.Generator().manual_seed(0))
    model.cfg.contact_reader_mix = 0.0
    _, clean = model.dynamics_loss(tokens, gen=torch.Generator().manual_seed(0))
    assert mixed[name] != clean[name]
    model.zero_grad()
    loss, _ = model.dynamics_loss(tokens)
    loss.backward()
    reader = model.reader[TOUCH.replace(".", "__")]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in reader.parameters())
