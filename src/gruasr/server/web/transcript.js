// Transcripts on the page: a live final's words, a recorded file's legs with their word timelines, and the
// downloads (JSON as the server sent it; SRT and WebVTT built from the same segments exactly as the server's
// gruasr.subtitles writes them: the browser tests compare them with the server's own response_format=srt|vtt).

// Seconds as m:ss.s (h:mm:ss.s past an hour), for people.
export function clock(seconds) {
  const tenths = Math.round(seconds * 10);
  const h = Math.floor(tenths / 36000);
  const m = Math.floor((tenths % 36000) / 600);
  const s = ((tenths % 600) / 10).toFixed(1).padStart(4, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

// A word as a <span> shaded by its confidence (--conf, 0..1; a dotted underline below 0.5, so the shading does
// not rely on colour alone); the exact figures in its title.
export function wordSpan(word, start, end, conf) {
  const span = document.createElement("span");
  span.className = "word";
  span.textContent = word;
  if (conf !== undefined && conf !== null) {
    span.style.setProperty("--conf", conf.toFixed(3));
    if (conf < 0.5) span.classList.add("unsure");
    span.title = `${word}: ${start.toFixed(2)}-${end.toFixed(2)} s, confidence ${conf.toFixed(2)}`;
  } else {
    span.title = `${word}: ${start.toFixed(2)}-${end.toFixed(2)} s`;
  }
  return span;
}

// One line of words (spaces between them) with its time range in front: a live final or a file's segment.
export function utterance(start, end, words, text, leg) {
  const li = document.createElement("li");
  li.className = "utterance";
  if (leg) li.dataset.leg = leg;
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = `${clock(start)}–${clock(end)}`;
  const body = document.createElement("span");
  body.className = "text";
  if (words.length) {
    words.forEach((w, n) => {
      if (n) body.append(" ");
      body.append(wordSpan(w.word, w.start, w.end, w.conf ?? w.confidence));
    });
  } else {
    body.textContent = text;
  }
  li.append(time, " ", body);
  return li;
}

// verbose_json's flat `words` shared out to its `segments`: each segment's text is its words joined by spaces, in
// order (gruasr.server.rest), so segment i takes the next as many words as its text has.
export function segmentWords(result) {
  const words = result.words ?? [];
  let next = 0;
  return (result.segments ?? []).map((segment) => {
    const count = segment.text ? segment.text.split(" ").length : 0;
    const own = words.slice(next, next + count);
    next += count;
    const fits = own.length === count && own.every((w) => w.start >= segment.start - 1e-3 && w.end <= segment.end + 1e-3);
    return { ...segment, words: fits ? own : [] };
  });
}

// The legs of a result: [{leg, channel, segments}], A first; a mono file is one leg with leg null.
export function legsOf(result) {
  const byLeg = new Map();
  for (const segment of segmentWords(result)) {
    const key = segment.leg ?? null;
    if (!byLeg.has(key)) byLeg.set(key, { leg: key, channel: segment.channel ?? 0, segments: [] });
    byLeg.get(key).segments.push(segment);
  }
  return [...byLeg.values()].sort((a, b) => a.channel - b.channel);
}

// A leg as a <section>: heading, a word timeline over the file's duration (a picture: hidden from screen
// readers, which read the same words in the list below), its segments with times.
export function legSection(leg, duration, legCount) {
  const section = document.createElement("section");
  section.className = "leg";
  section.dataset.leg = leg.leg ?? "";
  section.dataset.text = leg.segments.map((s) => s.text).join(" ");
  const heading = document.createElement("h3");
  heading.textContent = leg.leg ? `Leg ${leg.leg} (channel ${leg.channel})` : "Transcript";
  if (legCount > 1) section.setAttribute("aria-label", heading.textContent);
  const timeline = document.createElement("div");
  timeline.className = "timeline";
  timeline.setAttribute("aria-hidden", "true");
  const span = Math.max(duration, 1e-3);
  for (const segment of leg.segments) {
    for (const w of segment.words) {
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.style.left = `${(100 * w.start) / span}%`;
      mark.style.width = `${Math.max(0.3, (100 * (w.end - w.start)) / span)}%`;
      mark.style.setProperty("--conf", (w.confidence ?? 1).toFixed(3));
      mark.title = `${w.word} ${clock(w.start)}`;
      mark.textContent = w.word;
      timeline.append(mark);
    }
  }
  const list = document.createElement("ol");
  list.className = "segments";
  for (const segment of leg.segments) {
    list.append(utterance(segment.start, segment.end, segment.words, segment.text, null));
  }
  if (!leg.segments.length) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = "Nothing was said.";
    section.append(heading, empty);
    return section;
  }
  section.append(heading, timeline, list);
  return section;
}

// -- downloads ----------------------------------------------------------------------------------------------

// Seconds as HH:MM:SS<sep>mmm (gruasr.subtitles.timestamp).
function timestamp(seconds, sep) {
  const ms = Math.round(seconds * 1000);
  const h = Math.floor(ms / 3600000);
  const m = Math.floor((ms % 3600000) / 60000);
  const s = Math.floor((ms % 60000) / 1000);
  const pad = (v, n) => String(v).padStart(n, "0");
  return `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}${sep}${pad(ms % 1000, 3)}`;
}

// The segments as SubRip or WebVTT (gruasr.subtitles.subtitles: one cue per segment, the leg as the speaker
// when the file has several channels).
export function subtitles(segments, format) {
  const sep = format === "srt" ? "," : ".";
  const lines = format === "vtt" ? ["WEBVTT", ""] : [];
  segments.forEach((segment, n) => {
    if (format === "srt") lines.push(String(n + 1));
    lines.push(`${timestamp(segment.start, sep)} --> ${timestamp(segment.end, sep)}`);
    const leg = segment.leg ?? null;
    if (leg === null) lines.push(segment.text);
    else lines.push(format === "srt" ? `${leg}: ${segment.text}` : `<v ${leg}>${segment.text}`);
    lines.push("");
  });
  return lines.join("\n") + (lines.length ? "\n" : "");
}

// The three downloads of a result: {json, srt, vtt} -> {text, type}.
export function downloads(result) {
  return {
    json: { text: JSON.stringify(result, null, 2) + "\n", type: "application/json" },
    srt: { text: subtitles(result.segments ?? [], "srt"), type: "application/x-subrip" },
    vtt: { text: subtitles(result.segments ?? [], "vtt"), type: "text/vtt" },
  };
}
