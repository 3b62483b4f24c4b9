// The microphone's audio thread: the device's samples (mono: the channels averaged) -> the model's rate through a
// proper low-pass (dsp.js Resampler) -> optionally the simulated phone line -> 16-bit PCM in chunks of
// `chunkMs`, posted to the page (which sends them over the WebSocket) with the input's level.
//
// Messages from the page: {phone: true|false} switches the phone line (its filters start afresh).
// Messages to the page: {pcm: ArrayBuffer (Int16, little-endian on every platform browsers run on), level: dBFS}.

import { levelDb, PhoneLine, Resampler, toPcm16 } from "./dsp.js";

class Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate, chunkMs, phone } = options.processorOptions;
    this.rate = targetRate;
    this.resampler = new Resampler(sampleRate, targetRate); // sampleRate: the context's (a worklet global)
    this.phone = phone ? new PhoneLine(targetRate) : null;
    this.chunk = new Int16Array(Math.round((targetRate * chunkMs) / 1000));
    this.filled = 0;
    this.energy = 0;
    this.frames = 0;
    this.port.onmessage = (event) => {
      if ("phone" in event.data) this.phone = event.data.phone ? new PhoneLine(this.rate) : null;
    };
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true; // not connected yet, or the track ended
    const n = channels[0].length;
    const mono = new Float32Array(n);
    for (const channel of channels) for (let i = 0; i < n; i++) mono[i] += channel[i] / channels.length;
    for (let i = 0; i < n; i++) this.energy += mono[i] * mono[i];
    this.frames += n;
    for (const x of this.resampler.push(mono)) {
      this.chunk[this.filled++] = this.phone ? this.phone.process(x) : toPcm16(x);
      if (this.filled === this.chunk.length) this.flush();
    }
    return true;
  }

  flush() {
    const level = levelDb([Math.sqrt(this.energy / Math.max(1, this.frames))]);
    const pcm = this.chunk.slice().buffer;
    this.port.postMessage({ pcm, level }, [pcm]);
    this.filled = 0;
    this.energy = 0;
    this.frames = 0;
  }
}

registerProcessor("gruasr-capture", Capture);
