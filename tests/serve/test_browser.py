"""End to end in real headless Chromium: open the page, press keys, see frames change and the meters run."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genworld.serve.app import ServeConfig, create_app

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(reality_source, tmp_path):
    import uvicorn

    port = _free_port()
    app = create_app(reality_source, ServeConfig(port=port, record_dir=str(tmp_path / "rec")))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started:
        if time.time() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def _frame_pixels(page) -> list[int]:
    return page.evaluate("""() => {
        const c = document.getElementById('model');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
    }""")


def _loud_looks(page, looks: int = 12, every_ms: int = 50) -> int:
    """How many of `looks` at the sound worklet's output, `every_ms` apart, hear sound (RMS > 0.02; -1: no worklet).

    The worklet fades to exactly 0 when its queue runs dry, and the toy world hums at amplitude 0.3."""
    return page.evaluate("""async ([looks, every]) => {
        if (!audio.node) return -1;
        const an = audio.ctx.createAnalyser();
        an.fftSize = 2048;
        audio.node.connect(an);
        const buf = new Float32Array(an.fftSize);
        let loud = 0;
        for (let i = 0; i < looks; i++) {
            await new Promise((r) => setTimeout(r, every));
            an.getFloatTimeDomainData(buf);
            let sum = 0;
            for (const v of buf) sum += v * v;
            if (Math.sqrt(sum / buf.length) > 0.02) loud++;
        }
        audio.node.disconnect(an);
        return loud;
    }""", [looks, every_ms])


@pytest.mark.browser
def test_page_plays_in_chromium(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server)
            page.wait_for_function("window.genworld.frames > 5", timeout=15000)
            assert page.text_content("#world") == "servetoy"
            before = _frame_pixels(page)
            x0 = page.evaluate("window.genworld.lastHeader")["values"]["model"]["observation.state"][0]
            page.click("#btn-sound")  # a user gesture starts the AudioContext and its worklet
            page.keyboard.down("ArrowRight")
            page.keyboard.down("ArrowDown")
            page.wait_for_timeout(1200)
            page.keyboard.up("ArrowRight")
            page.keyboard.up("ArrowDown")
            after = _frame_pixels(page)
            assert before != after, "the frame did not change while keys were held"
            x1 = page.evaluate("window.genworld.lastHeader")["values"]["model"]["observation.state"][0]
            assert x1 > x0 + 1, f"holding ArrowRight moved the dot from x={x0} to x={x1}"
            fps = float(page.text_content("#fps"))
            assert fps >= 5, f"FPS meter shows {fps}, expected about 10"
            page.click("#btn-reality")
            page.wait_for_selector("#real-view:not([hidden])", timeout=5000)
            # 600 ms of listening: chunks of 100 ms arrive at the FPS above (>= 5), so the worklet plays at
            # least half the time even after the reality toggle flushed its queue
            loud = _loud_looks(page)
            assert loud >= 3, f"the page played sound in {loud} of 12 looks at its output over 600 ms"
            ms = page.text_content("#audio-ms")
            assert ms.isdigit(), f"the audio meter never read the worklet's queue: {ms!r}"
            shots = Path(os.environ.get("GENWORLD_SCREENSHOTS", tmp_path))  # set it to keep the picture
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "play.png"))
            # the model's canvas on the screenshot shows the toy's frame: a dark box and its one bright dot
            shot = np.asarray(Image.open(shots / "play.png").convert("RGB")).astype(int)
            box, scale = page.locator("#model").bounding_box(), shot.shape[1] / 1280
            x0, y0 = int((box["x"] + 2) * scale), int((box["y"] + 2) * scale)
            x1, y1 = int((box["x"] + box["width"] - 2) * scale), int((box["y"] + box["height"] - 2) * scale)
            view = shot[y0:y1, x0:x1]
            cell = view.shape[1] / 16  # one pixel of the 16 x 16 frame, drawn pixelated
            dark, bright = (view.max(-1) < 60).mean(), int((view.min(-1) > 200).sum())
            assert dark > 0.9 and 0.4 * cell**2 <= bright <= 2 * cell**2, (dark, bright, cell)
            assert not errors, f"page errors: {errors}"
        finally:
            browser.close()


@pytest.mark.browser
def test_sound_chunks_play_without_seams(server):
    """The page's resampler + worklet turn 1000-sample chunks of a 16 kHz tone into one smooth 48 kHz wave."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(server)
            page.wait_for_function("window.genworld.hello !== null", timeout=15000)
            res = page.evaluate("""async () => {
                const rate = 16000, R = 48000, chunk = 1000, n = 12;
                const ctx = new OfflineAudioContext(1, R, R);
                await ctx.audioWorklet.addModule("/static/audio-worklet.js");
                const node = new AudioWorkletNode(ctx, "chunk-player");
                node.connect(ctx.destination);
                const saved = audio.ctx;
                audio.ctx = ctx; audio.t = 0; audio.prev = 0;
                for (let c = 0; c < n; c++) {
                    const x = new Float32Array(chunk);
                    for (let i = 0; i < chunk; i++) x[i] = 0.5 * Math.sin(2 * Math.PI * 440 * (c * chunk + i) / rate);
                    node.port.postMessage(resample(x, rate));
                }
                audio.ctx = saved;
                await new Promise((r) => setTimeout(r, 200));
                const out = (await ctx.startRendering()).getChannelData(0);
                let start = out.findIndex((v) => v !== 0);
                let maxDiff = 0, peak = 0;
                for (let i = start + 300; i < start + n * chunk * 3 - 600; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(out[i] - out[i - 1]));
                    peak = Math.max(peak, Math.abs(out[i]));
                }
                return {start, maxDiff, peak};
            }""")
            assert res["start"] >= 0, "the worklet produced no sound"
            assert 0.45 < res["peak"] < 0.55, res
            # a 440 Hz tone of amplitude 0.5 at 48 kHz moves at most 0.029 per sample; a seam would jump
            assert res["maxDiff"] < 0.035, res
        finally:
            browser.close()
