// A gap-free player: chunks arrive over the WebSocket, are queued here, and are read out one render
// quantum (128 samples) at a time, so there is no seam between chunks. On underrun the output fades
// out (no click) and waits for `prebuffer` samples before fading back in.
class ChunkPlayer extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];      // Float32Arrays at the context's sample rate
    this.offset = 0;      // read position in queue[0]
    this.queued = 0;      // samples waiting
    this.playing = false;
    this.gain = 0;
    this.last = 0;
    this.prebuffer = Math.round(sampleRate * 0.06);
    this.maxQueued = Math.round(sampleRate * 0.35);
    this.port.onmessage = (e) => {
      if (e.data === "flush") { this.queue = []; this.offset = 0; this.queued = 0; this.playing = false; return; }
      this.queue.push(e.data);
      this.queued += e.data.length;
      while (this.queued - this.offset > this.maxQueued && this.queue.length > 1) {  // too far behind: drop
        this.queued -= this.queue[0].length; this.queue.shift(); this.offset = 0;
      }
    };
    this.reportEvery = 0;
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    const ramp = 1 / 256;
    if (!this.playing && this.queued - this.offset >= this.prebuffer) this.playing = true;
    for (let i = 0; i < out.length; i++) {
      let s = this.last;  // on underrun, hold the last sample while fading out: no step, no click
      if (this.playing && this.queue.length) {
        const v = this.queue[0][this.offset++];
        s = this.last = Number.isFinite(v) ? v : this.last;
        if (this.offset >= this.queue[0].length) { this.queued -= this.queue[0].length; this.queue.shift(); this.offset = 0; }
        this.gain = Math.min(1, this.gain + ramp);
      } else {
        this.playing = false;
        this.gain = Math.max(0, this.gain - ramp);
      }
      out[i] = s * this.gain;
    }
    if (++this.reportEvery >= 16) {
      this.reportEvery = 0;
      this.port.postMessage((this.queued - this.offset) / sampleRate);
    }
    return true;
  }
}
registerProcessor("chunk-player", ChunkPlayer);
