"""Iterative decoding of image codes (`video_passes` > 1, MaskGIT-like): what training reveals, that the losses
skip revealed codes, that a revealed code reaches only its own step and later ones, that cached passes equal the
uncached forward, and that `refine_step` fixes codes pass by pass without touching the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genworld.models.config import CorruptionConfig
from genworld.models.losses import next_step_losses
from genworld.models.sampling import refine_step, sample_codes
from genworld.rollout.session import WorldSession

from .test_world_model import batch_of, small_model

KEY = "observation.images.top"


def passes_model(passes: int = 3, **extra):
    extra.setdefault("corruption", CorruptionConfig(prob=0.0))
    return small_model(video_passes=passes, video_delta=True, video_regress=1.0, proprio_pointers=1, **extra)


def test_training_reveals_part_of_the_next_step_unchanged_codes_first_and_nothing_at_the_last_step() -> None:
    model = passes_model(video_reveal_prob=1.0)
    tokens = model.tokenize(batch_of(model, 4, 6))
    nxt, fixed = model.training_reveal(tokens, torch.Generator().manual_seed(0))[KEY]
    B, T = 4, 6
    codes = tokens[KEY].reshape(B, T, -1, tokens[KEY].shape[-1])
    assert nxt.shape == codes.shape and fixed.shape == codes.shape[:3]
    assert torch.equal(nxt[:, :-1], codes[:, 1:])  # what is revealed is the next step's codes
    assert not fixed[:, -1].any()  # the last step has no next step
    share = fixed[:, :-1].float().mean().item()
    assert 0.2 < share < 0.9
    changed = (codes[:, 1:] != codes[:, :-1]).any(-1)
    assert fixed[:, :-1][~changed].float().mean() > fixed[:, :-1][changed].float().mean()
    # drawn for the global batch and sliced: a data-parallel rank reveals what one process would
    part = model.training_reveal({k: v[2:] for k, v in tokens.items()}, torch.Generator().manual_seed(0),
                                 rows=slice(2, 4), global_batch=4)[KEY]
    assert torch.equal(part[1], fixed[2:])
    none = passes_model(video_reveal_prob=0.0).training_reveal(tokens, torch.Generator().manual_seed(0))[KEY][1]
    assert not none.any()


def test_losses_skip_revealed_codes() -> None:
    model = passes_model()
    tokens = model.tokenize(batch_of(model, 2, 4))
    pred = model(tokens)
    fixed = torch.ones(pred[KEY].shape[:3], dtype=torch.bool)
    fixed[0, 1, 5] = False  # one code left to predict
    pred[KEY + "#revealed"] = fixed
    base, logs = next_step_losses(model, pred, tokens)
    moved = dict(pred)
    moved[KEY] = pred[KEY] + 10 * torch.randn_like(pred[KEY]) * fixed[..., None]  # only revealed codes change
    assert torch.allclose(next_step_losses(model, moved, tokens)[0], base)
    moved[KEY] = pred[KEY] + 10 * torch.randn_like(pred[KEY]) * (~fixed)[..., None]
    assert not torch.allclose(next_step_losses(model, moved, tokens)[0], base)


def test_a_revealed_code_reaches_its_own_step_and_later_ones_only_and_the_cache_agrees() -> None:
    model = passes_model()
    tokens = model.tokenize(batch_of(model, 2, 6))
    B, T = 2, 6
    codes = tokens[KEY].reshape(B, T, -1, tokens[KEY].shape[-1])
    fixed = torch.zeros(codes.shape[:3], dtype=torch.bool)
    fixed[:, 3, :40] = True  # at step 3, part of step 4's codes
    reveal = {KEY: (torch.cat([codes[:, 1:], codes[:, -1:]], 1), fixed)}
    with torch.no_grad():
        plain, shown = model(tokens), model(tokens, reveal=reveal)
        for k in plain:
            assert torch.allclose(plain[k][:, :3], shown[k][:, :3], atol=1e-5), k
        assert not torch.allclose(plain[KEY][:, 3], shown[KEY][:, 3], atol=1e-4)
        cache, prev = None, None
        for t in range(T):
            one = {k: v[:, t: t + 1] for k, v in tokens.items()}
            step_reveal = {KEY: (reveal[KEY][0][:, t: t + 1], fixed[:, t: t + 1])}
            pred, cache = model.step(one, t, cache, prev, reveal=step_reveal)
            prev = one
            for k in plain:
                assert torch.allclose(pred[k], shown[k][:, t], atol=1e-4), (k, t)


def _prefix(model, tokens, t):
    cache, prev = None, None
    for s in range(t):
        one = {k: v[:, s: s + 1] for k, v in tokens.items()}
        _, cache = model.step(one, s, cache, prev)
        prev = one
    return cache, prev


def test_refine_with_every_code_sure_keeps_the_first_pass() -> None:
    model = passes_model(video_sure=1e-12)
    tokens = model.tokenize(batch_of(model, 2, 4))
    with torch.no_grad():
        cache, prev = _prefix(model, tokens, 3)
        one = {k: v[:, 3:4] for k, v in tokens.items()}
        pred, _ = model.step(one, 3, cache, prev)
        out = refine_step(model, pred, one, 3, cache, prev)
    levels = model.image_tok["observation__images__top"].fsq.levels
    assert torch.equal(sample_codes(out[KEY], levels, 0.0, 0, None), sample_codes(pred[KEY], levels, 0.0, 0, None))
    assert torch.equal(out[KEY + "#values"], pred[KEY + "#values"])
    assert torch.equal(out["observation.state"], pred["observation.state"])


@pytest.mark.parametrize("passes", [2, 3])
def test_refine_fixes_unsure_codes_over_the_passes_and_leaves_the_cache_alone(passes: int) -> None:
    model = passes_model(passes, video_sure=1.0)  # no code is sure: every one goes through the rounds
    tokens = model.tokenize(batch_of(model, 2, 4))
    with torch.no_grad():
        cache, prev = _prefix(model, tokens, 3)
        before = [(k.clone(), v.clone()) for k, v in cache]
        one = {k: v[:, 3:4] for k, v in tokens.items()}
        pred, _ = model.step(one, 3, cache, prev)
        out = refine_step(model, pred, one, 3, cache, prev)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(before, cache))
    n = pred[KEY].shape[1]
    fixed = (out[KEY].amax(-1) == 0) & (out[KEY].amin(-1) <= -1e3)  # all mass on one level per channel
    share = fixed.float().mean(1)  # fixed before the last pass
    assert torch.allclose(share, torch.full_like(share, (n - n // passes) / n), atol=1 / n)
    levels = model.image_tok["observation__images__top"].fsq.levels
    first = sample_codes(pred[KEY], levels, 0.0, 0, None)
    final = sample_codes(out[KEY], levels, 0.0, 0, None)
    assert (final != first).any()  # later passes saw the fixed codes and changed their minds somewhere
    assert torch.isfinite(out[KEY + "#values"]).all() and out[KEY + "#values"].shape == pred[KEY + "#values"].shape


def test_a_session_with_several_passes_steps_deterministically_and_caches_the_first_pass() -> None:
    model = passes_model(3, video_sure=0.99)
    eps = batch_of(model, 2, 6)
    ctx = {k: v[:, :3].numpy() for k, v in eps.items()}
    act = eps["action"][:, 3].numpy()
    outs, caches = [], []
    for passes in (3, 3, 1):
        model.cfg.video_passes = passes
        s = WorldSession(model)
        s.reset(ctx)
        outs.append(s.step(act))
        caches.append(s._cache)
    for k in outs[0]:
        assert np.array_equal(outs[0][k], outs[1][k]), k
    assert not np.array_equal(outs[0][KEY], outs[2][KEY])
    for (k3, v3), (k1, v1) in zip(caches[0], caches[2]):
        assert torch.equal(k3, k1) and torch.equal(v3, v1)


def test_passes_need_the_linear_token_path_and_a_probability() -> None:
    with pytest.raises(ValueError, match="video_passes=3 needs the linear token path"):
        small_model(video_passes=3, video_conv=16)
    with pytest.raises(ValueError, match="video_sure=0"):
        small_model(video_passes=3, video_sure=0.0)
