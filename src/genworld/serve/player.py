"""`Player`: one client's game, independent of the web stack (the app only moves its messages).

A player holds a session (the model), optionally the true world beside it (reality check), the held
action, pause state, branch slots and a recording. `handle(msg)` applies a control message and
returns the reply; `tick()` steps the world once with the held action and returns the binary step.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genworld.serve.protocol import ProtocolError, hello_message, pack_step
from genworld.serve.record import Recorder
from genworld.serve.source import Context, Source


@dataclass
class PlayerConfig:
    """Per-client limits and formats."""

    frame_format: str = "raw"  # raw | png | jpeg
    max_branches: int = 8
    max_record_steps: int = 16 * 60 * 5  # about 5 minutes at 16 fps
    record_dir: str = "recordings"


class Player:
    """One client's session: model, optional reality, action, pause, branches, recording."""

    def __init__(self, source: Source, cfg: PlayerConfig, name: str, episode: int = 0) -> None:
        self.source = source
        self.cfg = cfg
        self.name = name
        self.spec = source.spec
        self.amap = source.action_map()
        self.action = self.amap.idle
        self.paused = False
        self.session = source.new_session()
        self.reality_on = False
        self.reality: Any = None
        self.branches: dict[str, tuple[Any, Any, int, dict, dict | None]] = {}
        self.recorder: Recorder | None = None
        self.lock = threading.Lock()  # tick() runs in a worker thread, handle() may too
        self.t = 0
        self.episode = episode
        self._start(episode)

    def _start(self, episode: int) -> None:
        self.episode = int(episode) % self.source.num_contexts
        self.ctx: Context = self.source.context(self.episode)
        self.last = {k: v[0] for k, v in self.source.start(self.session, self.ctx).items()}
        self.real_last: dict[str, np.ndarray] | None = None
        self.reality = None
        if self.reality_on:
            self.reality = self.source.new_reality(self.ctx)
            self.real_last = {k: v[0, -1] for k, v in self.ctx.steps.items()}
        self.t = 0
        self.recorder = None

    def hello(self, limits: dict[str, Any]) -> dict[str, Any]:
        """The first message: world description, key bindings, where the context came from, limits."""
        return hello_message(self.spec, self.amap, {
            "session": self.name,
            "context": {"label": self.ctx.label, "steps": self.source.context_length,
                        "count": self.source.num_contexts},
            "reality": {"available": not self.source.reality_reason, "reason": self.source.reality_reason},
            "frame_format": self.cfg.frame_format,
            "limits": limits,
        })

    def handle(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        """Apply a parsed client message; returns the reply (None for actions), raises ProtocolError."""
        kind = msg["type"]
        if kind == "record_stop":  # written outside the lock: encoding must not stall the stepper
            return self._record_stop()
        with self.lock:
            if kind == "action":
                self.action = self.amap.parse(msg)
                return None
            if kind == "ping":
                return {"type": "pong", "t": msg.get("t")}
            if kind == "pause":
                self.paused = True
            elif kind == "resume":
                self.paused = False
            elif kind == "reset":
                ep = msg.get("episode", self.episode)
                if not isinstance(ep, int) or isinstance(ep, bool) or ep < 0:
                    raise ProtocolError(f"reset.episode must be a non-negative integer, got {ep!r}")
                self._start(ep)
            elif kind == "reality":
                on = msg.get("on")
                if not isinstance(on, bool):
                    raise ProtocolError("reality.on must be true or false")
                if on and self.source.reality_reason:
                    raise ProtocolError(f"the reality check is unavailable: {self.source.reality_reason}")
                self.reality_on = on
                self._start(self.episode)  # both worlds restart from the same real context
            elif kind == "branch_save":
                return self._branch_save(msg)
            elif kind == "branch_restore":
                return self._branch_restore(msg)
            elif kind == "record_start":
                self.recorder = Recorder(self.spec, self.last, self.real_last, self.cfg.max_record_steps)
            return self.state(kind)

    def state(self, of: str) -> dict[str, Any]:
        """An `ack` with the player's state after a control message."""
        return {"type": "ack", "of": of, "paused": self.paused, "t": self.t, "episode": self.episode,
                "context": self.ctx.label, "reality": self.reality is not None,
                "recording": self.recorder is not None, "branches": sorted(self.branches)}

    def _slot(self, msg: dict[str, Any]) -> str:
        slot = msg.get("slot", "default")
        if not isinstance(slot, str) or not 0 < len(slot) <= 32:
            raise ProtocolError("branch slot must be a string of 1..32 characters")
        return slot

    def _branch_save(self, msg: dict[str, Any]) -> dict[str, Any]:
        slot = self._slot(msg)
        if slot not in self.branches and len(self.branches) >= self.cfg.max_branches:
            raise ProtocolError(f"at most {self.cfg.max_branches} branch slots; reuse one of {sorted(self.branches)}")
        real = self.reality.snapshot() if self.reality is not None else None
        self.branches[slot] = (self.session.snapshot(), real, self.t, dict(self.last),
                               dict(self.real_last) if self.real_last is not None else None)
        return self.state("branch_save") | {"slot": slot}

    def _branch_restore(self, msg: dict[str, Any]) -> dict[str, Any]:
        slot = self._slot(msg)
        if slot not in self.branches:
            raise ProtocolError(f"no branch saved in slot {slot!r}; saved: {sorted(self.branches)}")
        snap, real, t, last, real_last = self.branches[slot]
        self.session.restore(snap)
        if real is not None and self.reality is not None:
            self.reality.restore(real)
            self.real_last = dict(real_last) if real_last is not None else None
        elif self.reality is not None:  # reality started after the save: it cannot follow the model back
            self.reality, self.real_last, self.reality_on = None, None, False
        self.t, self.last = t, dict(last)
        self.recorder = None  # a recording is one continuous path; a jump ends it unsaved
        return self.state("branch_restore") | {"slot": slot}

    def _record_stop(self) -> dict[str, Any]:
        with self.lock:
            if self.recorder is None:
                raise ProtocolError("not recording; send record_start first")
            rec, self.recorder = self.recorder, None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path(self.cfg.record_dir) / f"{stamp}-{self.name}"
        result = rec.write(out, Path(self.cfg.record_dir) / "datasets")
        if "mp4" in result:
            result["url"] = f"/recordings/{out.name}/play.mp4"
        return {"type": "recorded", **result}

    def tick(self, action_override: np.ndarray | None = None) -> bytes:
        """Step the world once with the held action; returns the packed binary step message."""
        with self.lock:
            act = self.action if action_override is None else action_override
            t0 = time.perf_counter()
            out = self.session.step(np.asarray(act)[None])
            t1 = time.perf_counter()
            model = {k: np.asarray(v)[0] for k, v in out.items()}
            real = None
            if self.reality is not None:
                real = {k: np.asarray(v)[0] for k, v in self.reality.step(np.asarray(act)[None]).items()}
            if self.recorder is not None:
                self.recorder.add(act, model, real)
            self.last, self.real_last = model, real
            self.t += 1
            streams = {"model": model} if real is None else {"model": model, "real": real}
            header = {"t": self.t, "step_ms": round((t1 - t0) * 1e3, 3), "action": np.asarray(act).tolist(),
                      "paused": self.paused, "recording": len(self.recorder) if self.recorder else None}
            data = pack_step(streams, self.spec, header, self.cfg.frame_format)
            # The header carries the model's step time; the whole server-side cost is measured by the app.
            return data

    def close(self) -> None:
        for s in (self.session, self.reality):
            if s is not None and callable(getattr(s, "close", None)):
                s.close()
