"""Object slots (models/objects.py): the learned palette, reading slots off frames, and slots in the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genworld.models.normalizer import compute_stats
from genworld.models.objects import MIN_COVERAGE, OBJECTS, coverage, learn_palette, read_slots
from genworld.rollout.session import WorldSession
from genworld.worlds.bounce.config import PALETTE

from .test_world_model import batch_of, small_model


def bounce_frames_and_gt(n: int = 8, steps: int = 48) -> tuple[np.ndarray, np.ndarray]:
    from ..train.test_quality import bounce_episodes

    _, eps = bounce_episodes(n, steps)
    return (np.concatenate([e["observation.images.top"] for e in eps]),
            np.concatenate([e["gt.objects"] for e in eps]))


def test_the_palette_is_the_background_then_the_common_colours_without_blended_edges() -> None:
    frames = np.full((16, 32, 32, 3), 30, np.uint8)
    frames[:, 2:8, 2:8] = (240, 80, 40)
    frames[:, 8, 2:8] = (230, 85, 45)  # an edge blended into the square's colour: no slot of its own
    frames[:, 20:22, 20:22] = (40, 200, 90)
    frames[0, 0, 0] = (1, 2, 3)  # one stray pixel: below the minimum share
    colours, background = learn_palette(frames, k=4)
    assert background == [30, 30, 30]
    assert colours == [[240, 80, 40], [40, 200, 90]]
    assert learn_palette(frames, k=1)[0] == [[240, 80, 40]]
    with pytest.raises(ValueError, match="uint8 frames"):
        learn_palette(frames.astype(np.float32), k=4)
    with pytest.raises(ValueError, match="no frames"):
        learn_palette(frames[:0], k=4)


def test_a_photograph_like_world_gets_a_palette_that_explains_too_little_for_slots() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)  # no colour repeats much
    colours, background = learn_palette(frames, k=4)
    assert colours == [] and len(background) == 3
    assert coverage(frames, [background] + colours) < MIN_COVERAGE


def test_slots_place_bounce_discs_to_a_tenth_of_a_pixel() -> None:
    frames, gt = bounce_frames_and_gt()
    colours, background = learn_palette(frames[::8], k=10)
    assert background == [20, 22, 30]
    assert sorted(map(tuple, colours)) == sorted({tuple(PALETTE[int(c)]) for c in np.unique(gt[..., 6][gt[..., 8] > 0])})
    slots = read_slots(torch.as_tensor(frames), torch.tensor([background] + colours), len(colours)).numpy()
    errors = []
    for k, c in enumerate(colours):
        cid = next(i for i, pc in enumerate(PALETTE) if list(pc) == c)
        there = (gt[..., 6] == cid) & (gt[..., 8] > 0)  # (N, rows)
        steps = there.any(-1)
        assert (slots[steps, k, 0] == 1).all() and (slots[~steps, k] == 0).all()
        true = gt[steps][there[steps]][:, :2]
        xy = (slots[steps, k, 1:3] + 1) * 32  # back to pixels
        errors.append(np.hypot(*(xy - true).T))
        r = gt[steps][there[steps]][:, 4]
        assert np.allclose(slots[steps, k, 3] * 8, np.sqrt(np.pi) * r, rtol=0.2)  # size: sqrt(area) / 8
    err = np.concatenate(errors)
    assert np.median(err) < 0.12 and np.quantile(err, 0.95) < 0.3


def test_slots_beyond_the_palettes_count_read_absent_and_shapes_follow_the_frames() -> None:
    frames = np.full((2, 3, 16, 16, 3), 30, np.uint8)
    frames[..., 4:6, 10:12, :] = (240, 80, 40)
    pal = torch.tensor([[30, 30, 30], [240, 80, 40], [240, 80, 40]])
    slots = read_slots(torch.as_tensor(frames), pal, count=1)
    assert slots.shape == (2, 3, 2, 4)
    assert torch.allclose(slots[0, 0, 0], torch.tensor([1.0, (11 / 16) * 2 - 1, (5 / 16) * 2 - 1, 0.25]))
    assert (slots[..., 1, :] == 0).all()
    assert (read_slots(torch.as_tensor(frames), pal, count=0) == 0).all()  # a world without slots reads none
    assert read_slots(torch.as_tensor(frames[:0]), pal, count=1).shape == (0, 3, 2, 4)


def test_run_stats_carry_the_palette_and_a_model_refuses_more_colours_than_slots() -> None:
    frames, _ = bounce_frames_and_gt(4, 24)
    from genworld.train.config import tiny

    from ..train.test_quality import bounce_episodes

    spec, _ = bounce_episodes(1, 4)
    stats = compute_stats(spec, {"observation.images.top": [frames[:24], frames[24:]]}, object_slots=10)
    assert stats[OBJECTS]["palette"][0] == [20, 22, 30] and stats[OBJECTS]["count"] == len(stats[OBJECTS]["palette"]) - 1
    from dataclasses import replace

    from genworld.models import WorldModel

    model = WorldModel(replace(tiny(spec).model, object_slots=2))
    with pytest.raises(ValueError, match="object slots"):
        model.norm.set_stats(stats)


def test_a_session_feeds_the_predicted_slots_back_and_a_model_without_them_says_so() -> None:
    model = small_model(object_slots=3, proprio_pointers=1)
    sess = WorldSession(model)
    ctx = {k: v.numpy() for k, v in batch_of(model, 2, 4).items()}
    sess.reset(ctx)
    first = sess._pending[OBJECTS]
    assert first.shape == (2, 1, 3, 4) and (first[:, 0, :2, 0] == 1).all() and (first[:, 0, 2] == 0).all()
    for _ in range(3):
        sess.step(np.zeros((2, 2), np.float32))
        o = sess._pending[OBJECTS]
        assert o.shape == (2, 1, 3, 4) and torch.isfinite(o).all()
        assert set(o[..., 0].unique().tolist()) <= {0.0, 1.0}
        assert (o[..., 1:][o[..., :1].expand_as(o[..., 1:]) == 0] == 0).all()  # absent slots read zeros
    tokens = model.tokenize({k: torch.as_tensor(v) for k, v in ctx.items()})
    tokens.pop(OBJECTS)
    with pytest.raises(ValueError, match="object slots"):
        model(tokens)


def test_the_object_loss_teaches_the_slots_to_move() -> None:
    model = small_model(object_slots=3, proprio_pointers=1).train()
    tokens = model.tokenize(batch_of(model, 4, 6))
    opt = torch.optim.Adam(model.dynamics_parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss, logs = model.dynamics_loss(tokens)
        first = first if first is not None else logs["objects/loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logs["objects/loss"] < 0.5 * first


def test_a_slot_keeps_its_velocity_unless_the_head_changes_it() -> None:
    model = small_model(object_slots=3, proprio_pointers=1)
    torch.nn.init.zeros_(model.out[OBJECTS].weight)
    torch.nn.init.zeros_(model.out[OBJECTS].bias)
    tokens = model.tokenize(batch_of(model, 2, 5))
    o = tokens[OBJECTS]
    assert (o[:, :, 0, 0] == 1).all()  # the synthetic world's square is in every frame
    pred = model(tokens)[OBJECTS]
    want = 2 * o[:, 1:, 0, 1:3] - o[:, :-1, 0, 1:3]  # constant velocity: x_t + (x_t - x_{t-1})
    assert torch.allclose(pred[:, 1:, 0, 1:3], want, atol=1e-6)
    assert torch.allclose(pred[:, 0, 0, 1:3], o[:, 0, 0, 1:3], atol=1e-6)  # no previous step: no velocity


def test_pair_features_are_offsets_between_present_slots_and_their_closest_approach() -> None:
    model = small_model(object_slots=3, proprio_pointers=1)
    unit = 16 / 64  # 8 pixels in the slots' units
    p = torch.tensor([[1.0], [1.0], [0.0]])
    now = torch.tensor([[0.0, 0.0], [4 * unit, 0.0], [0.0, 0.0]])
    vel = torch.tensor([[0.0, 0.0], [-8 * unit, 0.0], [0.0, 0.0]])  # slot 1 passes through slot 0 within the step
    nxt = now + vel
    size = torch.tensor([[1.0], [0.5], [0.0]])
    feats, mask = model._pair_features(p, now, vel, nxt, size)
    assert feats.shape == (9, 15 + 16)
    assert mask.tolist() == [False, True, False, True, False, False, False, False, False]
    f01 = feats[1]  # pair (i=0, j=1): slot 1 relative to slot 0
    assert torch.allclose(f01[0:2], torch.tensor([4.0, 0.0])) and torch.allclose(f01[2:4], torch.tensor([-4.0, 0.0]))
    assert torch.allclose(f01[6:8], torch.zeros(2), atol=1e-6)  # closest approach: they meet
    assert torch.allclose(f01[8:10], torch.tensor([1.0, 0.5]))  # sizes of i and j
    assert torch.allclose(feats[3][8:10], torch.tensor([0.5, 1.0]))
    assert torch.allclose(f01[10:13], torch.tensor([8.0, -4.0, -4.0]))  # rim gaps in px: far apart now, overlapping on the way
    assert torch.allclose(f01[13:15], torch.tensor([1.0, 0.0]))  # direction from i to j now
    near = model._pair_features(p, now * 0.25, vel * 0, nxt * 0 + now * 0.25, size)[0][1]  # 1 unit apart, still
    assert torch.allclose(near[10], torch.tensor((1 - 1.5 / np.pi ** 0.5) * 8))


def test_edge_features_are_rim_gaps_to_the_frame_edges_now_predicted_and_at_constant_velocity() -> None:
    model = small_model(object_slots=3, proprio_pointers=1, object_edges=True)
    H, W = model.videos[0].shape[:2]
    r = 5.0  # a disc of radius 5 px has size sqrt(pi) * 5 / 8
    size = torch.full((3, 1), np.pi ** 0.5 * r / 8)
    now = torch.tensor([[(r + 2) / W * 2 - 1, 0.0], [0.0, 1 - (r + 0.5) / H * 2], [0.0, 0.0]])  # 2 px from the left
    vel = torch.tensor([[-3 / W * 2, 0.0], [0.0, 0.0], [0.0, 0.0]])  # slot 0 heads left at 3 px a step
    f = model._edge_features(now, vel, now + vel / 3, size)
    assert f.shape == (3, 14 + 8)
    assert torch.allclose(f[0, 0:4], torch.tensor([2.0, 8.0, 8.0, 8.0]), atol=1e-4)  # left, top, right, bottom now
    assert torch.allclose(f[0, 4], torch.tensor(1.0), atol=1e-4) and torch.allclose(f[0, 8], torch.tensor(-1.0), atol=1e-4)
    assert torch.allclose(f[1, 0:4], torch.tensor([8.0, 8.0, 8.0, 0.5]), atol=1e-4)  # slot 1 half a pixel off the floor
    assert torch.allclose(f[0, 12:14], torch.tensor([-0.75, 0.0]), atol=1e-5)  # velocity in units of 4 px a step


def test_extra_slot_triples_teach_the_contact_heads_walls_and_pairs() -> None:
    """The contact heads alone, on (prev, now, next) slot triples whose contacts are a rim gap below zero."""
    from genworld.models.losses import slot_contact_losses

    model = small_model(object_slots=3, proprio_pointers=1, object_edges=True).train()
    key = model.touches[0].key
    H, W = model.videos[0].shape[:2]
    r, size = 5.0, np.pi ** 0.5 * 5.0 / 8

    def triples(n: int, seed: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        pos = torch.rand(n, 2, 2, generator=g) * (W - 2 * r) + r  # two discs, px, fully inside
        vel = (torch.rand(n, 2, 2, generator=g) - 0.5) * 6
        nxt = pos + vel
        gap = (nxt[:, 0] - nxt[:, 1]).norm(dim=-1) - 2 * r
        wall = (nxt[:, 0] < r).any(-1) | (nxt[:, 0] > W - r).any(-1)
        touch = torch.zeros(n, 3, 4)
        touch[:, 2, 0] = (gap < 0).float()  # taxel 0: disc 0 meets disc 1
        touch[:, 2, 1] = wall.float()  # taxel 1: disc 0 meets a wall
        o = torch.zeros(n, 3, 3, 4)
        for t, xy in enumerate((pos - vel, pos, nxt)):
            o[:, t, :2, 0], o[:, t, :2, 1:3], o[:, t, :2, 3] = 1.0, xy / W * 2 - 1, size
        return {OBJECTS: o, key: touch}

    train, held = triples(512, 0), triples(1024, 1)
    heads = [*model.pair_heads.parameters(), *model.edge_heads.parameters(), model.pair_emb]
    opt = torch.optim.Adam(heads, lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        loss, _ = slot_contact_losses(model, train, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    o = held[OBJECTS]
    vel = o[:, 1, :, 1:3] - o[:, 0, :, 1:3]
    with torch.no_grad():
        logit = model.slot_contacts(o[:, 1, :, :1], o[:, 1, :, 1:3], vel, o[:, 2, :, 1:3], o[:, 1, :, 3:4])[key]
    on, want = logit > 0, held[key][:, 2] > 0.5
    for taxel in (0, 1):
        tp = (on[:, taxel] & want[:, taxel]).sum().item()
        f1 = 2 * tp / (on[:, taxel].sum().item() + want[:, taxel].sum().item())
        assert f1 > 0.8, (taxel, f1, want[:, taxel].float().mean().item())


def test_the_slot_renderer_draws_each_slot_near_it_only_and_its_drawing_moves_with_it() -> None:
    """Each present slot corrects the code positions within reach of its rim and nothing else; a slot moved by one
    code position moves its drawing by one code position (the renderer is translation-equivariant); an absent
    slot draws nothing."""
    from genworld.models.world_model import RENDER_REACH

    model = small_model(object_slots=3, object_render=16)
    torch.nn.init.normal_(model.render["head"][-1].weight, std=0.5)
    key = model.videos[0].key
    tok = model.image_tok[key.replace(".", "__")]
    (gh, gw), f = tok.cfg.grid, tok.cfg.factor
    H, W = model.videos[0].shape[:2]
    r = 4.0  # px
    size = np.pi ** 0.5 * r / 8

    def slots(x_px: float, y_px: float, present: float = 1.0) -> torch.Tensor:
        o = torch.zeros(3, 4)
        o[1] = torch.tensor([present, x_px / W * 2 - 1, y_px / H * 2 - 1, size])
        return o

    with torch.no_grad():
        out = model._render(torch.stack([slots(21.3, 26.6), slots(21.3 + f, 26.6), slots(21.3, 26.6, 0.0),
                                         torch.zeros(3, 4)]), key).reshape(4, gh, gw, -1)
    blank = out[3]
    assert torch.equal(out[2], blank)  # an absent slot draws nothing
    cy, cx = torch.meshgrid(torch.arange(gh) + 0.5, torch.arange(gw) + 0.5, indexing="ij")
    rim = torch.hypot(cx - 21.3 / f, cy - 26.6 / f) - r / f
    changed = (out[0] - blank).abs().amax(-1) > 1e-6
    assert changed.any() and not changed[rim.abs() >= RENDER_REACH].any()  # near the slot's rim only
    assert torch.allclose(out[1][:, 1:], out[0][:, :-1], atol=1e-5)  # one code to the right, the same drawing
    wild = slots(21.3, 26.6)
    wild[1, 3] = 1e6  # a diverged size prediction: the window stays bounded by the grid
    with torch.no_grad():
        assert torch.isfinite(model._render(wild[None], key)).all()
