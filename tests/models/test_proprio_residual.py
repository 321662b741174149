"""Proprio heads that predict the step-to-step change (`proprio_residual`), in units of the change's std."""

from __future__ import annotations

import numpy as np
import torch

from genworld.models.losses import next_step_losses
from genworld.models.normalizer import Normalizer, compute_stats
from genworld.models.world_model import mkey

from .test_world_model import batch_of, small_model

KEY = "observation.state"


def test_stats_hold_the_std_of_the_change_within_episodes() -> None:
    model = small_model()
    a = np.cumsum(np.ones((50, 4)), 0) * [1, 2, 3, 4]  # steps of 1, 2, 3, 4: the change never varies
    b = np.random.default_rng(0).normal(size=(50, 4))
    st = compute_stats(model.spec, {KEY: [a, b]})[KEY]
    d = np.concatenate([np.diff(a, axis=0), np.diff(b, axis=0)])  # never across the episode boundary
    assert np.allclose(st["delta_std"], d.std(0))
    assert np.allclose(st["std"], np.concatenate([a, b]).std(0))


def test_a_zero_head_predicts_no_change_and_the_loss_is_in_units_of_the_change() -> None:
    model = small_model(proprio_residual=True)
    model.norm.set_stats({KEY: {"mean": [0.0] * 4, "std": [10.0] * 4, "delta_std": [1.0, 2.0, 5.0, 10.0]}})
    assert torch.allclose(model.norm.delta_scale(KEY), torch.tensor([0.1, 0.2, 0.5, 1.0]))
    with torch.no_grad():
        model.out[mkey(KEY)].weight.zero_()
        model.out[mkey(KEY)].bias.zero_()
    tokens = model.tokenize(batch_of(model, 2, 5))
    pred = model(tokens)
    assert torch.allclose(pred[KEY][:, :, 0], tokens[KEY])  # the current step, unchanged
    _, logs = next_step_losses(model, pred, tokens)
    change = (tokens[KEY][:, 1:] - tokens[KEY][:, :-1]) / model.norm.delta_scale(KEY)
    assert np.isclose(logs[f"{KEY}/mse"], change.pow(2).mean().item(), rtol=1e-5)


def test_runs_without_it_load_stats_that_hold_the_change() -> None:
    """A model without residual heads has no buffer for the change's std and ignores it in the stats."""
    norm = Normalizer(small_model().spec)
    norm.set_stats({KEY: {"mean": [1.0] * 4, "std": [2.0] * 4, "delta_std": [0.5] * 4}})
    assert not hasattr(norm, f"{mkey(KEY)}_delta_std")
    assert f"{mkey(KEY)}_delta_std" in Normalizer(small_model().spec, deltas=True).state_dict()
