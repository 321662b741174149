"""`WorldSession.step` latency of the tiny model on bounce at batch 1 (every modality decoded), the
split between the transformer step and the decoders, batch 16 throughput, and the session's peak
memory. Untrained weights cost the same time as trained ones. Each measure runs in a fresh child
process so its peak RSS is its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np


def _context(world, steps: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    obs, rows, policy = world.reset(0), [], world.policy("random", rng)
    for _ in range(steps):
        a = policy(obs)
        rows.append({**obs, "action": a})
        obs, _, _ = world.step(a)
    return {k: np.stack([r[k] for r in rows])[None] for k in rows[0] if not k.startswith("gt.")}


def measure(batch: int, steps: int, threads: int, flow: int = 0) -> dict:
    """Step a tiny session `steps` times at `batch` (with a code sampler of width `flow`, 0: the preset's); ms."""
    import resource

    import torch

    torch.set_num_threads(threads)
    from genworld.models import WorldModel
    from genworld.models.sampling import decode_step
    from genworld.rollout.session import WorldSession
    from genworld.train.config import tiny
    from genworld.worlds import make_world

    torch.manual_seed(0)
    world = make_world("bounce")
    cfg = tiny(world.spec).model
    if flow:
        from dataclasses import replace

        cfg = replace(cfg, flow_width=flow)
    model = WorldModel(cfg)
    ctx = {k: np.repeat(v, batch, 0) for k, v in _context(world, 4).items()}
    session = WorldSession(model)
    session.reset(ctx)
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (steps + 20, batch, 2)).astype(np.float32)
    times = []
    for i in range(steps + 20):  # 20 warm-up steps, and the KV cache fills to its window
        t0 = time.perf_counter()
        session.step(acts[i])
        times.append(time.perf_counter() - t0)
    t = np.array(times[20:]) * 1000
    res = {"median_ms": float(np.median(t)), "p99_ms": float(np.percentile(t, 99)),
           "steps_per_s": float(batch * 1000 / np.median(t))}
    # where the time goes: decoding alone (tokens -> pixels, waveform, taxels, state)
    pend = {**session._pending}
    with torch.inference_mode():
        dt = []
        for _ in range(50):
            t0 = time.perf_counter()
            decode_step(session.model, pend)
            dt.append(time.perf_counter() - t0)
    res["decode_median_ms"] = float(np.median(dt) * 1000)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["tokens_per_step"] = session.model.tokens_per_step
    res["flow_steps"] = session.model.cfg.flow_steps if session.model.cfg.flow_width else 0
    res["params"] = sum(p.numel() for p in session.model.parameters())
    return res


def _child(batch: int, steps: int, threads: int, flow: int = 0) -> dict:
    p = subprocess.run([sys.executable, __file__, str(batch), str(steps), str(threads), str(flow)], capture_output=True,
                       text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"bench_model child failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run(quick: bool) -> dict:
    steps = 100 if quick else 500
    one = _child(1, steps, 2)
    sixteen = _child(16, steps // 5, 2)
    sampler = _child(1, steps, 2, flow=32)
    return {
        "model": "tiny", "world": "bounce", "threads": 2, "tokens_per_step": one["tokens_per_step"],
        "params": one["params"],
        "step_b1_median_ms": round(one["median_ms"], 2), "step_b1_p99_ms": round(one["p99_ms"], 2),
        "step_b1_steps_per_s_median": round(one["steps_per_s"], 1),
        "decode_b1_median_ms": round(one["decode_median_ms"], 2),
        "step_b16_median_ms": round(sixteen["median_ms"], 2),
        "step_b16_futures_per_s_median": round(sixteen["steps_per_s"], 1),
        "session_b1_peak_rss_mb": round(one["peak_rss_mb"], 1),
        "flow_steps": one["flow_steps"],
        "with_code_sampler": {"flow_width": 32, "flow_steps": sampler["flow_steps"],
                              "step_b1_median_ms": round(sampler["median_ms"], 2),
                              "step_b1_p99_ms": round(sampler["p99_ms"], 2),
                              "step_b1_steps_per_s_median": round(sampler["steps_per_s"], 1)},
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
