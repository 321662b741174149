"""Play server speed, end to end: server step + encoding + delivery over a loopback WebSocket.

`genworld play` runs in its own process (as a user runs it); clients here speak the real protocol with
the `websockets` library. Figures:
  * steps_per_s_1client_median: one client in lockstep (send `step`, wait for the step) - the whole
    round trip per step; and stream_fps_1client: frames delivered per second with the server
    free-running at up to 240 fps.
  * step_latency_ms_p50/p99 with 1 and 4 concurrent sessions (client-side round trip per step).
Backend: the tiny model (a run from GENWORLD_BENCH_RUN, else the tiny preset trained here for a few
steps on bounce episodes: speed does not depend on training).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_run(out: Path) -> Path:
    """The tiny preset trained for a few steps on bounce episodes (its speed does not depend on training)."""
    from genworld.train.config import tiny
    from genworld.train.data import from_episodes
    from genworld.train.distributed import DistInfo
    from genworld.train.run import train_run
    from genworld.worlds.base import make_world

    world = make_world("bounce")
    rng = np.random.default_rng(0)
    episodes = []
    for e in range(5):
        policy, obs, rows = world.policy("random", rng), world.reset(e), []
        for _ in range(12):
            a = policy(obs)
            nxt, r, d = world.step(a)
            rows.append({**obs, "action": a, "next.reward": np.float32(r), "next.done": np.bool_(d)})
            obs = nxt
        episodes.append({k: np.stack([row[k] for row in rows]) for k in rows[0]})
    cfg = tiny(world.spec)
    t = cfg.train
    t.tok_steps, t.dyn_steps, t.val_episodes, t.batch_size, t.tok_batch_size, t.val_every = 2, 2, 1, 2, 4, 10**6
    train_run(cfg, from_episodes(world.spec, episodes), out, False, DistInfo(), progress=False)
    return out


def _backend(work: Path) -> tuple[list[str], str]:
    """The `genworld play` source arguments, and a label for the results."""
    run = os.environ.get("GENWORLD_BENCH_RUN")
    if run:
        return ["--run", run], f"run {run}"
    try:
        return ["--run", str(_tiny_run(work / "run"))], "tiny model (bounce, untrained: speed only)"
    except ImportError as e:
        return ["--world", "bounce"], f"bounce simulator (no model: {e})"


class Server:
    """`genworld play` in a subprocess on a free loopback port."""

    def __init__(self, source_args: list[str], max_sessions: int = 8) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "genworld.cli", "play", *source_args, "--port", str(self.port),
             "--max-sessions", str(max_sessions), "--max-fps", "240",
             *(["--threads", os.environ["GENWORLD_BENCH_THREADS"]] if os.environ.get("GENWORLD_BENCH_THREADS") else []),
             "--record-dir", tempfile.mkdtemp(prefix="gw-bench-rec-")],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "MUJOCO_GL": "egl"})
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"genworld play exited: {self.proc.stdout.read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("genworld play did not start listening within 300 s")

    def url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/ws{query}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def _lockstep(url: str, n: int, out: list[float]) -> None:
    """One client: pause, then n round trips of `step`; appends each round trip's seconds to `out`."""
    from websockets.sync.client import connect

    with connect(url, max_size=1 << 22) as ws:
        hello = json.loads(ws.recv())
        assert hello["type"] == "hello", hello
        ws.send(json.dumps({"type": "pause"}))
        while True:  # drain steps sent before the pause landed
            m = ws.recv()
            if isinstance(m, str) and json.loads(m)["type"] == "ack":
                break
        keys = [["ArrowRight"], ["ArrowUp"], ["ArrowLeft"], ["ArrowDown"], []]
        step = [json.dumps({"type": "step", "keys": keys[i % len(keys)]}) for i in range(n + 3)]
        for i in range(n + 3):
            t0 = time.perf_counter()
            ws.send(step[i])
            while not isinstance(ws.recv(), bytes):
                pass
            if i >= 3:  # the first steps warm the model up
                out.append(time.perf_counter() - t0)


def _stream_fps(url: str, seconds: float) -> float:
    """Frames per second delivered to one client with the server free-running."""
    from websockets.sync.client import connect

    with connect(url, max_size=1 << 22) as ws:
        json.loads(ws.recv())
        t_end, n, t0 = None, 0, None
        while True:
            if isinstance(ws.recv(), bytes):
                now = time.perf_counter()
                if t0 is None:
                    t0, t_end = now, now + seconds
                    continue
                n += 1
                if now >= t_end:
                    return n / (now - t0)


def _pcts(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs) * 1e3
    return round(float(np.percentile(a, 50)), 2), round(float(np.percentile(a, 99)), 2)


def run(quick: bool) -> dict:
    n = 60 if quick else 300
    with tempfile.TemporaryDirectory(prefix="gw-bench-serve-") as work:
        source_args, label = _backend(Path(work))
        server = Server(source_args)
        try:
            one: list[float] = []
            _lockstep(server.url(), n, one)
            stream = _stream_fps(server.url("?fps=240"), 2.0 if quick else 5.0)
            many: list[float] = []
            threads = [threading.Thread(target=_lockstep, args=(server.url(), n // 2, many)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            server.close()
    p50_1, p99_1 = _pcts(one)
    p50_4, p99_4 = _pcts(many)
    return {
        "backend": label,
        "steps_per_s_1client_median": round(1.0 / float(np.median(one)), 1),
        "stream_fps_1client": round(stream, 1),
        "step_latency_ms_p50_1session": p50_1,
        "step_latency_ms_p99_1session": p99_1,
        "step_latency_ms_p50_4sessions": p50_4,
        "step_latency_ms_p99_4sessions": p99_4,
        "steps_measured": len(one) + len(many),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
