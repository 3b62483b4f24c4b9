// The signal path of the page's microphone, as pure functions and small stateful classes (no DOM), so that the
// AudioWorklet (worklet.js) runs them on the audio thread and the tests run them in the page against the
// project's Python (gruasr.audio.g711, gruasr.audio.telephony).
//
//   mic (the device's rate, 44.1 or 48 kHz) -> Resampler (Kaiser-windowed sinc low-pass, then the model's rate)
//   -> [phone line: PhoneLine = 300 Hz high-pass + 3400 Hz low-pass, G.711 mu-law encode and decode]
//   -> 16-bit PCM, sent over the Vosk WebSocket.

// -- resampling: a low-pass before decimation ----------------------------------------------------------------

// The modified Bessel function of the first kind, order 0 (the Kaiser window's), by its power series.
function besselI0(x) {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 64 && term > sum * 1e-12; k++) {
    term *= q / (k * k);
    sum += term;
  }
  return sum;
}

// Any rate down (or up) to `outRate`, chunk by chunk: each output sample is the input weighted by a windowed
// sinc centred on its time, cut off below the lower Nyquist frequency so that nothing above it folds back into
// the band (decimation without it aliases 4-24 kHz of a 48 kHz microphone into the 0-4 kHz the model hears).
// Kaiser window (beta from the attenuation, Kaiser's formulas): passband to `passHz`, at least `stopDb` of
// attenuation from the output's Nyquist frequency up. Fractional positions use a table of `phases` kernels, each
// normalised to unit DC gain.
export class Resampler {
  constructor(inRate, outRate, { passHz = null, stopDb = 70, phases = 256 } = {}) {
    if (!(inRate > 0 && outRate > 0)) throw new Error(`bad rates ${inRate} -> ${outRate}`);
    this.inRate = inRate;
    this.outRate = outRate;
    this.step = inRate / outRate; // input samples per output sample
    const nyquist = Math.min(inRate, outRate) / 2;
    const pass = passHz ?? 0.875 * nyquist; // 3500 Hz at 8 kHz: the telephone band (to 3400 Hz) is kept whole
    const cutoff = (pass + nyquist) / 2 / inRate; // cycles per input sample, -6 dB point
    const width = (nyquist - pass) / inRate; // transition band, cycles per input sample
    const beta = stopDb > 50 ? 0.1102 * (stopDb - 8.7) : 0.5842 * (stopDb - 21) ** 0.4 + 0.07886 * (stopDb - 21);
    const taps = Math.ceil((stopDb - 8) / (2.285 * 2 * Math.PI * width)) + 1;
    this.half = Math.ceil(taps / 2); // kernel support: (-half, half] input samples around the output's time
    this.phases = phases;
    const length = 2 * this.half;
    this.table = new Float32Array((phases + 1) * length);
    const norm = besselI0(beta);
    for (let p = 0; p <= phases; p++) {
      let sum = 0;
      const row = p * length;
      for (let j = 0; j < length; j++) {
        const d = p / phases - (j - this.half + 1); // output time minus the tap's input time
        const r = d / this.half;
        const window = Math.abs(r) >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - r * r)) / norm;
        const x = 2 * cutoff * d;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        const h = 2 * cutoff * sinc * window;
        this.table[row + j] = h;
        sum += h;
      }
      for (let j = 0; j < length; j++) this.table[row + j] /= sum;
    }
    // the input kept: zeros before the first sample, so the first outputs exist at once
    this.buf = new Float32Array(4096);
    this.count = this.half - 1;
    this.t = this.half - 1; // the next output's time, in samples of `buf`
  }

  // Input samples (any number) -> the output samples they complete (a Float32Array, possibly empty).
  push(input) {
    if (this.count + input.length > this.buf.length) {
      const grown = new Float32Array(2 * (this.count + input.length));
      grown.set(this.buf.subarray(0, this.count));
      this.buf = grown;
    }
    this.buf.set(input, this.count);
    this.count += input.length;
    const out = [];
    const length = 2 * this.half;
    while (Math.floor(this.t) + this.half < this.count) {
      const i = Math.floor(this.t);
      const p = Math.round((this.t - i) * this.phases);
      const row = p * length;
      const first = i - this.half + 1;
      let acc = 0;
      for (let j = 0; j < length; j++) acc += this.buf[first + j] * this.table[row + j];
      out.push(acc);
      this.t += this.step;
    }
    const drop = Math.max(0, Math.floor(this.t) - this.half + 1);
    if (drop > 0) {
      this.buf.copyWithin(0, drop, this.count);
      this.count -= drop;
      this.t -= drop;
    }
    return Float32Array.from(out);
  }
}

// -- the telephone line ---------------------------------------------------------------------------------------

// A biquad (RBJ's audio EQ cookbook, bilinear transform with the cutoff pre-warped: the digital Butterworth
// sections scipy.signal.butter gives), transposed direct form II.
class Biquad {
  constructor(kind, hz, q, rate) {
    const w = (2 * Math.PI * hz) / rate;
    const alpha = Math.sin(w) / (2 * q);
    const c = Math.cos(w);
    const a0 = 1 + alpha;
    const b = kind === "lowpass" ? [(1 - c) / 2, 1 - c, (1 - c) / 2] : [(1 + c) / 2, -(1 + c), (1 + c) / 2];
    this.b0 = b[0] / a0;
    this.b1 = b[1] / a0;
    this.b2 = b[2] / a0;
    this.a1 = (-2 * c) / a0;
    this.a2 = (1 - alpha) / a0;
    this.z1 = 0;
    this.z2 = 0;
  }

  process(x) {
    const y = this.b0 * x + this.z1;
    this.z1 = this.b1 * x - this.a1 * y + this.z2;
    this.z2 = this.b2 * x - this.a2 * y;
    return y;
  }
}

// The Q of each second-order section of an order-n Butterworth filter (n even).
function butterworthQ(order) {
  const qs = [];
  for (let k = 0; k < order / 2; k++) qs.push(1 / (2 * Math.cos(((2 * k + 1) * Math.PI) / (2 * order))));
  return qs;
}

// ITU-T G.711 mu-law, the classic reference arithmetic (Sun's g711.c, as gruasr.audio.g711): 16-bit linear ->
// 8-bit code (bit-inverted, as sent on the line) and back.
const SEG_END = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
const BIAS = 0x84;
const CLIP = 8159;

export function linearToUlaw(pcm16) {
  let value = pcm16 >> 2; // 14 bits
  let mask = 0xff;
  if (value < 0) {
    value = -value;
    mask = 0x7f;
  }
  value = Math.min(value, CLIP) + (BIAS >> 2);
  let seg = 0;
  while (seg < 8 && value > SEG_END[seg]) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  return (((seg << 4) | ((value >> (seg + 1)) & 0xf)) ^ mask) & 0xff;
}

export function ulawToLinear(code) {
  const u = ~code & 0xff;
  const t = (((u & 0x0f) << 3) + BIAS) << ((u & 0x70) >> 4);
  return u & 0x80 ? BIAS - t : t - BIAS;
}

// A float sample in [-1, 1) on the 16-bit grid (what PCM carries), clipped.
export function toPcm16(x) {
  return Math.max(-32768, Math.min(32767, Math.round(x * 32768)));
}

// The simulated line at the model's rate: the G.712 voice band (a 4th-order Butterworth high-pass at 300 Hz and
// low-pass at 3400 Hz, gruasr.audio.telephony's band_limit: ~24 dB per octave outside the band), then G.711
// mu-law encode and decode, sample by sample. `process` takes a float and gives the 16-bit sample sent.
export class PhoneLine {
  constructor(rate, { lowHz = 300, highHz = 3400, order = 4 } = {}) {
    const qs = butterworthQ(order);
    this.sections = [
      ...qs.map((q) => new Biquad("highpass", lowHz, q, rate)),
      ...(highHz < rate / 2 ? qs.map((q) => new Biquad("lowpass", highHz, q, rate)) : []),
    ];
  }

  // The voice band alone: a float in, a float out.
  band(x) {
    let y = x;
    for (const s of this.sections) y = s.process(y);
    return y;
  }

  process(x) {
    return ulawToLinear(linearToUlaw(toPcm16(this.band(x))));
  }
}

// -- analysis for the page's pictures and meter -------------------------------------------------------------

// RMS level of the samples in dB full scale (-Infinity for silence).
export function levelDb(samples) {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return 10 * Math.log10(sum / Math.max(1, samples.length));
}

// Power spectrum (dB) of `samples` in frames of `size` (a power of two) with a Hann window, averaged: size/2 + 1
// bins from 0 Hz to half the rate.
export function spectrumDb(samples, size = 256) {
  const bins = new Float64Array(size / 2 + 1);
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  let frames = 0;
  for (let start = 0; start + size <= samples.length; start += size / 2) {
    for (let i = 0; i < size; i++) {
      re[i] = samples[start + i] * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / size));
      im[i] = 0;
    }
    fft(re, im);
    for (let k = 0; k <= size / 2; k++) bins[k] += re[k] * re[k] + im[k] * im[k];
    frames++;
  }
  const scale = 4 / (size * size * Math.max(1, frames)); // a full-scale sine's bin near 0 dB (Hann: x 4)
  return Array.from(bins, (p) => 10 * Math.log10(p * scale + 1e-12));
}

// In-place radix-2 FFT.
function fft(re, im) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const angle = (-2 * Math.PI) / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(angle * k);
        const wi = Math.sin(angle * k);
        const a = i + k;
        const b = a + len / 2;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}
