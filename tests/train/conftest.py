"""Fixtures of the training tests: a synthetic episode store and a very small run config."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from genworld.models.audio_tokenizer import AudioTokenizerConfig
from genworld.models.dynamics import DynamicsConfig
from genworld.models.image_tokenizer import ImageTokenizerConfig
from genworld.train.config import RunConfig, tiny
from genworld.train.data import EpisodeStore, from_episodes
from genworld.train.synthetic import synthetic_episode, synthetic_spec


@pytest.fixture
def store() -> EpisodeStore:
    """Eight synthetic episodes of 16 steps (every modality kind, reward and done included)."""
    spec = synthetic_spec(size=32, samples=200)
    return from_episodes(spec, [synthetic_episode(spec, 16, seed) for seed in range(8)])


@pytest.fixture
def small_cfg() -> Callable[..., RunConfig]:
    """A factory of tiny-preset configs shrunk to train in a second or two."""

    def make(store: EpisodeStore, tok_steps: int = 4, dyn_steps: int = 6) -> RunConfig:
        cfg = tiny(store.spec)
        cfg.model.image = ImageTokenizerConfig(channels=(16,), levels=(5, 5, 5))
        cfg.model.audio = AudioTokenizerConfig(n_tokens=2, hidden=32, levels=(5, 5))
        cfg.model.dynamics = DynamicsConfig(dim=32, depth=2, heads=2, window=4)
        t = cfg.train
        t.tok_steps, t.dyn_steps, t.batch_size, t.tok_batch_size = tok_steps, dyn_steps, 4, 8
        t.val_episodes, t.val_every, t.log_every, t.ckpt_every, t.warmup = 2, 3, 1, 2, 2
        return cfg

    return make
