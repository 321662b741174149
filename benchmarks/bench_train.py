"""Training throughput of the `tiny` and `small` presets on bounce-shaped batches: samples per second
of each stage (tokenizers on frames; dynamics on cached token windows), model FLOPs counted by
torch's FlopCounterMode (forward + backward), and model FLOPs utilisation against this machine's
measured fp32 matmul peak. Each preset runs in a fresh child process so its peak RSS is its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np


def matmul_peak_gflops(threads: int, n: int = 2048, reps: int = 5) -> float:
    """Best fp32 GFLOP/s of an n x n matmul on `threads` threads."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def _stage_batches(model, cfg, stage: int):
    import torch

    spec = model.spec
    g = torch.Generator().manual_seed(0)
    if stage == 1:
        B = cfg.train.tok_batch_size
        frames = {m.key: torch.randint(0, 256, (B, *m.shape), dtype=torch.uint8, generator=g) for m in model.videos}
        audio = {m.key: torch.randn((B, *m.shape), generator=g) * 0.1 for m in model.audios}
        return B, (frames, audio), {}
    B, L = cfg.train.batch_size, cfg.model.dynamics.window
    raw = {}
    for m in spec.modalities:
        if m.kind in ("gt",):
            continue
        if m.kind == "video":
            raw[m.key] = torch.randint(0, 256, (B, L, *m.shape), dtype=torch.uint8, generator=g)
        elif m.kind == "done":
            raw[m.key] = torch.zeros(B, L, dtype=torch.bool)
        else:
            raw[m.key] = torch.rand((B, L, *m.shape), generator=g) * 2 - 1
    tokens = model.tokenize(raw)
    return B, (tokens, torch.Generator().manual_seed(1)), {}


def _one_step(loss_fn, opt, args, kw) -> None:  # noqa: ANN001 - torch objects, imported lazily
    loss, _ = loss_fn(*args, **kw)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def measure(preset: str, steps: int, threads: int) -> dict:
    """Seconds per optimiser step and FLOPs per step for both stages of `preset`."""
    import resource

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(threads)
    from genworld.models import WorldModel
    from genworld.train.config import preset as make_preset
    from genworld.worlds import make_world

    torch.manual_seed(0)
    spec = make_world("bounce").spec
    cfg = make_preset(preset, spec)
    model = WorldModel(cfg.model)
    out: dict = {"params": sum(p.numel() for p in model.parameters()),
                 "dynamics_params": sum(p.numel() for p in model.dynamics_parameters())}
    for stage in (1, 2):
        params = model.tokenizer_parameters() if stage == 1 else model.dynamics_parameters()
        opt = torch.optim.AdamW(params, lr=1e-4)
        B, args, kw = _stage_batches(model, cfg, stage)
        loss_fn = model.tokenizer_loss if stage == 1 else model.dynamics_loss

        with FlopCounterMode(display=False) as fc:
            _one_step(loss_fn, opt, args, kw)
        flops = fc.get_total_flops()
        for _ in range(2):
            _one_step(loss_fn, opt, args, kw)
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            _one_step(loss_fn, opt, args, kw)
            times.append(time.perf_counter() - t0)
        t = float(np.median(times))
        out[f"stage{stage}"] = {"batch": B, "step_s": t, "samples_per_s": B / t, "gflop_per_step": flops / 1e9}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _child(preset: str, steps: int, threads: int) -> dict:
    p = subprocess.run([sys.executable, __file__, preset, str(steps), str(threads)], capture_output=True,
                       text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"bench_train child ({preset}) failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run(quick: bool) -> dict:
    threads = 2
    peak = matmul_peak_gflops(threads)
    res: dict = {"threads": threads, "fp32_matmul_peak_gflops": round(peak, 1)}
    for preset in ("tiny", "small"):
        m = _child(preset, 3 if quick else 10, threads)
        res[f"{preset}_params"] = m["params"]
        for stage, name in ((1, "tokenizer"), (2, "dynamics")):
            s = m[f"stage{stage}"]
            gflops = s["gflop_per_step"] / s["step_s"]
            res[f"{preset}_{name}_batch"] = s["batch"]
            res[f"{preset}_{name}_samples_per_s_median"] = round(s["samples_per_s"], 1)
            res[f"{preset}_{name}_gflop_per_step"] = round(s["gflop_per_step"], 2)
            res[f"{preset}_{name}_mfu_percent"] = round(100 * gflops / peak, 1)
        res[f"{preset}_train_peak_rss_mb"] = round(m["peak_rss_mb"], 1)
    return res


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
