// The page of `gruasr serve` (docs/serving.md, "Browser page"): the microphone over the server's Vosk WebSocket
// (worklet.js resamples to the model's rate, optionally through the simulated phone line), and recorded files
// through POST /v1/audio/transcriptions. No framework and no build step; no inline script (the page's CSP).

import { levelDb, spectrumDb } from "./dsp.js";
import { downloads, legSection, legsOf, utterance } from "./transcript.js";

const meta = (name) => document.querySelector(`meta[name="gruasr-${name}"]`)?.content ?? "";
const RATE = Number(meta("sample-rate")) || 8000; // the streaming model's rate: what the WebSocket is sent
const KEYS_REQUIRED = meta("auth") === "required";
const CHUNK_MS = 100; // one binary message: 100 ms of 16-bit PCM (1600 bytes at 8 kHz)
const QUEUE_LIMIT = 100; // chunks kept while the socket connects (10 s); older ones are dropped
const TOKEN_KEY = "gruasr.token";

const $ = (id) => document.getElementById(id);
const ui = {
  token: $("token"),
  mic: $("mic"),
  phone: $("phone"),
  monitor: $("monitor"),
  level: $("level"),
  levelText: $("level-text"),
  spectrum: $("spectrum"),
  state: $("state"),
  finals: $("finals"),
  partial: $("partial"),
  file: $("file"),
  drop: $("drop"),
  fileState: $("file-state"),
  downloads: $("downloads"),
  legs: $("legs"),
};

// -- the key ------------------------------------------------------------------------------------------------

$("token-row").hidden = !KEYS_REQUIRED;
$("token-row").addEventListener("submit", (event) => event.preventDefault()); // Enter in the key field: nothing to send
ui.token.value = sessionStorage.getItem(TOKEN_KEY) ?? "";
ui.token.addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, ui.token.value.trim()));
const token = () => ui.token.value.trim();

function setState(element, state, text) {
  element.dataset.state = state;
  element.textContent = text;
}

// -- the microphone -----------------------------------------------------------------------------------------

function micError(err) {
  const name = err?.name ?? "";
  if (name === "NotAllowedError" || name === "SecurityError") {
    return "Microphone permission denied: allow this page to use the microphone (the icon in the address bar).";
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") return "No microphone found: plug one in.";
  if (name === "NotReadableError") return "The microphone is busy or unavailable (another program may hold it).";
  return `The microphone could not start: ${err?.message ?? err}`;
}

// Why a WebSocket closed, as the state line says it: [state, text].
function closeState(event, session) {
  const reason = event.reason ? `: ${event.reason}` : "";
  if (event.code === 1000 && session.ending) return ["stopped", "Stopped."];
  if (event.code === 1000) return ["stopped", `The server ended the session${reason}.`];
  if (event.code === 1008) return ["refused", `Refused by the server${reason || ": policy violation"}`];
  if (event.code === 1013) return ["full", `Server full, try again later${reason}`];
  if (event.code === 1003) return ["error", `The server refused a message: ${session.lastError || event.reason}`];
  if (event.code === 1009) return ["error", "The server refused a message as too large."];
  if (!session.opened) return ["gone", "Server gone: could not connect to the server."];
  const why = {
    1001: "it is shutting down",
    1006: "the connection was lost",
    1011: "it failed",
    1012: "it stopped or restarted",
  }[event.code];
  return ["gone", `Server gone: ${why ?? "the connection closed"} (code ${event.code}${reason}).`];
}

class Session {
  constructor() {
    this.opened = false;
    this.ending = false;
    this.done = false;
    this.queue = [];
    this.lastError = "";
    this.playAt = 0;
  }

  async start() {
    setState(ui.state, "connecting", "Connecting: asking for the microphone…");
    if (!navigator.mediaDevices?.getUserMedia || typeof AudioWorkletNode === "undefined") {
      throw new Error("no microphone access here: open the page over HTTPS (or on this machine: localhost)");
    }
    const constraints = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: constraints });
    if (this.done) return this.release();
    this.context = new AudioContext({ latencyHint: "interactive" });
    await this.context.audioWorklet.addModule("/web/worklet.js");
    if (this.done) return this.release();
    const source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, "gruasr-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      processorOptions: { targetRate: RATE, chunkMs: CHUNK_MS, phone: ui.phone.checked },
    });
    this.node.port.onmessage = (event) => this.chunk(event.data);
    source.connect(this.node);
    setState(ui.state, "connecting", "Connecting to the server…");
    this.connect();
  }

  connect() {
    const url = new URL("/", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (token()) url.searchParams.set("token", token());
    this.ws = new WebSocket(url);
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => {
      this.opened = true;
      this.ws.send(JSON.stringify({ config: { sample_rate: RATE, words: 1 } }));
      for (const pcm of this.queue) this.ws.send(pcm);
      this.queue = [];
      if (!this.ending) setState(ui.state, "listening", `Listening (${RATE} Hz${ui.phone.checked ? ", phone line" : ""}).`);
    };
    this.ws.onmessage = (event) => this.reply(JSON.parse(event.data));
    this.ws.onclose = (event) => this.closed(event);
  }

  chunk({ pcm, level }) {
    ui.level.value = Math.max(-60, Math.min(0, level));
    ui.levelText.textContent = Number.isFinite(level) ? `${Math.round(level)} dB` : "silent";
    const samples = Float32Array.from(new Int16Array(pcm), (v) => v / 32768);
    drawSpectrum(samples);
    if (ui.monitor.checked) this.play(samples);
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(pcm);
    else if (!this.ending) {
      this.queue.push(pcm);
      if (this.queue.length > QUEUE_LIMIT) this.queue.shift();
    }
  }

  // What is sent, played back at the model's rate (the browser resamples it for the speakers).
  play(samples) {
    const buffer = this.context.createBuffer(1, samples.length, RATE);
    buffer.copyToChannel(samples, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    this.playAt = Math.max(this.playAt, this.context.currentTime + 0.05);
    source.start(this.playAt);
    this.playAt += buffer.duration;
  }

  reply(message) {
    if ("partial" in message) {
      ui.partial.textContent = message.partial;
      return;
    }
    if ("error" in message) {
      this.lastError = message.error;
      return;
    }
    ui.partial.textContent = "";
    const words = message.result ?? [];
    if (!message.text) return; // an endpoint with nothing said
    const start = words.length ? words[0].start : 0;
    const end = words.length ? words[words.length - 1].end : 0;
    ui.finals.append(utterance(start, end, words, message.text, null));
  }

  // Stop the microphone; the server then sends the final of what was said and closes (1000).
  stop() {
    this.ending = true;
    this.release();
    if (this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send('{"eof" : 1}');
      setState(ui.state, "stopping", "Finishing: waiting for the last result…");
      this.timer = setTimeout(() => this.ws.close(1000), 30000);
    } else if (this.ws) {
      this.ws.close(1000);
    } else {
      this.finish("stopped", "Stopped.");
    }
  }

  release() {
    this.stream?.getTracks().forEach((track) => track.stop());
    this.node?.port.close();
    if (this.context && this.context.state !== "closed") this.context.close();
    this.stream = null;
  }

  closed(event) {
    clearTimeout(this.timer);
    this.release();
    const [state, text] = closeState(event, this);
    this.finish(state, text);
  }

  finish(state, text) {
    this.done = true;
    ui.partial.textContent = "";
    setState(ui.state, state, text);
    setMicButton(false);
    if (session === this) session = null;
  }
}

let session = null;

function setMicButton(on) {
  ui.mic.setAttribute("aria-pressed", String(on));
  ui.mic.textContent = on ? "Stop microphone" : "Start microphone";
}

ui.mic.addEventListener("click", async () => {
  if (session) {
    session.stop();
    return;
  }
  const current = new Session();
  session = current;
  setMicButton(true);
  try {
    await current.start();
  } catch (err) {
    current.release();
    current.finish("error", err?.name ? micError(err) : `Error: ${err.message ?? err}`);
  }
});

ui.phone.addEventListener("change", () => session?.node?.port.postMessage({ phone: ui.phone.checked }));

// -- what is sent: its spectrum, 0 to half the model's rate, with the telephone band marked ---------------------

function drawSpectrum(samples) {
  const canvas = ui.spectrum;
  const g = canvas.getContext("2d");
  const style = getComputedStyle(canvas);
  const { width, height } = canvas;
  const bins = spectrumDb(samples, 256);
  const floor = -100;
  const top = -20;
  g.clearRect(0, 0, width, height);
  g.fillStyle = style.getPropertyValue("--bar").trim() || "#2a6f97";
  const barWidth = width / bins.length;
  bins.forEach((db, k) => {
    const h = (height * (Math.min(top, Math.max(floor, db)) - floor)) / (top - floor);
    g.fillRect(k * barWidth, height - h, Math.max(1, barWidth - 0.5), h);
  });
  g.strokeStyle = style.getPropertyValue("--band").trim() || "#b5651d";
  g.setLineDash([3, 3]);
  for (const hz of [300, 3400]) {
    const x = (width * hz) / (RATE / 2);
    g.beginPath();
    g.moveTo(x, 0);
    g.lineTo(x, height);
    g.stroke();
  }
  g.setLineDash([]);
  canvas.dataset.level = String(Math.round(levelDb(samples)));
}

// -- a recorded file ----------------------------------------------------------------------------------------

const links = [];

async function transcribe(file) {
  setState(ui.fileState, "working", `Transcribing ${file.name}…`);
  ui.downloads.hidden = true;
  ui.legs.replaceChildren();
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("model", "gruasr");
  form.append("response_format", "verbose_json");
  form.append("timestamp_granularities[]", "word");
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  let response;
  try {
    response = await fetch("/v1/audio/transcriptions", { method: "POST", body: form, headers });
  } catch {
    setState(ui.fileState, "gone", "Server gone: could not reach the server.");
    return;
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body?.error?.message ?? `HTTP ${response.status}`;
    const state = { 401: "refused", 503: "gone" }[response.status] ?? "error";
    const prefix = { 401: "Refused by the server", 503: "Server unavailable", 413: "Too large" }[response.status];
    setState(ui.fileState, state, `${prefix ?? "The server could not transcribe it"}: ${message}`);
    return;
  }
  show(file.name, body);
}

function show(name, result) {
  const legs = legsOf(result);
  ui.legs.replaceChildren(...legs.map((leg) => legSection(leg, result.duration, legs.length)));
  ui.legs.dataset.count = String(legs.length);
  const who = legs.length > 1 ? `, ${legs.length} legs` : "";
  const said = result.text ? "" : ": nothing was said";
  setState(ui.fileState, "done", `${name}: ${result.duration.toFixed(1)} s${who}${said}.`);
  links.splice(0).forEach((url) => URL.revokeObjectURL(url));
  const stem = name.replace(/\.[^.]*$/, "") || "transcript";
  for (const [format, { text, type }] of Object.entries(downloads(result))) {
    const link = $(`download-${format}`);
    const url = URL.createObjectURL(new Blob([text], { type }));
    links.push(url);
    link.href = url;
    link.download = `${stem}.${format}`;
  }
  ui.downloads.hidden = false;
}

ui.file.addEventListener("change", () => {
  if (ui.file.files.length) transcribe(ui.file.files[0]);
});
ui.drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  ui.drop.classList.add("over");
});
ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("over"));
ui.drop.addEventListener("drop", (event) => {
  event.preventDefault();
  ui.drop.classList.remove("over");
  if (event.dataTransfer.files.length) transcribe(event.dataTransfer.files[0]);
});

document.body.dataset.ready = "true"; // for tests: the module ran
