"""The play server over a real WebSocket (FastAPI's TestClient): actions in, every modality out, limits."""

from __future__ import annotations

import json

import numpy as np
from fastapi.testclient import TestClient

from genworld.serve.app import ServeConfig, create_app
from genworld.serve.protocol import unpack_step

FRAME = "observation.images.top"


def _client(source, tmp_path, **kw) -> TestClient:
    return TestClient(create_app(source, ServeConfig(record_dir=str(tmp_path / "rec"), **kw)))


def _until(ws, kind: str, limit: int = 400) -> dict:
    """Read messages (skipping steps) until a JSON message of `kind`."""
    for _ in range(limit):
        m = ws.receive()
        if m.get("text") is not None:
            msg = json.loads(m["text"])
            if msg["type"] == kind:
                return msg
        elif m["type"] == "websocket.close":
            raise AssertionError(f"closed while waiting for {kind}: {m}")
    raise AssertionError(f"no {kind} message in {limit} messages")


def _paused(ws) -> dict:
    hello = ws.receive_json()
    ws.send_json({"type": "pause"})
    assert _until(ws, "ack")["paused"]
    return hello


def _step(ws, **action) -> tuple[dict, dict]:
    ws.send_json({"type": "step", **action})
    while True:
        m = ws.receive()
        if m.get("bytes") is not None:
            return unpack_step(m["bytes"])
        msg = json.loads(m["text"])
        assert msg["type"] != "error", msg


def test_hello_then_steps_carry_every_modality(toy_source, tmp_path):
    with _client(toy_source, tmp_path) as client, client.websocket_connect("/ws?fps=50") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["world"] == "servetoy" and hello["fps"] == 10
        kinds = {s["kind"] for s in hello["streams"]}
        assert {"video", "audio", "touch", "proprio"} <= kinds
        assert hello["action"]["names"][:2] == ["none", "up"] and hello["keys"]["ArrowUp"] == "up"
        assert hello["limits"]["max_sessions"] == 4
        head, blobs = unpack_step(ws.receive_bytes())
        assert len(blobs[("model", FRAME)]) == 16 * 16 * 3
        assert len(blobs[("model", "observation.audio.mic")]) == 160 * 4
        assert set(head["values"]["model"]) >= {"observation.tactile.walls", "observation.state"}
        assert head["step_ms"] > 0 and head["t"] == 1  # the step was timed (to the microsecond)


def test_actions_drive_the_world_exactly(toy_source, tmp_path, toy_cls):
    ref = toy_cls()
    ref.reset(0)  # the source's context 0: world reset with seed 0, context of 1 step
    with _client(toy_source, tmp_path) as client, client.websocket_connect("/ws") as ws:
        _paused(ws)
        ws.send_json({"type": "reset", "episode": 0})  # undo any step taken before the pause landed
        assert _until(ws, "ack")["t"] == 0
        for keys in (["ArrowRight"], ["ArrowRight"], ["ArrowDown"], []):
            head, blobs = _step(ws, keys=keys)
            want, _, _ = ref.step(np.int64(ref.spec.action.names.index({"ArrowRight": "right", "ArrowDown": "down"}.get(
                keys[0], "none") if keys else "none")))
            frame = np.frombuffer(blobs[("model", FRAME)], np.uint8).reshape(16, 16, 3)
            np.testing.assert_array_equal(frame, want[FRAME])
            np.testing.assert_allclose(head["values"]["model"]["observation.state"], want["observation.state"],
                                       atol=1e-4)
        # the held action (not a per-step one) drives the free-running stepper
        ws.send_json({"type": "action", "keys": ["ArrowLeft"]})
        head, _ = _step(ws)
        assert head["action"] == ref.spec.action.names.index("left")


def test_bad_messages_get_errors_and_the_session_lives_on(toy_source, tmp_path):
    with _client(toy_source, tmp_path, max_message_bytes=256) as client, client.websocket_connect("/ws") as ws:
        _paused(ws)
        bad = ["{oops", json.dumps({"type": "teleport"}), json.dumps({"type": "action", "value": [1, 2]}),
               '{"type": "action", "value": [NaN]}', json.dumps({"type": "action", "choice": 99}),
               json.dumps({"type": "ping", "t": "x" * 1000}), json.dumps({"type": "branch_restore", "slot": "nope"}),
               json.dumps({"type": "reset", "episode": -1}), json.dumps({"type": "record_stop"})]
        for text in bad:
            ws.send_text(text)
            err = _until(ws, "error")
            assert err["error"], text
        ws.send_bytes(b"\x00\x01")
        assert "binary" in _until(ws, "error")["error"]
        ws.send_json({"type": "resume"})
        ws.send_json({"type": "step"})
        assert "pause first" in _until(ws, "error")["error"]
        ws.send_json({"type": "ping", "t": 5, "id": "p1"})
        pong = _until(ws, "pong")
        assert pong["t"] == 5 and pong["id"] == "p1"
        assert unpack_step(ws.receive_bytes())[0]["t"] >= 1  # still stepping


def test_session_limit_and_idle_timeout(toy_source, tmp_path):
    with _client(toy_source, tmp_path, max_sessions=1, idle_timeout_s=0.5) as client:
        with client.websocket_connect("/ws") as first:
            assert first.receive_json()["type"] == "hello"
            first.send_json({"type": "ping", "t": 1})  # pings keep the connection, not the session, alive
            with client.websocket_connect("/ws") as second:
                bye = second.receive_json()
                assert bye["type"] == "bye" and "server full" in bye["reason"]
                closed = second.receive()
                assert closed["type"] == "websocket.close" and closed["code"] == 1013
                assert "server full" in closed["reason"]
            bye = _until(first, "bye")
            assert "idle" in bye["reason"]
        with client.websocket_connect("/ws") as again:  # the slot is free again
            assert again.receive_json()["type"] == "hello"
        with client.websocket_connect("/ws?fps=100000") as ws:
            assert "fps" in ws.receive_json()["reason"]


def test_branch_restore_replays_the_same_future(toy_source, tmp_path):
    with _client(toy_source, tmp_path) as client, client.websocket_connect("/ws") as ws:
        _paused(ws)
        for _ in range(3):
            _step(ws, keys=["ArrowUp"])
        ws.send_json({"type": "branch_save", "slot": "a"})
        saved = _until(ws, "ack")
        assert saved["branches"] == ["a"]
        first = [_step(ws, keys=["ArrowLeft"])[1][("model", FRAME)] for _ in range(4)]
        ws.send_json({"type": "branch_restore", "slot": "a"})
        assert _until(ws, "ack")["t"] == saved["t"]
        again = [_step(ws, keys=["ArrowLeft"])[1][("model", FRAME)] for _ in range(4)]
        assert first == again
        ws.send_json({"type": "reset", "episode": 5})
        ack = _until(ws, "ack")
        assert ack["t"] == 0 and "seed 5" in ack["context"]


def test_reality_check_steps_the_true_world_beside_the_model(reality_source, tmp_path):
    with _client(reality_source, tmp_path) as client, client.websocket_connect("/ws") as ws:
        hello = _paused(ws)
        assert hello["reality"]["available"]
        ws.send_json({"type": "reality", "on": True})
        assert _until(ws, "ack")["reality"]
        head, blobs = _step(ws, keys=["ArrowDown"])
        assert blobs[("real", FRAME)] == blobs[("model", FRAME)]  # the 'model' here is the true world too
        assert head["values"]["real"]["observation.state"] == head["values"]["model"]["observation.state"]
        ws.send_json({"type": "reality", "on": False})
        _until(ws, "ack")
        assert ("real", FRAME) not in _step(ws)[1]


def test_reality_unavailable_says_why(toy_source, tmp_path):
    with _client(toy_source, tmp_path) as client, client.websocket_connect("/ws") as ws:
        hello = _paused(ws)
        assert not hello["reality"]["available"] and "true world itself" in hello["reality"]["reason"]
        ws.send_json({"type": "reality", "on": True})
        assert "unavailable" in _until(ws, "error")["error"]


def test_record_writes_mp4_with_sound(reality_source, tmp_path):
    import av

    with _client(reality_source, tmp_path) as client, client.websocket_connect("/ws") as ws:
        _paused(ws)
        ws.send_json({"type": "reality", "on": True})
        _until(ws, "ack")
        ws.send_json({"type": "record_start"})
        assert _until(ws, "ack")["recording"]
        for keys in (["ArrowRight"], ["ArrowUp"], [], ["ArrowLeft"], ["ArrowDown"], []):
            _step(ws, keys=keys)
        ws.send_json({"type": "record_stop"})
        rec = _until(ws, "recorded")
        assert rec["steps"] == 6
        with av.open(rec["mp4"]) as box:
            v = box.streams.video[0]
            assert (v.width, v.height) == (2 * 16 * 4 + 8, 16 * 4)  # model | real, upscaled 4x
            assert len(list(box.decode(video=0))) == 6
        with av.open(rec["mp4"]) as box:
            samples = sum(f.samples for f in box.decode(audio=0))
            assert samples >= 6 * 0.1 * 48000 * 0.9  # 6 steps of 0.1 s at 48 kHz
        assert client.get(rec["url"]).status_code == 200


def test_page_and_info_are_served(toy_source, tmp_path):
    with _client(toy_source, tmp_path) as client:
        page = client.get("/")
        assert page.status_code == 200 and "/static/app.js" in page.text
        for f in ("app.js", "style.css", "audio-worklet.js"):
            assert client.get(f"/static/{f}").status_code == 200
        info = client.get("/api/info").json()
        assert info["world"]["name"] == "servetoy" and info["sessions"] == 0


def test_a_failing_model_step_closes_the_session_with_its_reason(toy_cls, tmp_path):
    from genworld.rollout.sim import SimSession
    from genworld.serve.source import Source, world_context

    class Broken(toy_cls):
        def step(self, action):
            if int(action) == 4:  # "right" breaks it
                raise FloatingPointError("the model diverged")
            return super().step(action)

    source = Source(Broken().spec, lambda: SimSession(Broken, 1), lambda i: world_context(Broken(), i, 1),
                    num_contexts=1, context_length=1)
    with _client(source, tmp_path) as client, client.websocket_connect("/ws?fps=50") as ws:
        ws.receive_json()
        ws.send_json({"type": "action", "name": "right"})
        bye = _until(ws, "bye")
        assert "FloatingPointError: the model diverged" in bye["reason"]
        closed = ws.receive()
        assert closed["type"] == "websocket.close" and closed["code"] == 1011
