"""The play protocol without a server: parsing, key bindings, step packing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genworld.serve.protocol import ActionMap, ProtocolError, pack_step, parse_client_message, unpack_step


def test_bad_messages_name_the_problem():
    cases = {
        "not json": "not valid JSON",
        "[1, 2]": "JSON object",
        '{"type": "fly"}': "unknown message type 'fly'",
        '{"type": "pause", "speed": 2}': "unknown fields ['speed']",
        '{"type": "action", "value": [NaN, 0]}': "NaN is not allowed",
    }
    for text, needle in cases.items():
        with pytest.raises(ProtocolError, match=needle.replace("[", r"\[").replace("]", r"\]")):
            parse_client_message(text, 4096)
    with pytest.raises(ProtocolError, match="exceeds the limit of 100 bytes"):
        parse_client_message(json.dumps({"type": "ping", "t": "x" * 200}), 100)
    with pytest.raises(ProtocolError, match="binary frames"):
        parse_client_message(b"\x00\x01", 4096)
    assert parse_client_message('{"type": "reset", "episode": 3, "id": 7}', 4096)["episode"] == 3


def test_discrete_keys_map_to_named_choices(toy_cls):
    amap = ActionMap.from_spec(toy_cls().spec)
    names = amap.modality.names
    assert names[int(amap.from_keys([]))] == "none"
    assert names[int(amap.from_keys(["ArrowUp"]))] == "up"
    assert names[int(amap.from_keys(["KeyA"]))] == "left"
    assert names[int(amap.from_keys(["ArrowLeft", "ArrowRight"]))] == "none"  # opposites cancel
    assert names[int(amap.from_keys(["ArrowUp", "ArrowRight"]))] in ("right", "up")  # no diagonal: keep one axis
    assert int(amap.from_keys(["Digit3"])) == 2
    assert amap.bindings()["KeyW"] == "up"
    assert int(amap.parse({"name": "down"})) == names.index("down")
    with pytest.raises(ProtocolError, match="outside|integer"):
        amap.parse({"choice": 9})
    with pytest.raises(ProtocolError, match="discrete"):
        amap.parse({"value": [0.0, 1.0]})


def test_continuous_values_are_checked_and_clipped(toy_cls):
    amap = ActionMap.from_spec(toy_cls(continuous=True).spec)
    np.testing.assert_allclose(amap.from_keys(["ArrowRight", "ArrowDown"]), [2**-0.5, 2**-0.5], rtol=1e-6)
    np.testing.assert_allclose(amap.parse({"value": [3, -0.5]}), [1.0, -0.5])
    with pytest.raises(ProtocolError, match="shape"):
        amap.parse({"value": [0.1, 0.2, 0.3]})
    with pytest.raises(ProtocolError, match="NaN"):
        amap.parse({"value": [float("nan"), 0.0]})
    with pytest.raises(ProtocolError, match="numbers"):
        amap.parse({"value": ["left", 0]})


@pytest.mark.parametrize("fmt", ["raw", "png", "jpeg"])
def test_step_round_trips_every_modality(fmt, toy_cls):
    world = toy_cls()
    world.reset(1)
    obs, _, _ = world.step(np.int64(4))
    data = pack_step({"model": obs, "real": obs}, world.spec, {"t": 1}, fmt)
    head, blobs = unpack_step(data)
    assert head["t"] == 1
    frame = blobs[("model", "observation.images.top")]
    if fmt == "raw":
        np.testing.assert_array_equal(np.frombuffer(frame, np.uint8).reshape(16, 16, 3), obs["observation.images.top"])
    else:
        from io import BytesIO

        from PIL import Image

        img = np.asarray(Image.open(BytesIO(frame)))
        assert img.shape == (16, 16, 3)
        assert np.abs(img.astype(int) - obs["observation.images.top"]).mean() < (1 if fmt == "png" else 20)
    wave = np.frombuffer(blobs[("real", "observation.audio.mic")], "<f4")
    np.testing.assert_allclose(wave, obs["observation.audio.mic"], atol=1e-7)
    np.testing.assert_allclose(head["values"]["model"]["observation.state"], obs["observation.state"], atol=1e-4)
    assert len(head["values"]["model"]["observation.tactile.walls"]) == 4
    assert "gt.state" not in head["values"]["model"]  # ground truth is never streamed


def test_non_finite_model_output_still_packs(toy_cls):
    world = toy_cls()
    obs = world.reset(0)
    obs["observation.state"] = np.array([np.nan, 1, 2, np.inf], np.float32)
    obs["observation.audio.mic"] = np.full(160, np.nan, np.float32)
    head, blobs = unpack_step(pack_step({"model": obs}, world.spec, {}))
    assert head["values"]["model"]["observation.state"] == [None, 1.0, 2.0, None]
    assert not np.any(np.isnan(np.frombuffer(blobs[("model", "observation.audio.mic")], "<f4")))


def test_keys_follow_a_3d_camera_into_world_coordinates():
    from genworld.spec import Modality, WorldSpec

    # tabletop's camera: image x = world +x, image up tilts toward world +y (MuJoCo image y points up)
    spec = WorldSpec("cam", 10, (Modality("action", "action", (2,), 10, low=-1, high=1),),
                     config={"camera": {"x_axis": [1, 0, 0], "y_axis": [0, 0.95, 0.31]}})
    amap = ActionMap.from_spec(spec)
    np.testing.assert_allclose(amap.from_keys(["ArrowUp"]), [0, 1], atol=1e-6)  # screen up = world +y
    np.testing.assert_allclose(amap.from_keys(["ArrowRight"]), [1, 0], atol=1e-6)
    assert amap.bindings()["KeyS"] == [0.0, -1.0]
    np.testing.assert_allclose(amap.parse({"screen": [0.0, -0.5]}), [0, 0.5], atol=1e-6)  # the stick, half up
    with pytest.raises(ProtocolError, match="screen"):
        amap.parse({"screen": [0.0, float("inf")]})
