"""Fixtures of the evaluation tests: a small bounce dataset and a tiny model trained for a few steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from genworld.cli import main


@pytest.fixture(scope="session")
def bounce_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 bounce episodes of 40 steps (seed 3)."""
    out = tmp_path_factory.mktemp("eval") / "data"
    assert main(["collect", "bounce", "--episodes", "12", "--steps", "40", "--out", str(out), "--seed", "3",
                 "--quiet"]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_run(bounce_data: Path) -> Path:
    """A run of the tiny preset trained for 16 small-batch steps on `bounce_data` (poor, but a real model)."""
    from genworld.train.config import tiny
    from genworld.train.data import load_dataset
    from genworld.train.distributed import DistInfo
    from genworld.train.run import train_run

    store = load_dataset(str(bounce_data))
    cfg = tiny(store.spec)
    t = cfg.train
    t.tok_steps, t.dyn_steps, t.tok_batch_size, t.batch_size, t.warmup, t.val_every = 6, 10, 8, 4, 2, 1000
    t.device = "cpu"
    out = bounce_data.parent / "run"
    train_run(cfg, store, out, resume=False, dist=DistInfo(), progress=False)
    return out
