"""Memory (one real step seen beside the window), self-forcing (training on the model's own context) and the canvas."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_world_model import batch_of, small_model  # noqa: E402

from genworld.models.sampling import compose_on_canvas  # noqa: E402

VKEY = "observation.images.top"


def test_cached_steps_with_memory_equal_the_uncached_forward_with_memory() -> None:
    model = small_model(window=6)
    tokens = model.tokenize(batch_of(model, 2, 7))
    memory, window = {k: v[:, :1] for k, v in tokens.items()}, {k: v[:, 1:] for k, v in tokens.items()}
    full = model(window, memory=memory)
    mem = model.memorize(memory)
    cache, prev = None, None
    for t in range(6):
        one = {k: v[:, t: t + 1] for k, v in window.items()}
        pred, cache = model.step(one, t + 1, cache, prev, mem, t_memory=0)
        prev = one
        for k in full:
            assert torch.allclose(pred[k], full[k][:, t], atol=1e-4), (k, t)


def test_the_memory_step_is_read_long_after_the_window_has_forgotten_it() -> None:
    model = small_model(window=4)
    torch.nn.init.normal_(model.memory_emb, std=1.0)  # (zero at first; random here so that the test sees it work)
    tokens = model.tokenize(batch_of(model, 2, 2))
    step = {k: v[:, 1:2] for k, v in tokens.items()}
    other = {k: v.clone() for k, v in step.items()}
    other[VKEY] = (other[VKEY] + 2) % 5

    def rollout(first: dict[str, torch.Tensor], memory: bool) -> dict[str, torch.Tensor]:
        mem = model.memorize(first) if memory else None
        pred, cache = model.step(first, 0, None, None, mem)
        for t in range(1, 40):  # far beyond the window of 4: the first step has left the cache
            pred, cache = model.step(step, t, cache, step, mem)
        return pred

    with torch.no_grad():
        same = rollout(step, False), rollout(other, False)
        remembered = rollout(step, True), rollout(other, True)
    assert all(torch.allclose(same[0][k], same[1][k], atol=1e-6) for k in same[0])
    assert not torch.allclose(remembered[0][VKEY], remembered[1][VKEY], atol=1e-4)


def test_self_forcing_feeds_the_models_own_one_step_predictions_in_a_share_of_the_windows() -> None:
    model = small_model(self_forcing=0.5)
    tokens = model.tokenize(batch_of(model, 8, 5))
    gen = torch.Generator().manual_seed(0)
    own = model.own_context(tokens, gen)
    pick = torch.rand(8, generator=torch.Generator().manual_seed(0)) < 0.5
    assert 0 < int(pick.sum()) < 8
    assert torch.equal(own[VKEY][:, 0], tokens[VKEY][:, 0])  # the first step is always the real one
    assert torch.equal(own["action"], tokens["action"])  # actions are the world's
    assert torch.equal(own[VKEY][~pick], tokens[VKEY][~pick])
    # the picked windows read, at step t >= 1, the most likely codes predicted from the real steps before t
    pred = model(tokens)
    levels = model.cfg.image.levels
    lg = pred[VKEY][pick][:, :-1]  # (b, T-1, n, sum(levels))
    argmax = torch.stack([lg[..., sum(levels[:c]): sum(levels[: c + 1])].argmax(-1) for c in range(len(levels))], -1)
    keep = torch.sigmoid(pred[VKEY + "#change"][pick][:, :-1]) <= 0.5  # codes the change gate keeps as they were
    argmax = torch.where(keep[..., None], tokens[VKEY][pick][:, :-1].flatten(2, 3), argmax)
    assert 0 < keep.float().mean() < 1
    assert torch.equal(own[VKEY][pick][:, 1:].flatten(2, 3), argmax)
    assert not torch.equal(own[VKEY][pick], tokens[VKEY][pick])
    loss, _ = model.dynamics_loss(tokens, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)


def test_the_canvas_keeps_the_pixels_of_unchanged_codes_and_redraws_the_changed_ones() -> None:
    model = small_model()
    f = model.image_tok["observation__images__top"].cfg.factor
    B, (h, w) = 2, model.image_tok["observation__images__top"].cfg.grid
    before = torch.zeros(B, 1, h, w, 4, dtype=torch.long)
    after = before.clone()
    after[0, 0, 1, 2, 3] = 1  # one code of the first future changes
    canvas = torch.full((B, h * f, w * f, 3), 7, dtype=torch.uint8)
    frame = torch.full_like(canvas, 200)
    out = compose_on_canvas(model, VKEY, frame, canvas, before, after)
    assert (out[1] == 7).all()  # nothing changed: the previous frame, exactly
    changed = torch.zeros(h * f, w * f, dtype=torch.bool)
    changed[f: 2 * f, 2 * f: 3 * f] = True
    assert (out[0][changed] == 200).all() and (out[0][~changed] == 7).all()


def test_a_session_with_the_canvas_keeps_still_patches_exactly_and_one_without_redraws_them() -> None:
    from dataclasses import replace

    from genworld.rollout.session import WorldSession

    rng = np.random.default_rng(0)
    for canvas in (True, False):
        model = small_model()
        model.cfg = replace(model.cfg, canvas=canvas)
        sess = WorldSession(model)
        ctx = {k: v.numpy() for k, v in batch_of(model, 1, 3).items()}
        last = sess.reset(ctx)[VKEY]
        codes = sess._pending[VKEY].clone()
        # The image head predicts the frame's most common code everywhere: its patches keep their code, the rest change.
        common = torch.mode(codes.reshape(-1, codes.shape[-1]), dim=0).values
        levels = model.cfg.image.levels
        head = model.out["observation__images__top"]
        bias = torch.full((head.out_features // sum(levels), sum(levels)), -10.0)
        for c in range(len(levels)):
            bias[:, sum(levels[:c]) + int(common[c])] = 10.0
        with torch.no_grad():
            head.weight.zero_()
            head.bias.copy_(bias.flatten())
        frame = sess.step(rng.uniform(-1, 1, (1, 2)).astype(np.float32))[VKEY]
        same = (sess._pending[VKEY] == codes).all(-1)[0, 0]  # (h, w) codes that did not change
        f = model.image_tok["observation__images__top"].cfg.factor
        still = same.repeat_interleave(f, 0).repeat_interleave(f, 1).numpy()
        assert still.any() and not still.all()
        kept = (frame[0][still] == last[0][still]).all()
        assert bool(kept) == canvas


def test_the_change_gate_keeps_each_code_the_model_does_not_expect_to_change_and_redraws_the_rest() -> None:
    from genworld.models.sampling import sample_codes, sample_step

    model = small_model()
    tokens = model.tokenize(batch_of(model, 2, 3))
    pred = {k: v[:, -1] for k, v in model(tokens).items()}
    cur = tokens[VKEY][:, -1].flatten(1, 2)  # (B, n, C)
    argmax = sample_codes(pred[VKEY], model.cfg.image.levels, 0.0, 0, None)
    assert not torch.equal(argmax, cur)  # an untrained model would redraw codes
    odds = torch.randn(pred[VKEY + "#change"].shape, generator=torch.Generator().manual_seed(0)) * 3
    nxt = sample_step(model, {**pred, VKEY + "#change": odds})[VKEY][:, 0].flatten(1, 2)
    change = torch.sigmoid(odds) > 0.5
    assert 0 < change.float().mean() < 1
    assert torch.equal(nxt[~change], cur[~change]) and torch.equal(nxt[change], argmax[change])


def test_the_copy_bias_makes_keeping_a_code_one_parameter_away() -> None:
    model = small_model()
    tokens = model.tokenize(batch_of(model, 2, 3))
    with torch.no_grad():
        model.copy_gain["observation__images__top"].fill_(100.0)
    pred = model(tokens)
    levels = model.cfg.image.levels
    lg = pred[VKEY]
    argmax = torch.stack([lg[..., sum(levels[:c]): sum(levels[: c + 1])].argmax(-1) for c in range(len(levels))], -1)
    assert torch.equal(argmax, tokens[VKEY].flatten(2, 3))


def test_a_model_with_the_code_sampler_learns_it_and_feeds_back_the_drawn_codes_the_gate_allows() -> None:
    from genworld.models.sampling import MEAN_SUFFIX, sample_step

    model = small_model(flow_width=8)
    tokens = model.tokenize(batch_of(model, 4, 5))
    loss, logs = model.dynamics_loss(tokens, torch.Generator().manual_seed(0))
    loss.backward()
    assert logs[VKEY + "/flow_mse"] > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.flow.parameters())
    with torch.no_grad():
        pred = {k: v[:, -1] for k, v in model(tokens).items()}
        nxt = sample_step(model, pred, gen=torch.Generator().manual_seed(0))
    tok = model.image_tok["observation__images__top"]
    codes = nxt[VKEY][:, 0].flatten(1, 2)
    assert torch.equal(nxt[VKEY + MEAN_SUFFIX][:, 0].flatten(1, 2), tok.fsq.values(codes))  # frames decode the draw
    keep = torch.sigmoid(pred[VKEY + "#change"]) <= 0.5
    assert 0 < keep.float().mean() < 1
    assert torch.equal(codes[keep], pred[VKEY + "#cur"][keep])
    with pytest.raises(ValueError, match="flow_steps"):
        small_model(flow_width=8, flow_steps=0)
