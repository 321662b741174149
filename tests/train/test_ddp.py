"""Data parallelism: two gloo processes under torchrun train as one process does on the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from genworld.train.checkpoint import latest_checkpoint, load_checkpoint

SCRIPT = """
import sys
from genworld.models.audio_tokenizer import AudioTokenizerConfig
from genworld.models.dynamics import DynamicsConfig
from genworld.models.image_tokenizer import ImageTokenizerConfig
from genworld.train.config import tiny
from genworld.train.data import from_episodes
from genworld.train.distributed import init_distributed
from genworld.train.run import train_run
from genworld.train.synthetic import synthetic_episode, synthetic_spec

spec = synthetic_spec(size=32, samples=200)
store = from_episodes(spec, [synthetic_episode(spec, 16, seed) for seed in range(8)])
cfg = tiny(spec)
cfg.model.image = ImageTokenizerConfig(channels=(16,), levels=(5, 5, 5))
cfg.model.audio = AudioTokenizerConfig(n_tokens=2, hidden=32, levels=(5, 5))
cfg.model.dynamics = DynamicsConfig(dim=32, depth=2, heads=2, window=4)
t = cfg.train
t.tok_steps, t.dyn_steps, t.batch_size, t.tok_batch_size, t.log_every, t.val_episodes = 3, 3, 4, 8, 1, 2
if len(sys.argv) > 2:  # a wall-clock run in which rank 1 sets up each stage 1 s late, off its own clock,
    import os, time  # while rank 0 waits that second inside its first step: their clocks would differ by 1 s
    from genworld.train.trainer import Trainer
    t.tok_steps = t.dyn_steps = 10**9
    t.max_minutes = float(sys.argv[2])
    if os.environ["RANK"] == "1":
        make_optim = Trainer._make_optim
        Trainer._make_optim = lambda self, *a: (time.sleep(1.0), make_optim(self, *a))[1]
res = train_run(cfg, store, sys.argv[1], False, init_distributed("cpu"), progress=False)
print("steps", res["global_step"], flush=True)
"""


def losses(run: Path) -> list[float]:
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    out = []
    for r in recs:
        if "lr" in r:  # training records: stage 1 reconstruction, stage 2 next-step loss
            out.append(r.get("loss", r.get("observation.images.top/image_mse")))
    return out


def test_two_gloo_ranks_match_one_process(tmp_path) -> None:
    script = tmp_path / "train_small.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, str(script), str(one)], check=True, env=env, timeout=120)
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                        str(script), str(two)], env=env, timeout=180, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    la, lb = losses(one), losses(two)
    assert len(la) == len(lb) == 6
    assert all(abs(a - b) <= 1e-4 * max(1.0, abs(a)) for a, b in zip(la, lb)), (la, lb)
    wa, _, _ = load_checkpoint(latest_checkpoint(one))
    wb, _, _ = load_checkpoint(latest_checkpoint(two))
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-4, rtol=1e-3), k


def test_ranks_share_one_clock_under_max_minutes(tmp_path) -> None:
    """Under --max-minutes both ranks must end each stage at the same step: a rank that stops while the
    other still steps leaves DDP waiting (here: until the timeout). The trainer shares the slowest rank's
    clock; DDP's per-step all-reduce alone already keeps the clocks close, so this guards against a hang
    rather than isolating that sharing."""
    script = tmp_path / "train_small.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                        str(script), str(tmp_path / "run"), "0.1"], env=env, timeout=180, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    steps = [line.split()[-1] for line in p.stdout.splitlines() if "steps" in line]
    assert len(steps) == 2 and steps[0] == steps[1] and int(steps[0]) > 2, p.stdout[-2000:]
