"""Pointers read off proprio: each image token learns where the agent is relative to itself, without attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genworld.models.grouping import CodeGroups
from genworld.models.world_model import WorldModel

from .test_world_model import batch_of, small_model


def test_offsets_are_token_centre_minus_point_in_half_tokens() -> None:
    g = CodeGroups((16, 16), (4, 4))  # 4 x 4 tokens
    centre = torch.tensor([[(2 + 0.5) / 4 * 2 - 1, (1 + 0.5) / 4 * 2 - 1]])  # token row 1, column 2
    off = WorldModel.pointer_offsets(centre, g)[:, 0]  # (16, 2)
    assert torch.allclose(off[1 * 4 + 2], torch.zeros(2), atol=1e-6)
    assert torch.allclose(off[1 * 4 + 3], torch.tensor([2.0, 0.0]))  # the token to the right
    assert torch.allclose(off[2 * 4 + 2], torch.tensor([0.0, 2.0]))  # the token below
    wide = WorldModel.pointer_offsets(torch.zeros(1, 2), CodeGroups((8, 16), (4, 4)))[:, 0]  # 2 rows x 4 columns
    assert torch.allclose(wide[0], torch.tensor([-3.0, -1.0]))  # half-token units on each axis


def test_a_pointer_learns_which_token_holds_the_position_in_proprio() -> None:
    """Proprio carries an (x, y) in the image; after training the pointer and its MLP (and a linear read of each
    token), the token that holds the point is found at new points: a plain token embedding cannot know it."""
    torch.manual_seed(0)
    model = small_model(proprio_pointers=1)
    g = model.groups["observation.images.top"]
    torch.manual_seed(0)  # the read-out's start, whatever the model's construction drew before it
    read = torch.nn.Linear(model.cfg.dynamics.dim, 1)
    params = list(model.pointer.parameters()) + list(model.pointer_mlp.parameters()) + list(read.parameters())
    opt = torch.optim.Adam(params, 1e-2)
    ny, nx = g.grid[0] // g.patch[0], g.grid[1] // g.patch[1]

    def sample(n: int, gen: torch.Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        xy = torch.rand(n, 2, generator=gen) * 2 - 1
        state = torch.cat([xy * 3, torch.randn(n, 2, generator=gen)], dim=-1)  # scaled, plus two distractors
        target = ((xy[:, 1] + 1) / 2 * ny).long().clamp(max=ny - 1) * nx + ((xy[:, 0] + 1) / 2 * nx).long().clamp(max=nx - 1)
        return {"observation.state": state[:, None]}, target

    gen = torch.Generator().manual_seed(0)
    for _ in range(400):
        tokens, target = sample(128, gen)
        logits = read(model._pointer_features(model.pointers(tokens), g))[:, 0, :, 0]  # (n, groups)
        loss = F.cross_entropy(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    tokens, target = sample(1000, torch.Generator().manual_seed(1))
    with torch.no_grad():
        acc = (read(model._pointer_features(model.pointers(tokens), g))[:, 0, :, 0].argmax(-1) == target).float().mean().item()
    assert acc > 0.9, acc


def test_pointers_change_image_embeddings_only_through_proprio() -> None:
    model = small_model(proprio_pointers=1)
    with torch.no_grad():
        model.pointer.weight.normal_()
    tokens = model.tokenize(batch_of(model, 2, 4))
    moved = {k: v.clone() for k, v in tokens.items()}
    moved["observation.state"][:, 2] += 1.0
    a, b = model.embed(tokens), model.embed(moved)
    video = model.slots["observation.images.top"]
    assert torch.allclose(a[:, :2], b[:, :2]) and torch.allclose(a[:, 3:], b[:, 3:])  # other steps unchanged
    assert not torch.allclose(a[:, 2, video], b[:, 2, video])  # the image tokens of step 2 see the new point

