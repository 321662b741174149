"""The play server: a FastAPI app with the static page at `/` and one WebSocket per session at `/ws`.

The protocol (messages, binary step layout) is in `genworld.serve.protocol` and docs/play.md. Each
connection gets a `Player`; a stepper task steps it at the world's fps (in a worker thread, so one
slow model step never blocks other sessions' I/O) while a receiver task applies the client's messages.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from genworld.serve.player import Player, PlayerConfig
from genworld.serve.protocol import FRAME_FORMATS, ProtocolError, parse_client_message
from genworld.serve.source import Source

STATIC = Path(__file__).resolve().parent / "static"
CLOSE_FULL = 1013  # "try again later"
CLOSE_IDLE = 4000
CLOSE_ERROR = 1011


@dataclass
class ServeConfig:
    """Server limits. The defaults suit one person on their own machine."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_sessions: int = 4
    idle_timeout_s: float = 300.0  # no message from the client for this long closes the session
    max_message_bytes: int = 4096  # larger client messages get an error (the session lives on)
    transport_max_bytes: int = 1 << 16  # hard cap at the WebSocket layer (uvicorn closes with 1009)
    max_fps: float = 120.0  # a client may ask for ?fps= up to this (benchmarks); default the world's fps
    frame_format: str = "raw"
    record_dir: str = "recordings"


def _query_number(ws: WebSocket, name: str, default: float, lo: float, hi: float) -> float:
    raw = ws.query_params.get(name)
    if raw is None:
        return default
    try:
        v = float(raw)
    except ValueError:
        raise ProtocolError(f"query parameter {name}={raw!r} is not a number") from None
    if not lo <= v <= hi:
        raise ProtocolError(f"query parameter {name}={raw} outside {lo}..{hi}")
    return v


def create_app(source: Source, cfg: ServeConfig | None = None) -> FastAPI:
    """The app serving the page and the `/ws` sessions for `source`."""
    cfg = cfg or ServeConfig()
    if cfg.frame_format not in FRAME_FORMATS:
        raise ValueError(f"frame_format {cfg.frame_format!r} is not one of {FRAME_FORMATS}")
    app = FastAPI(title="genworld play", docs_url=None, redoc_url=None)
    active: set[str] = set()
    counter = itertools.count()
    Path(cfg.record_dir).mkdir(parents=True, exist_ok=True)
    limits = {"max_sessions": cfg.max_sessions, "idle_timeout_s": cfg.idle_timeout_s,
              "max_message_bytes": cfg.max_message_bytes, "max_fps": cfg.max_fps}

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/api/info")
    async def info() -> JSONResponse:
        return JSONResponse({"world": source.spec.to_json(), "sessions": len(active), "limits": limits,
                             "reality": {"available": not source.reality_reason, "reason": source.reality_reason},
                             "server": asdict(cfg) | {"record_dir": str(Path(cfg.record_dir).resolve())}})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/recordings", StaticFiles(directory=cfg.record_dir), name="recordings")

    @app.websocket("/ws")
    async def play(ws: WebSocket) -> None:
        await ws.accept()
        if len(active) >= cfg.max_sessions:
            reason = f"server full: {cfg.max_sessions} sessions in use (genworld play --max-sessions)"
            await ws.send_json({"type": "bye", "reason": reason})
            await ws.close(code=CLOSE_FULL, reason=reason)
            return
        name = f"s{next(counter)}"
        active.add(name)  # reserved before any await, so concurrent connects are counted
        player: Player | None = None
        try:
            try:
                fps = _query_number(ws, "fps", float(source.spec.fps), 1.0, cfg.max_fps)
                episode = int(_query_number(ws, "episode", 0, 0, 1e9))
                fmt = ws.query_params.get("format", cfg.frame_format)
                if fmt not in FRAME_FORMATS:
                    raise ProtocolError(f"query parameter format={fmt!r} is not one of {list(FRAME_FORMATS)}")
            except ProtocolError as e:
                await ws.send_json({"type": "bye", "reason": str(e)})
                await ws.close(code=1008, reason=str(e)[:120])
                return
            pcfg = PlayerConfig(frame_format=fmt, record_dir=cfg.record_dir)
            player = await asyncio.to_thread(Player, source, pcfg, name, episode)
            await ws.send_json(player.hello(limits | {"fps": fps}))
            await _serve(ws, player, cfg, fps)
        except WebSocketDisconnect:
            pass
        finally:
            active.discard(name)
            if player is not None:
                await asyncio.to_thread(player.close)

    return app


async def _serve(ws: WebSocket, player: Player, cfg: ServeConfig, fps: float) -> None:
    """Run the stepper and the receiver until the client leaves, idles out, or the session fails."""
    send_lock = asyncio.Lock()
    background: list[asyncio.Task] = []

    async def send(data: bytes | dict[str, Any]) -> None:
        async with send_lock:
            if isinstance(data, bytes):
                await ws.send_bytes(data)
            else:
                await ws.send_json(data)

    async def stepper() -> None:
        period = 1.0 / fps
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            if player.paused:
                await asyncio.sleep(min(period, 0.05))
                due = loop.time()
                continue
            await send(await asyncio.to_thread(player.tick))
            due += period
            if due < loop.time() - period:  # fell behind (slow model): skip, never burst to catch up
                due = loop.time()
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def receiver() -> str:
        loop = asyncio.get_running_loop()
        active = loop.time()  # the last valid message other than a ping: a person doing something
        while True:
            left = cfg.idle_timeout_s - (loop.time() - active)
            if left <= 0:
                return f"idle for {cfg.idle_timeout_s:g} s (no action or control message from the client)"
            try:
                event = await asyncio.wait_for(ws.receive(), timeout=left)
            except TimeoutError:
                continue
            if event["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(event.get("code", 1000))
            raw = event.get("text") if event.get("text") is not None else event.get("bytes", b"")
            msg: dict[str, Any] = {}
            try:
                msg = parse_client_message(raw, cfg.max_message_bytes)
                if msg["type"] != "ping":
                    active = loop.time()
                if msg["type"] == "step":
                    if not player.paused:
                        raise ProtocolError("step advances a paused session by one step; send pause first")
                    act = player.amap.parse(msg) if len(msg) > 1 + ("id" in msg) else None
                    await send(await asyncio.to_thread(player.tick, act))
                    continue
                if msg["type"] == "record_stop":  # encoding takes a while: keep reading messages meanwhile
                    background.append(asyncio.create_task(handle(msg)))
                else:
                    await handle(msg)
            except ProtocolError as e:
                await send(_error(e, msg))

    async def handle(msg: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        try:
            reply = await asyncio.to_thread(player.handle, msg)
        except ProtocolError as e:
            await send(_error(e, msg))
            return
        if reply is not None:
            reply["ms"] = round((time.perf_counter() - t0) * 1e3, 2)
            await send(reply | ({"id": msg["id"]} if "id" in msg else {}))

    tasks = [asyncio.create_task(stepper()), asyncio.create_task(receiver())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            exc = t.exception()
            if isinstance(exc, WebSocketDisconnect):
                return
            code, reason = (CLOSE_IDLE, t.result()) if exc is None else (
                CLOSE_ERROR, f"session failed: {type(exc).__name__}: {exc}")
            try:
                await send({"type": "bye", "reason": reason})
                await ws.close(code=code, reason=reason[:120])
            except Exception:  # the client is already gone (the failure was the lost connection)
                pass
            return
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, *background, return_exceptions=True)  # let recordings finish writing


def _error(e: ProtocolError, msg: dict[str, Any]) -> dict[str, Any]:
    return {"type": "error", "error": str(e), "of": msg.get("type")} | ({"id": msg["id"]} if "id" in msg else {})
