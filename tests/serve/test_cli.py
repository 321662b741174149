"""`genworld play` as a user runs it: a real uvicorn process on loopback, the real bounce world."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from genworld.cli import main
from genworld.serve.protocol import unpack_step


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_play_refuses_bad_sources(capsys, tmp_path):
    assert main(["play", "--world", "no-such-world", "--record-dir", str(tmp_path)]) == 1
    assert "unknown world" in capsys.readouterr().err
    assert main(["play", "--run", str(tmp_path / "missing"), "--record-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "missing" in err or "No module" in err


@pytest.fixture
def bounce_server(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "genworld.cli", "play", "--world", "bounce", "--port", str(port),
                             "--record-dir", str(tmp_path / "rec")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "MUJOCO_GL": "egl"})
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"genworld play exited early: {proc.stdout.read()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise AssertionError("genworld play did not listen within 60 s") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_play_serves_bounce_over_loopback(bounce_server):
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{bounce_server}/ws?fps=60", max_size=1 << 20) as ws:
        hello = json.loads(ws.recv())
        assert hello["world"] == "bounce" and hello["keys"]["ArrowRight"] == [1, 0]
        ws.send(json.dumps({"type": "action", "keys": ["ArrowRight"]}))
        xs = []
        while len(xs) < 20:
            m = ws.recv()
            if isinstance(m, bytes):
                head, blobs = unpack_step(m)
                frame = np.frombuffer(blobs[("model", "observation.images.top")], np.uint8)
                assert frame.size == 64 * 64 * 3
                assert len(blobs[("model", "observation.audio.mic")]) == 1000 * 4
                assert len(head["values"]["model"]["observation.tactile.ring"]) == 8
                xs.append(head["values"]["model"]["observation.state"][2])  # vx
        assert max(xs[5:]) > 0, f"pushing right never gave the agent a rightward velocity: {xs}"
