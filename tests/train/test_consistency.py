"""The consistency bar of the tiny preset on four worlds (slow: about 15 minutes per world on 2 cores, run it alone).

Per world, `tiny` trained at most 15 minutes on 200 episodes x 64 steps, scored by `genworld eval` on 24 held-out
episodes of unseen seeds (context 4, horizon 32, the long free run of 960 steps beside the world): the model beats
copy-last at every h up to at least 8, keeps at least 95% of the visible objects present over h = 1..32 with
vanish, spawn, size- and colour-change rates each at most 0.05, and keeps at least 90% of them present over the
free run (85% in its last quarter). The reports are written under $GENWORLD_CONSISTENCY_DIR when that is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MINUTES = 15.0


def _genworld(*args: str) -> None:
    env = {**os.environ, "MUJOCO_GL": "egl"}
    p = subprocess.run([sys.executable, "-m", "genworld.cli", *args], env=env, capture_output=True, text=True,
                       timeout=3600)
    assert p.returncode == 0, f"genworld {' '.join(args)} failed:\n{p.stderr[-3000:]}"


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("world", ["bounce", "tabletop", "arcade:Pong", "arcade:Breakout"])
def test_tiny_keeps_the_world_itself(world: str, tmp_path: Path) -> None:
    root = Path(os.environ.get("GENWORLD_CONSISTENCY_DIR", tmp_path)) / world.replace(":", "_")
    data, test, run, rep = root / "data", root / "test", root / "run", root / "report"
    _genworld("collect", world, "--episodes", "200", "--steps", "64", "--out", str(data), "--seed", "0", "--quiet")
    _genworld("collect", world, "--episodes", "24", "--steps", "64", "--out", str(test), "--seed", "5000", "--quiet")
    if not (run / "config.json").exists():
        _genworld("train", "--data", str(data), "--out", str(run), "--preset", "tiny", "--max-minutes", str(MINUTES))
    _genworld("eval", "--run", str(run), "--data", str(test), "--out", str(rep), "--episodes", "24", "--quiet")
    r = json.loads((rep / "report.json").read_text())
    psnr, ident, phys, free = r["per_horizon"]["psnr"], r["identity"], r["physics"], r["free_run"]
    print(f"{world}: PSNR h=1 {psnr['model'][0]:.2f} (copy-last {psnr['copy_last'][0]:.2f}), valid horizon "
          f"{r['valid_horizon']}, persistence {ident.get('persistence')}, free run {free.get('persistence')}")
    assert r["valid_horizon"] >= 8
    assert ident["persistence"] >= 0.95
    for rate in ("vanish_rate", "spawn_rate", "size_change_rate", "colour_change_rate"):
        if phys.get(rate) is not None:  # Atari's reader measures no sizes
            assert phys[rate] <= 0.05, (rate, phys[rate])
    if phys.get("overlap_rate") is not None:
        assert phys["overlap_rate"] <= 0.02
    assert free["persistence"] >= 0.90
    assert free["quarters"][-1]["persistence"] >= 0.85
