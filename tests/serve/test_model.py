"""Playing inside a real trained model (the tiny preset on bounce) through the server."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from genworld.serve.app import ServeConfig, create_app
from genworld.serve.protocol import unpack_step
from genworld.serve.source import Source, SourceConfig, world_context

FRAME, MIC, RING = "observation.images.top", "observation.audio.mic", "observation.tactile.ring"


def _until(ws, kind: str) -> dict:
    for _ in range(400):
        m = ws.receive()
        if m.get("text") is not None and json.loads(m["text"])["type"] == kind:
            return json.loads(m["text"])
    raise AssertionError(f"no {kind} message")


def _step(ws, **action):
    ws.send_json({"type": "step", **action})
    while True:
        m = ws.receive()
        if m.get("bytes") is not None:
            return unpack_step(m["bytes"])
        assert json.loads(m["text"])["type"] != "error", m["text"]


def test_run_with_stored_contexts_streams_every_modality(tiny_run, tmp_path):
    source = Source.open(SourceConfig(run=str(tiny_run)))
    stored = json.loads((tiny_run / "config.json").read_text())["train"]["n_contexts"]
    assert source.num_contexts == stored and source.context_length == 4  # every window the run stored
    assert "ground truth" in source.reality_reason  # stored contexts keep model keys only
    app = create_app(source, ServeConfig(record_dir=str(tmp_path)))
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        hello = ws.receive_json()
        assert hello["world"] == "bounce" and hello["context"]["label"].startswith("stored context 0")
        ws.send_json({"type": "pause"})
        _until(ws, "ack")
        ws.send_json({"type": "branch_save"})
        _until(ws, "ack")
        first = []
        for keys in (["ArrowRight"], ["ArrowUp"], []):
            head, blobs = _step(ws, keys=keys)
            assert len(blobs[("model", FRAME)]) == 64 * 64 * 3 and len(blobs[("model", MIC)]) == 4000
            assert len(head["values"]["model"][RING]) == 8 and len(head["values"]["model"]["observation.state"]) == 4
            assert head["step_ms"] > 0
            first.append(blobs[("model", FRAME)])
        ws.send_json({"type": "branch_restore"})
        _until(ws, "ack")
        again = [_step(ws, keys=k)[1][("model", FRAME)] for k in (["ArrowRight"], ["ArrowUp"], [])]
        assert again == first  # greedy sampling from the same snapshot: the same future


def test_model_beside_the_true_world(tiny_run, tmp_path):
    from genworld.rollout.session import WorldSession
    from genworld.worlds.base import make_world

    model = WorldSession.load(tiny_run)
    source = Source(model.spec, lambda: WorldSession(model.model), lambda i: world_context(make_world("bounce"), i, 4),
                    num_contexts=100, context_length=4, true_world=lambda: make_world("bounce"))
    app = create_app(source, ServeConfig(record_dir=str(tmp_path)))
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_json({"type": "pause"})
        _until(ws, "ack")
        ws.send_json({"type": "reality", "on": True})
        assert _until(ws, "ack")["reality"]
        ws.send_json({"type": "record_start"})
        _until(ws, "ack")
        real_x = []
        for _ in range(4):
            head, blobs = _step(ws, value=[1.0, 0.0])
            assert ("real", FRAME) in blobs and ("model", FRAME) in blobs
            real_x.append(head["values"]["real"]["observation.state"][0])
        assert real_x[-1] > real_x[0]  # the true agent moves right under the same actions
        ws.send_json({"type": "record_stop"})
        rec = _until(ws, "recorded")
        assert rec["steps"] == 4 and rec["mp4"].endswith("play.mp4")


@pytest.mark.slow
def test_tiny_model_serves_over_30_steps_per_second(tiny_run):
    """The speed target of the issue, end to end over a real loopback WebSocket (benchmarks/bench_serve.py)."""
    import importlib.util
    import os
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_serve.py"
    spec = importlib.util.spec_from_file_location("bench_serve", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    os.environ["GENWORLD_BENCH_RUN"] = str(tiny_run)
    try:
        res = bench.run(quick=True)
    finally:
        del os.environ["GENWORLD_BENCH_RUN"]
    assert res["steps_per_s_1client_median"] >= 30, res
    assert np.isfinite(res["step_latency_ms_p99_4sessions"])
