"""The flow-matching code sampler: it commits to one possibility where the per-code heads would average."""

from __future__ import annotations

import pytest
import torch

from genworld.models.code_flow import CodeFlow
from genworld.models.grouping import CodeGroups


def test_the_sampler_draws_one_of_two_equally_likely_places_never_both_nor_the_average() -> None:
    torch.manual_seed(0)
    g = CodeGroups((8, 8), (4, 4))
    flow = CodeFlow(1, 8, g, 16)
    opt = torch.optim.Adam(flow.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    N = 64

    def targets(n: int) -> torch.Tensor:  # a thing at (2, 2) or at (5, 5), with even odds
        x = -torch.ones(n, 1, 8, 8)
        left = torch.rand(n, generator=gen) < 0.5
        x[left, 0, 2, 2] = 1
        x[~left, 0, 5, 5] = 1
        return x

    now, mean = -torch.ones(N, 1, 8, 8), torch.zeros(N, 1, 8, 8)
    h = torch.zeros(N, g.n_groups, 8)
    for _ in range(400):
        loss = flow.loss(targets(N), now, mean, h, torch.ones(N, 8, 8), gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = flow.sample(now, mean, h, steps=4, gen=gen)
    a, b = x[:, 0, 2, 2] > 0, x[:, 0, 5, 5] > 0
    assert (a ^ b).float().mean() >= 0.9  # one place or the other
    assert 0.2 <= a.float().mean() <= 0.8  # both places are drawn, across samples
    rest = x.clone()
    rest[:, 0, 2, 2] = rest[:, 0, 5, 5] = -1
    assert (rest < 0).float().mean() >= 0.98  # and nothing elsewhere


def test_the_sampler_needs_a_step() -> None:
    flow = CodeFlow(2, 8, CodeGroups((4, 4), (2, 2)), 8)
    with pytest.raises(ValueError, match="flow_steps"):
        flow.sample(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 8), steps=0)
