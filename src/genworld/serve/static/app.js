// genworld play: the page. Connects to /ws, draws each step (frame, touch, proprioception), plays its
// sound gap-free, and sends held keys / on-screen controls as actions. Protocol: docs/play.md.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  ws: null, hello: null, held: new Set(), paused: false, recording: false, reality: false,
  frames: 0, fpsWindow: [], lastHeader: null, branches: [], closed: false,
};
window.genworld = state;  // for tests and curious users

// ---------- connection ----------
function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/ws${location.search}`);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onmessage = (e) => (typeof e.data === "string" ? onJson(JSON.parse(e.data)) : onStep(e.data));
  ws.onclose = (e) => {
    state.closed = true;
    setStatus("closed", "closed");
    say(`connection closed${e.reason ? ": " + e.reason : ""} (reload to start again)`, true);
  };
}

function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
}

function onJson(m) {
  if (m.type === "hello") return onHello(m);
  if (m.type === "error") return say(m.error, true);
  if (m.type === "bye") return say(m.reason, true);
  if (m.type === "pong") { $("rtt-ms").textContent = (performance.now() - m.t).toFixed(1); return; }
  if (m.type === "recorded") {
    state.recording = false; syncButtons();
    const link = m.url ? ` <a href="${m.url}" target="_blank">play.mp4</a>` : "";
    const ds = m.datasets ? Object.entries(m.datasets).map(([k, v]) => `${k}: ${v}`).join(", ") : "";
    sayHtml(`recorded ${m.steps} steps${link}${ds ? " · datasets " + ds : ""}${m.notes ? " · " + m.notes.join("; ") : ""}`);
    return;
  }
  if (m.type === "ack") {
    state.paused = m.paused; state.recording = m.recording; state.reality = m.reality; state.branches = m.branches;
    if (m.of === "reset" || m.of === "reality") { flushAudio(); $("context").textContent = m.context; }
    if (m.of === "branch_restore") flushAudio();
    if (m.of.startsWith("branch")) say(`${m.of === "branch_save" ? "saved" : "back to"} branch at step ${m.t}`);
    syncButtons();
  }
}

function onHello(h) {
  state.hello = h;
  $("world").textContent = h.world;
  $("context").textContent = h.context.label;
  $("episode").max = Math.max(0, h.context.count - 1);
  const video = h.streams.find((s) => s.kind === "video");
  if (video) for (const id of ["model", "real"]) { $(id).height = video.shape[0]; $(id).width = video.shape[1]; }
  buildTouch(h.streams.filter((s) => s.kind === "touch"));
  if (!h.action.discrete && h.action.shape[0] >= 2) { $("stick").hidden = false; }
  $("btn-reality").disabled = !h.reality.available;
  $("btn-reality").title = h.reality.available ? "show the true world beside the model" : h.reality.reason;
  $("keys").textContent = `${h.world} at ${h.fps} fps · ${keyHelp(h.keys)} · space pause · R reset · B save · V back`;
  setStatus("live", "live");
  setInterval(() => send({ type: "ping", t: performance.now() }), 1000);
}

function keyHelp(bindings) {  // "↑/W up · ↓/S down · … · 1-9 choice by number"
  const arrows = { ArrowUp: "↑", ArrowDown: "↓", ArrowLeft: "←", ArrowRight: "→" };
  const screen = { ArrowUp: "up", KeyW: "up", ArrowDown: "down", KeyS: "down",
                   ArrowLeft: "left", KeyA: "left", ArrowRight: "right", KeyD: "right" };
  const groups = new Map();
  let digits = 0;
  for (const [k, v] of Object.entries(bindings)) {
    if (k.startsWith("Digit")) { digits++; continue; }
    const what = Array.isArray(v) ? screen[k] || v.join() : v;  // continuous: the direction on screen
    groups.set(what, [...(groups.get(what) || []), arrows[k] || k.replace("Key", "")]);
  }
  const parts = [...groups].map(([what, ks]) => `${ks.join("/")} ${what}`);
  if (digits) parts.push(`1-${digits} action by number`);
  return parts.join(" · ");
}

// ---------- one step ----------
function onStep(buf) {
  const view = new DataView(buf);
  const n = view.getUint32(4, true);
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, n)));
  const body = 8 + n;
  state.lastHeader = head;
  state.frames++;
  const now = performance.now();
  state.fpsWindow.push(now);
  while (state.fpsWindow[0] < now - 1000) state.fpsWindow.shift();
  let sawReal = false;
  for (const b of head.blobs) {
    const bytes = new Uint8Array(buf, body + b.offset, b.length);
    if (b.kind === "video") { drawFrame(b.stream === "model" ? $("model") : $("real"), b, bytes); sawReal ||= b.stream === "real"; }
    else if (b.kind === "audio" && b.stream === "model") playAudio(bytes, b.rate);
  }
  $("real-view").hidden = !sawReal;
  drawTouch(head.values.model);
  drawProprio(head.values);
  $("step-ms").textContent = head.step_ms.toFixed(1);
  $("step-t").textContent = `step ${head.t}`;
}

function drawFrame(canvas, b, bytes) {
  const ctx = canvas.getContext("2d");
  if (b.format === "raw") {
    const [h, w] = b.shape;
    const img = ctx.createImageData(w, h);
    for (let i = 0, j = 0; i < w * h * 3; i += 3, j += 4) {
      img.data[j] = bytes[i]; img.data[j + 1] = bytes[i + 1]; img.data[j + 2] = bytes[i + 2]; img.data[j + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  } else {
    const blob = new Blob([bytes.slice()], { type: `image/${b.format}` });
    createImageBitmap(blob).then((bmp) => ctx.drawImage(bmp, 0, 0));
  }
}

// ---------- touch and proprioception ----------
const touchViews = {};
function buildTouch(streams) {
  const root = $("touch");
  root.innerHTML = "";
  for (const s of streams) {
    const c = document.createElement("canvas");
    const ring = s.shape.length === 1 && /ring/.test(s.key);
    c.width = ring ? 120 : 240; c.height = ring ? 120 : (s.shape.length === 2 ? 240 * s.shape[0] / s.shape[1] : 40);
    c.title = s.key;
    root.append(c);
    touchViews[s.key] = { canvas: c, shape: s.shape, ring, peak: 1e-6 };
  }
}

function heat(v) {  // 0..1 -> dark blue .. yellow
  const r = Math.round(255 * Math.min(1, v * 1.8)), g = Math.round(255 * Math.max(0, v * 1.4 - 0.3));
  return `rgb(${r},${g},${Math.round(90 * (1 - v))})`;
}

function drawTouch(values) {
  if (!values) return;
  for (const [key, tv] of Object.entries(touchViews)) {
    const vals = (values[key] || []).flat(2).map((x) => (x == null ? 0 : x));
    tv.peak = Math.max(tv.peak * 0.995, ...vals, 1e-6);  // slowly adapting scale
    const ctx = tv.canvas.getContext("2d"), W = tv.canvas.width, H = tv.canvas.height;
    ctx.clearRect(0, 0, W, H);
    if (tv.ring) {  // sector k centred on angle k*360/n from +x toward +y (image coordinates)
      const n = vals.length, cx = W / 2, cy = H / 2;
      vals.forEach((v, k) => {
        const a = (k * 2 * Math.PI) / n, da = Math.PI / n;
        ctx.beginPath(); ctx.arc(cx, cy, W / 2 - 2, a - da, a + da); ctx.arc(cx, cy, W / 4, a + da, a - da, true);
        ctx.closePath(); ctx.fillStyle = heat(v / tv.peak); ctx.fill();
      });
    } else {
      const rows = tv.shape.length === 2 ? tv.shape[0] : 1, cols = vals.length / rows;
      vals.forEach((v, i) => {
        ctx.fillStyle = heat(v / tv.peak);
        ctx.fillRect((i % cols) * W / cols + 1, Math.floor(i / cols) * H / rows + 1, W / cols - 2, H / rows - 2);
      });
    }
  }
}

function drawProprio(values) {
  const h = state.hello;
  const rows = [];
  const streams = Object.keys(values);
  for (const s of h.streams.filter((s) => s.kind === "proprio" || s.kind === "reward")) {
    const names = s.names || (s.shape.length ? [...Array(s.shape[0]).keys()].map(String) : [s.key.split(".").pop()]);
    const cols = streams.map((st) => [].concat(values[st][s.key] ?? []));
    names.forEach((name, i) => {
      rows.push(`<tr><th>${name}</th>${cols.map((c) => `<td>${c[i] == null ? "–" : c[i].toFixed(2)}</td>`).join("")}</tr>`);
    });
  }
  $("proprio").innerHTML = `<tr><th></th>${streams.map((s) => `<th>${s}</th>`).join("")}</tr>` + rows.join("");
}

// ---------- sound: resample to the context rate, queue in a worklet (gap-free) ----------
const audio = { ctx: null, node: null, on: false, prev: 0, t: 0, next: 0, worklet: false, ready: null };
function ensureAudio() { audio.ready ||= initAudio(); return audio.ready; }
async function initAudio() {
  audio.ctx = new AudioContext({ latencyHint: "interactive" });
  try {
    await audio.ctx.audioWorklet.addModule("/static/audio-worklet.js");
    audio.node = new AudioWorkletNode(audio.ctx, "chunk-player");
    audio.node.port.onmessage = (e) => { $("audio-ms").textContent = (e.data * 1000).toFixed(0); };
    audio.node.connect(audio.ctx.destination);
    audio.worklet = true;
  } catch (err) {  // no AudioWorklet (an insecure origin): schedule buffers back to back instead
    audio.worklet = false;
  }
  audio.on = true;
  syncButtons();
}
async function toggleSound() {
  if (!audio.ready) return ensureAudio();
  await audio.ready;
  audio.on = !audio.on;
  if (audio.on) audio.ctx.resume(); else { audio.ctx.suspend(); flushAudio(); }
  syncButtons();
}

function resample(x, rate) {  // linear, continuous across chunks (carries the last sample and phase)
  const R = audio.ctx.sampleRate, step = rate / R, n = x.length;
  const out = new Float32Array(Math.ceil((n - audio.t) / step) + 1);
  let k = 0, t = audio.t;
  for (; t < n - 1 && k < out.length; t += step) {  // t == n-1 waits for the next chunk (needs x[n])
    const i = Math.floor(t), f = t - i;
    const a = i < 0 ? audio.prev : x[i];
    out[k++] = a + (x[i + 1] - a) * f;
  }
  audio.t = t - n; audio.prev = x[n - 1];
  return out.subarray(0, k);
}

function playAudio(bytes, rate) {
  if (!audio.on || !audio.ctx || (audio.worklet && !audio.node)) return;
  const y = resample(new Float32Array(bytes.slice().buffer), rate);
  if (audio.worklet) { audio.node.port.postMessage(y); return; }
  if (!y.length) return;
  const ctx = audio.ctx, b = ctx.createBuffer(1, y.length, ctx.sampleRate);
  b.copyToChannel(y, 0);
  const src = ctx.createBufferSource(); src.buffer = b; src.connect(ctx.destination);
  if (audio.next < ctx.currentTime + 0.01 || audio.next > ctx.currentTime + 0.4) audio.next = ctx.currentTime + 0.06;
  src.start(audio.next); audio.next += b.duration;
  $("audio-ms").textContent = ((audio.next - ctx.currentTime) * 1000).toFixed(0);
}

function flushAudio() { if (audio.node) audio.node.port.postMessage("flush"); audio.next = 0; audio.t = 0; audio.prev = 0; }

// ---------- input ----------
function sendKeys() { send({ type: "action", keys: [...state.held] }); }
const CONTROL_KEYS = { Space: () => togglePause(), KeyR: () => reset(), KeyB: () => send({ type: "branch_save" }),
                       KeyV: () => send({ type: "branch_restore" }) };

window.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT") return;
  ensureAudio();  // a key press is a user gesture: the browser lets sound start now
  if (CONTROL_KEYS[e.code]) { if (!e.repeat) CONTROL_KEYS[e.code](); e.preventDefault(); return; }
  if (!state.hello || !(e.code in state.hello.keys)) return;
  e.preventDefault();
  if (!state.held.has(e.code)) { state.held.add(e.code); sendKeys(); }
});
window.addEventListener("keyup", (e) => { if (state.held.delete(e.code)) sendKeys(); });
window.addEventListener("blur", () => { if (state.held.size) { state.held.clear(); sendKeys(); } });

for (const b of document.querySelectorAll("#dpad button")) {
  const press = (down) => (e) => {
    e.preventDefault();
    if (down) state.held.add(b.dataset.key); else state.held.delete(b.dataset.key);
    b.classList.toggle("held", down);
    sendKeys();
  };
  b.addEventListener("pointerdown", press(true));
  for (const ev of ["pointerup", "pointerleave", "pointercancel"]) b.addEventListener(ev, press(false));
}

(function stick() {  // drag inside the circle: a continuous (x, y) action in [-1, 1]
  const c = $("stick");
  let dragging = false;
  const draw = (x, y) => {
    const g = c.getContext("2d"); g.clearRect(0, 0, 96, 96);
    g.fillStyle = "#5aa9ff"; g.beginPath(); g.arc(48 + x * 40, 48 + y * 40, 10, 0, 2 * Math.PI); g.fill();
  };
  const move = (e) => {
    if (!dragging) return;
    const r = c.getBoundingClientRect();
    let x = ((e.clientX - r.left) / r.width) * 2 - 1, y = ((e.clientY - r.top) / r.height) * 2 - 1;
    const m = Math.hypot(x, y); if (m > 1) { x /= m; y /= m; }
    draw(x, y);
    send({ type: "action", screen: [x, y] });  // the server maps screen directions to the action's axes
  };
  c.addEventListener("pointerdown", (e) => { dragging = true; c.setPointerCapture(e.pointerId); move(e); });
  c.addEventListener("pointermove", move);
  c.addEventListener("pointerup", () => { dragging = false; draw(0, 0); sendKeys(); });
  draw(0, 0);
})();

// ---------- buttons ----------
function togglePause() { send({ type: state.paused ? "resume" : "pause" }); }
function reset() { send({ type: "reset", episode: Math.max(0, parseInt($("episode").value || "0", 10)) }); }
$("btn-pause").onclick = togglePause;
$("btn-step").onclick = () => send({ type: "step" });
$("btn-reset").onclick = reset;
$("btn-save").onclick = () => send({ type: "branch_save" });
$("btn-restore").onclick = () => send({ type: "branch_restore" });
$("btn-record").onclick = () => send({ type: state.recording ? "record_stop" : "record_start" });
$("btn-reality").onclick = () => send({ type: "reality", on: !state.reality });
$("btn-sound").onclick = toggleSound;
document.addEventListener("pointerdown", (e) => { if (e.target.id !== "btn-sound") ensureAudio(); });

function syncButtons() {
  $("btn-pause").textContent = state.paused ? "resume" : "pause";
  $("btn-step").disabled = !state.paused;
  $("btn-restore").disabled = !state.branches.includes("default");
  $("btn-record").textContent = state.recording ? "■ stop recording" : "● record";
  $("btn-record").classList.toggle("on", state.recording);
  $("btn-reality").classList.toggle("on", state.reality);
  $("btn-sound").textContent = audio.on ? "sound off" : "sound on";
  if (!state.closed) {
    if (state.recording) setStatus("recording", "rec");
    else setStatus(state.paused ? "paused" : "live", state.paused ? "paused" : "live");
  }
}

function setStatus(text, cls) { const s = $("status"); s.textContent = text; s.className = `pill ${cls}`; }
function say(text, error = false) { const m = $("message"); m.textContent = text; m.classList.toggle("error", error); }
function sayHtml(html) { const m = $("message"); m.innerHTML = html; m.classList.remove("error"); }

setInterval(() => { $("fps").textContent = state.fpsWindow.filter((t) => t > performance.now() - 1000).length.toFixed(1); }, 250);
connect();
