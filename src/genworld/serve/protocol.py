"""The play protocol: what the browser and the server say to each other over `/ws`.

Server -> client:
  * text frames, JSON objects with a `type`: `hello` (first message: the world, its actions and key
    bindings), `ack` (a control message was done), `error` (a bad message; the session lives on),
    `recorded` (where a recording was written), `bye` (why the server closes).
  * binary frames, one per world step: `GWS1` (4 bytes), a uint32 little-endian header length N, N bytes
    of UTF-8 JSON header, then the payload. The header lists `blobs`: `{stream, key, kind, format,
    shape, dtype, offset, length}` with offsets into the payload. Video blobs are `raw` (RGB uint8,
    row-major H*W*3), `png` or `jpeg`; audio blobs are `f32` (little-endian float32 PCM, mono). Touch,
    proprio and reward are small, so they travel in the header as JSON numbers.

Client -> server: text frames, JSON objects with a `type` (see `CLIENT_TYPES` and docs/play.md).
Everything here is pure Python + numpy, so it is tested without a web server.
"""

from __future__ import annotations

import io
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genworld.spec import Modality, WorldSpec

PROTOCOL_VERSION = 1
MAGIC = b"GWS1"
FRAME_FORMATS = ("raw", "png", "jpeg")

# Control messages and the fields they accept (beyond `type`).
CLIENT_TYPES: dict[str, tuple[str, ...]] = {
    "action": ("keys", "value", "choice", "name", "screen"),
    "reset": ("episode",),
    "pause": (),
    "resume": (),
    "step": ("keys", "value", "choice", "name", "screen"),
    "branch_save": ("slot",),
    "branch_restore": ("slot",),
    "record_start": (),
    "record_stop": (),
    "reality": ("on",),
    "ping": ("t",),
}

# Keyboard codes (KeyboardEvent.code) that mean a direction, in image coordinates (x right, y down).
DIRECTION_KEYS: dict[str, tuple[int, int]] = {
    "ArrowUp": (0, -1), "KeyW": (0, -1),
    "ArrowDown": (0, 1), "KeyS": (0, 1),
    "ArrowLeft": (-1, 0), "KeyA": (-1, 0),
    "ArrowRight": (1, 0), "KeyD": (1, 0),
}
_WORD_DIRECTIONS = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}
_IDLE_WORDS = {"none", "noop", "no-op", "idle", "stay", "nothing", "stop"}


class ProtocolError(ValueError):
    """A client message the server cannot act on; its text is sent back in an `error` message."""


def _direction_of_name(name: str) -> tuple[int, int] | None:
    """`"up-left"` -> (-1, -1); `"none"` -> (0, 0); a name without direction words -> None."""
    words = [w for w in name.lower().replace("_", "-").replace(" ", "-").split("-") if w]
    if not words:
        return None
    if all(w in _IDLE_WORDS for w in words):
        return (0, 0)
    if not all(w in _WORD_DIRECTIONS for w in words):
        return None
    dx = sum(_WORD_DIRECTIONS[w][0] for w in words)
    dy = sum(_WORD_DIRECTIONS[w][1] for w in words)
    return (dx, dy)


@dataclass
class ActionMap:
    """Turns what the client sends (held keys, a value, a choice) into one action of the world's spec."""

    modality: Modality
    direction_choice: dict[tuple[int, int], int] = field(default_factory=dict)
    digit_keys: dict[str, int] = field(default_factory=dict)
    # continuous: action[:2] = image_to_action @ (dx, dy), for an on-screen direction (x right, y down)
    image_to_action: np.ndarray = field(default_factory=lambda: np.eye(2))

    @classmethod
    def from_spec(cls, spec: WorldSpec) -> ActionMap:
        """Key bindings derived from the action's names (discrete) or its first two axes (continuous)."""
        act = spec.action
        amap = cls(act)
        if act.discrete:
            for i, name in enumerate(act.names):
                d = _direction_of_name(name)
                if d is not None:
                    amap.direction_choice.setdefault(d, i)
            amap.digit_keys = {f"Digit{i + 1}": i for i in range(min(9, act.n_choices))}
        else:
            amap.image_to_action = _camera_matrix(spec.config.get("camera"))
        return amap

    @property
    def idle(self) -> np.ndarray:
        """The action sent when no key is held: the `none` choice, or zeros."""
        if self.modality.discrete:
            return np.asarray(self.direction_choice.get((0, 0), 0), dtype=np.int64)
        return np.zeros(self.modality.shape, dtype=np.float32)

    def bindings(self) -> dict[str, Any]:
        """The key bindings, for the hello message (and the page's help line)."""
        if self.modality.discrete:
            keys = {k: self.modality.names[self.direction_choice[d]] for k, d in DIRECTION_KEYS.items()
                    if d in self.direction_choice}
            keys.update({k: self.modality.names[i] for k, i in self.digit_keys.items()})
            return keys
        if self.modality.shape and self.modality.shape[0] >= 2:
            return {k: np.round(self.image_to_action @ d, 3).tolist() for k, d in DIRECTION_KEYS.items()}
        return {}

    def from_keys(self, keys: list[str]) -> np.ndarray:
        """The action for a set of held keys (unknown keys are ignored, opposite directions cancel)."""
        for k in keys:
            if k in self.digit_keys:
                return np.asarray(self.digit_keys[k], dtype=np.int64)
        dx = sum(DIRECTION_KEYS[k][0] for k in set(keys) if k in DIRECTION_KEYS)
        dy = sum(DIRECTION_KEYS[k][1] for k in set(keys) if k in DIRECTION_KEYS)
        dx, dy = int(np.sign(dx)), int(np.sign(dy))
        if self.modality.discrete:
            if (dx, dy) in self.direction_choice:
                return np.asarray(self.direction_choice[(dx, dy)], dtype=np.int64)
            for d in ((dx, 0), (0, dy)):  # a world without diagonals: keep one axis
                if d in self.direction_choice and d != (0, 0):
                    return np.asarray(self.direction_choice[d], dtype=np.int64)
            return self.idle
        act = self.idle.copy()
        if act.shape and act.shape[0] >= 2:
            v = self.image_to_action @ np.array([dx, dy], float)
            act[:2] = v / max(float(np.linalg.norm(v)), 1e-9) if dx or dy else 0.0  # unit length: full speed
        return act

    def parse(self, msg: dict[str, Any]) -> np.ndarray:
        """The action of an `action`/`step` message (`keys`, `value`, `choice` or `name`), checked."""
        m = self.modality
        if "keys" in msg:
            keys = msg["keys"]
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise ProtocolError("action.keys must be a list of KeyboardEvent.code strings, e.g. [\"ArrowUp\"]")
            return self.from_keys(keys)
        if "name" in msg:
            if not m.discrete or msg["name"] not in m.names:
                raise ProtocolError(f"action.name {msg['name']!r} is not one of {list(m.names)}")
            return np.asarray(m.names.index(msg["name"]), dtype=np.int64)
        if "choice" in msg:
            c = msg["choice"]
            if not m.discrete or not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < m.n_choices:
                raise ProtocolError(f"action.choice must be an integer in 0..{max(m.n_choices - 1, 0)} "
                                    f"(discrete actions only), got {c!r}")
            return np.asarray(c, dtype=np.int64)
        if "screen" in msg:  # a stick on the page: (x right, y down) in [-1, 1], mapped like the arrow keys
            if m.discrete or not m.shape or m.shape[0] < 2:
                raise ProtocolError("action.screen needs a continuous action with at least 2 axes")
            v = _finite(msg["screen"], (2,), "action.screen")
            act = self.idle.copy()
            act[:2] = np.clip(self.image_to_action @ np.clip(v, -1, 1), -1, 1)
            return act
        if "value" in msg:
            if m.discrete:
                raise ProtocolError("this world's action is discrete: send `choice`, `name` or `keys`, not `value`")
            arr = _finite(msg["value"], m.shape, "action.value")
            lo = -np.inf if m.low is None else m.low
            hi = np.inf if m.high is None else m.high
            return np.clip(arr, lo, hi).astype(np.float32)
        raise ProtocolError("an action message needs one of: keys, value, screen, choice, name")


def _finite(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """`value` as a float64 array of `shape` with finite entries, or ProtocolError naming `what`."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"{what} must be a list of {list(shape)} numbers: {e}") from None
    if arr.shape != tuple(shape):
        raise ProtocolError(f"{what} has shape {list(arr.shape)}, expected {list(shape)}")
    if not np.all(np.isfinite(arr)):
        raise ProtocolError(f"{what} contains NaN or infinity")
    return arr


def _camera_matrix(camera: Any) -> np.ndarray:
    """Screen direction -> world (x, y) action, from a camera's image axes in the world frame.

    Worlds with a 3-D camera (tabletop) put `camera: {x_axis, y_axis}` in `spec.config` (MuJoCo's
    convention: image y points up). Their actions live in world coordinates, so ArrowUp must push along
    the world direction that looks "up" on screen. Without a camera, actions are in image coordinates.
    """
    try:
        x = np.asarray(camera["x_axis"], float)[:2]
        y = np.asarray(camera["y_axis"], float)[:2]
    except (TypeError, KeyError, IndexError, ValueError):
        return np.eye(2)
    m = np.stack([x, -y], axis=1)  # columns: world direction of screen-right, of screen-down
    norms = np.linalg.norm(m, axis=0)
    if not np.all(np.isfinite(m)) or np.any(norms < 1e-6):
        return np.eye(2)
    return m / norms


def parse_client_message(text: str | bytes, max_bytes: int) -> dict[str, Any]:
    """Decode one client frame into a checked JSON object, or raise ProtocolError saying why not."""
    if isinstance(text, bytes):
        raise ProtocolError("binary frames are not accepted from the client; send JSON text")
    if len(text.encode()) > max_bytes:
        raise ProtocolError(f"message of {len(text.encode())} bytes exceeds the limit of {max_bytes} bytes")
    try:
        # NaN/Infinity are not JSON; Python's parser would accept them, so refuse them here.
        msg = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ProtocolError(f"{c} is not allowed")))
    except json.JSONDecodeError as e:
        raise ProtocolError(f"message is not valid JSON ({e.msg} at position {e.pos})") from None
    if not isinstance(msg, dict):
        raise ProtocolError("message must be a JSON object with a `type`")
    kind = msg.get("type")
    if kind not in CLIENT_TYPES:
        raise ProtocolError(f"unknown message type {kind!r}; expected one of {sorted(CLIENT_TYPES)}")
    extra = set(msg) - {"type", "id", *CLIENT_TYPES[kind]}
    if extra:
        raise ProtocolError(f"{kind} message has unknown fields {sorted(extra)}; allowed {list(CLIENT_TYPES[kind])}")
    return msg


def hello_message(spec: WorldSpec, amap: ActionMap, info: dict[str, Any]) -> dict[str, Any]:
    """The first message of a session: the world's streams, actions and key bindings, plus `info`."""
    def stream(m: Modality) -> dict[str, Any]:
        d: dict[str, Any] = {"key": m.key, "kind": m.kind, "shape": list(m.shape), "rate": m.rate}
        if m.names:
            d["names"] = list(m.names)
        if m.units:
            d["units"] = m.units
        if m.low is not None or m.high is not None:
            d["range"] = [m.low, m.high]
        return d

    a = spec.action
    return {
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "world": spec.name,
        "fps": spec.fps,
        "streams": [stream(m) for m in spec.of_kind("video", "audio", "touch", "proprio", "reward")],
        "action": {"key": a.key, "discrete": a.discrete, "shape": list(a.shape), "names": list(a.names),
                   "range": [a.low, a.high], "idle": amap.idle.tolist()},
        "keys": amap.bindings(),
        **info,
    }


def encode_image(frame: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """(H, W, 3) uint8 -> bytes in `fmt` (`raw`, `png` or `jpeg`)."""
    if fmt == "raw":
        return np.ascontiguousarray(frame, dtype=np.uint8).tobytes()
    from PIL import Image

    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8))
    if fmt == "png":
        img.save(buf, format="PNG", compress_level=1)
    elif fmt == "jpeg":
        img.save(buf, format="JPEG", quality=quality)
    else:
        raise ValueError(f"frame format {fmt!r} is not one of {FRAME_FORMATS}")
    return buf.getvalue()


def _numbers(x: np.ndarray) -> Any:
    """An array as JSON numbers; NaN/inf (a diverging model) become null, which JSON can carry."""
    arr = np.asarray(x, dtype=np.float64)
    if np.all(np.isfinite(arr)):
        return np.round(arr, 5).tolist()
    return [None if not math.isfinite(v) else round(v, 5) for v in arr.ravel().tolist()]


def pack_step(streams: dict[str, dict[str, np.ndarray]], spec: WorldSpec, header: dict[str, Any],
              frame_format: str = "raw") -> bytes:
    """One binary step message from `{stream_name: {key: (*shape)}}` (e.g. `model`, `real`) and `header`."""
    blobs: list[dict[str, Any]] = []
    payload: list[bytes] = []
    offset = 0
    values: dict[str, dict[str, Any]] = {}
    for name, step in streams.items():
        vals: dict[str, Any] = {}
        for key, value in step.items():
            if key not in spec:
                continue
            m = spec[key]
            if m.kind == "video":
                data = encode_image(value, frame_format)
                blob = {"format": frame_format, "dtype": "uint8"}
            elif m.kind == "audio":
                wave = np.nan_to_num(np.asarray(value, dtype=np.float32).ravel(), nan=0.0, posinf=1.0, neginf=-1.0)
                data = np.clip(wave, -1.0, 1.0).astype("<f4").tobytes()
                blob = {"format": "f32", "dtype": "float32", "rate": m.rate}
            elif m.kind in ("touch", "proprio", "reward", "done"):
                vals[key] = _numbers(value)
                continue
            else:
                continue
            blobs.append({"stream": name, "key": key, "kind": m.kind, "shape": list(np.shape(value)),
                          "offset": offset, "length": len(data), **blob})
            payload.append(data)
            offset += len(data)
        values[name] = vals
    head = json.dumps({**header, "values": values, "blobs": blobs}, separators=(",", ":")).encode()
    return b"".join([MAGIC, struct.pack("<I", len(head)), head, *payload])


def unpack_step(data: bytes) -> tuple[dict[str, Any], dict[tuple[str, str], bytes]]:
    """Inverse of `pack_step` (for tests and Python clients): (header, {(stream, key): blob bytes})."""
    if data[:4] != MAGIC:
        raise ProtocolError(f"not a step message: starts with {data[:4]!r}, expected {MAGIC!r}")
    (n,) = struct.unpack("<I", data[4:8])
    head = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    blobs = {(b["stream"], b["key"]): body[b["offset"] : b["offset"] + b["length"]] for b in head["blobs"]}
    return head, blobs
