"""The world model's modules: tokenizer shapes, FSQ, token grouping, causality and the KV cache."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from genworld.models import WorldModel, from_dict, to_dict
from genworld.models.config import WorldModelConfig
from genworld.models.dynamics import DynamicsConfig
from genworld.models.fsq import FSQ
from genworld.models.grouping import CodeGroups
from genworld.models.sampling import decode_step, sample_step
from genworld.train.config import tiny
from genworld.train.synthetic import synthetic_episode, synthetic_spec

VARIANTS = {"linear": {"video_delta": False, "video_regress": 0.0},
            "delta+regress": {"video_delta": True, "video_regress": 1.0}, "pointers": {"proprio_pointers": 2}}


def small_model(discrete: bool = False, window: int = 6, **extra) -> WorldModel:
    """A tiny-preset model with a shallow transformer (fast enough for unit tests)."""
    torch.manual_seed(0)
    cfg = tiny(synthetic_spec(discrete_action=discrete)).model
    cfg = replace(cfg, dynamics=DynamicsConfig(dim=64, depth=2, heads=4, window=window), **extra)
    return WorldModel(cfg).eval()


def batch_of(model: WorldModel, B: int = 2, T: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    eps = [synthetic_episode(model.spec, T, seed + i) for i in range(B)]
    return {k: torch.as_tensor(np.stack([e[k] for e in eps])) for k in eps[0] if not k.startswith("gt.")}


def test_fsq_values_round_trip_through_indices() -> None:
    fsq = FSQ((8, 5, 3))
    z = torch.randn(10, 3) * 3
    values, idx = fsq(z)
    assert idx.min() >= 0 and (idx < torch.tensor([8, 5, 3])).all()
    assert torch.allclose(fsq.values(idx), values)
    assert values.abs().max() <= 1


def test_code_groups_round_trip() -> None:
    g = CodeGroups((8, 8), (2, 2))
    x = torch.randn(3, 64, 5)
    y = g.group(x)
    assert y.shape == (3, 16, 20)
    assert torch.equal(g.ungroup(y), x)
    # a group holds a 2x2 patch of the grid: positions (0,0), (0,1), (1,0), (1,1)
    assert torch.equal(y[0, 0].view(4, 5), x[0, [0, 1, 8, 9]])


@pytest.mark.parametrize("discrete", [False, True])
def test_shapes_of_tokens_predictions_and_decoded_step(discrete: bool) -> None:
    model = small_model(discrete)
    B, T = 2, 5
    tokens = model.tokenize(batch_of(model, B, T))
    gh, gw = model.image_tok["observation__images__top"].cfg.grid
    assert tokens["observation.images.top"].shape == (B, T, gh, gw, len(model.cfg.image.levels))
    assert tokens["observation.audio.mic"].shape == (B, T, 4, 4)
    assert tokens["observation.tactile.ring"].shape == (B, T, 4)
    assert tokens["action"].shape == ((B, T) if discrete else (B, T, 2))
    pred = model(tokens)
    assert pred["observation.images.top"].shape == (B, T, gh * gw, sum(model.cfg.image.levels))
    assert pred["observation.state"].shape == (B, T, 1, 4)
    assert pred["next.reward"].shape == (B, T)
    loss, logs = model.dynamics_loss(tokens, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss.item() > 0 and "observation.images.top/ce" in logs
    nxt = sample_step(model, {k: v[:, -1] for k, v in pred.items()}, temperature=1.0, top_k=3,
                      gen=torch.Generator().manual_seed(0))
    obs = decode_step(model, nxt)
    assert obs["observation.images.top"].shape == (B, 64, 64, 3)
    assert obs["observation.images.top"].dtype == torch.uint8
    assert obs["observation.audio.mic"].shape == (B, 400)
    assert obs["observation.tactile.ring"].shape == (B, 4)
    assert obs["next.done"].dtype == torch.bool


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_future_step_never_changes_a_past_prediction(variant: str) -> None:
    model = small_model(**VARIANTS[variant])
    tokens = model.tokenize(batch_of(model, 2, 6))
    before = model(tokens)
    changed = {k: v.clone() for k, v in tokens.items()}
    t = 3  # change every modality of steps 3.. (action included)
    changed["observation.images.top"][:, t:] = (changed["observation.images.top"][:, t:] + 1) % 5
    changed["observation.state"][:, t:] += 5.0
    changed["action"][:, t:] = -changed["action"][:, t:]
    after = model(changed)
    for k in before:
        assert torch.allclose(before[k][:, :t], after[k][:, :t], atol=1e-5), k
        assert not torch.allclose(before[k][:, t:], after[k][:, t:], atol=1e-5), k


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_kv_cached_steps_equal_the_uncached_forward(variant: str) -> None:
    model = small_model(window=6, **VARIANTS[variant])
    tokens = model.tokenize(batch_of(model, 2, 6))
    full = model(tokens)
    cache, prev = None, None
    for t in range(6):
        one = {k: v[:, t: t + 1] for k, v in tokens.items()}
        pred, cache = model.step(one, t, cache, prev)
        prev = one
        for k in full:
            assert torch.allclose(pred[k], full[k][:, t], atol=1e-4), (k, t)


def test_cache_slides_so_long_rollouts_keep_constant_size() -> None:
    model = small_model(window=4)
    tokens = model.tokenize(batch_of(model, 1, 3))
    one = {k: v[:, :1] for k, v in tokens.items()}
    cache = None
    for t in range(600):
        pred, cache = model.step(one, t, cache)
    assert cache[0][0].shape[2] == 3 * model.tokens_per_step  # window - 1 past steps
    assert all(torch.isfinite(v).all() for v in pred.values())


def test_uncached_forward_refuses_windows_longer_than_trained() -> None:
    model = small_model(window=4)
    with pytest.raises(ValueError, match="attention window"):
        model(model.tokenize(batch_of(model, 1, 5)))


def test_config_round_trips_through_json_and_rejects_unknown_keys() -> None:
    cfg = tiny(synthetic_spec()).model
    assert from_dict(WorldModelConfig, to_dict(cfg)) == cfg
    bad = to_dict(cfg)
    bad["dynamics"]["layers"] = 3
    with pytest.raises(ValueError, match="unknown keys \\['layers'\\]"):
        from_dict(WorldModelConfig, bad)


def test_tokenizers_reconstruct_to_the_right_shape_and_learn() -> None:
    model = small_model()
    frames = torch.as_tensor(batch_of(model, 2, 4)["observation.images.top"].flatten(0, 1))
    tok = model.image_tok["observation__images__top"]
    opt = torch.optim.Adam(tok.parameters(), lr=2e-3)
    first = None
    for _ in range(30):
        loss, logs = tok.loss(frames)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else logs["image_psnr"]
    assert logs["image_psnr"] > first + 3
    assert tok.decode_indices(tok.encode(frames)[1]).shape == (8, 64, 64, 3)


def test_local_image_codes_change_only_where_pixels_change() -> None:
    from genworld.models.image_tokenizer import ImageTokenizer, ImageTokenizerConfig

    torch.manual_seed(0)
    tok = ImageTokenizer(ImageTokenizerConfig(image_shape=(32, 32, 3), channels=(16,), levels=(5, 5, 5)))
    x = torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8)
    y = x.clone()
    y[0, 4:8, 8:12] = 255 - y[0, 4:8, 8:12]  # the pixels of code cell (1, 2) only
    latent = lambda f: tok.encoder(f.float().permute(0, 3, 1, 2) / 127.5 - 1)[0]  # noqa: E731 (C, 8, 8), before FSQ
    moved = (latent(x) != latent(y)).any(0)  # (8, 8) cells whose latent changed
    assert moved[1, 2]
    moved[1, 2] = False
    assert not moved.any()


def test_expected_code_values_are_the_mean_of_the_level_distribution() -> None:
    from genworld.models.sampling import expected_values

    levels = (3, 5)
    sharp = torch.tensor([[0.0, 0.0, 50.0, 50.0, 0.0, 0.0, 0.0, 0.0]])  # channel 0 -> level 2, channel 1 -> level 0
    assert torch.allclose(expected_values(sharp, levels), torch.tensor([[1.0, -1.0]]), atol=1e-6)
    flat = torch.zeros(1, 8)
    assert torch.allclose(expected_values(flat, levels), torch.zeros(1, 2), atol=1e-6)
    half = torch.tensor([[50.0, 0.0, 50.0, 0.0, 0.0, 0.0, 0.0, 0.0]])  # levels 0 and 2 of channel 0 equally
    assert abs(expected_values(half, levels)[0, 0].item()) < 1e-5


@pytest.mark.parametrize("variant", ["expectation", "regress"])
def test_greedy_frames_decode_expected_or_regressed_values_while_fed_back_codes_stay_argmax(variant: str) -> None:
    from genworld.models.sampling import MEAN_SUFFIX, sample_codes

    model = small_model(video_copy=False,
                        **({"decode_expectation": True} if variant == "expectation" else {"video_regress": 1.0}))
    tokens = model.tokenize(batch_of(model, 2, 3))
    pred = {k: v[:, -1] for k, v in model(tokens).items()}
    key = "observation.images.top"
    nxt = sample_step(model, pred, temperature=0.0)
    tok = model.image_tok["observation__images__top"]
    argmax = sample_codes(pred[key], tok.fsq.levels, 0.0, 0, None)  # (B, h*w, C)
    assert torch.equal(nxt[key][:, 0].flatten(1, 2), argmax)
    mean = nxt[key + MEAN_SUFFIX][:, 0]
    assert mean.shape == (*nxt[key][:, 0].shape,) and mean.abs().max() <= 1.0
    assert not torch.allclose(mean, tok.fsq.values(nxt[key][:, 0]))  # an untrained model is unsure
    frames = decode_step(model, nxt)[key]
    expect = (tok.decode(mean).clamp(0, 1) * 255).round().to(torch.uint8)
    assert torch.equal(frames, expect)
    assert MEAN_SUFFIX not in "".join(sample_step(model, pred, temperature=1.0, gen=torch.Generator()).keys())


def test_a_sure_contact_presses_at_least_the_contact_threshold_and_the_force_head_learns_only_contacts() -> None:
    from genworld.models.losses import next_step_losses

    model = small_model()
    key = model.touches[0].key
    model.norm.set_stats({key: {"scale": 2.0, "threshold": 0.5}})
    n = math.prod(model.touches[0].shape)
    logits = torch.tensor([[8.0, -8.0] + [-8.0] * (n - 2)])  # taxel 0 surely in contact, the rest surely not
    tokens = model.tokenize(batch_of(model, 1, 4))
    with torch.no_grad():
        pred = {k: v[:, -1] for k, v in model(tokens).items()}
    pred[key] = torch.cat([torch.zeros(1, n), logits], -1)[:, None]  # the force head says 0 everywhere
    out = decode_step(model, sample_step(model, pred))[key]
    assert out[0, 0] > 0.5 and (out[0, 1:] == 0).all()  # on: at least the threshold; off: nothing
    # The force head's loss reads only the taxels in contact: a wrong force elsewhere costs nothing.
    tokens = model.tokenize(batch_of(model, 2, 4))
    base = model(tokens)
    target = tokens[key].clone()
    target[..., 0] = 0.5  # taxel 0 pressed (scaled 0.5 = 1.0 raw > 0.5), the rest not
    target[..., 1:] = 0.0
    tokens[key] = target
    a = next_step_losses(model, base, tokens)[1][f"{key}/loss"]
    moved = dict(base)
    moved[key] = base[key].clone()
    moved[key][..., 1:n] += 5.0  # the force of the taxels not in contact
    b = next_step_losses(model, moved, tokens)[1][f"{key}/loss"]
    moved[key][..., 0] += 5.0  # the force of the taxel in contact
    c = next_step_losses(model, moved, tokens)[1][f"{key}/loss"]
    assert b == pytest.approx(a, rel=1e-6) and c > a + 1
