"""Streaming recognition: real-time factor, latency of partial and final results, how many concurrent real-time
streams the machine sustains with batch dispatch, and what streaming costs in accuracy.

    python benchmarks/streaming.py [--model DIR] [--data DIR] [--repeat N] [--quick]
                                   [--out bench-results/streaming.json]

The model: --model (a unidirectional model directory), else the bundled streaming model, else the streaming
recipe's architecture (configs/telephone-streaming.toml) with untrained weights: its speed is the trained model's
speed, but then no accuracy is reported. It decodes as it would serve: partials greedy, finals with the model's
own decoding (beam search + LM for the bundled model). Audio: AN4 test utterances at 8 kHz from DIR/an4, each
followed by 1.5 x the endpointer's trailing silence.

- RTF, one thread: every utterance fed in chunks of 40, 100 (the headline), 200 and 400 ms; compute time (feeding
  included) / audio time.
- Partial latency (100 ms chunks): audio time at which a partial result appears minus the end of the audio it
  covers, plus the compute of the chunk that produced it.
- Final latency (100 ms chunks): audio time at which the final result appears minus the end of its last word
  (this includes the endpointer's trailing silence, by design), plus the compute of the chunk that produced it.
- Concurrency: N streams each given 100 ms of audio per tick (features, VAD, convolutions and recurrent steps of
  all of them batched in one `advance`, then their events collected; threads as torch chooses); a tick's wall time
  is the chunk latency of every stream in it. N is sustained in real time when the p95 tick is under the chunk
  (100 ms): then no stream falls behind. The same for N streams advanced one by one, at the largest N, for the
  batching gain.
- WER cost of streaming (a trained model): AN4 test WER through the mu-law line of the bundled bidirectional
  model (offline), of the streaming model offline (whole utterances, no endpointer), and of the streaming model
  streamed (100 ms chunks, endpointer on: what a live call gets), and streamed with two passes (each final from
  the bundled bidirectional model on its utterance's audio; docs/streaming.md, "Two passes"), greedy and with
  each model's own decoding; with two passes also the one-stream RTF and final latency at 100 ms chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from gruasr.audio.telephony import TelephoneChannel
from gruasr.data.corpora.nonspeech import NonSpeechConfig, build_nonspeech
from gruasr.environment import environment
from gruasr.evaluation.invented import invented_words
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.recognizer import DecodeOptions, OfflineRecognizer
from gruasr.streaming import EndpointConfig, StreamingRecognizer
from gruasr.streaming.recognizer import BUNDLED_STREAMING
from gruasr.timing import one_thread

ROOT = Path(__file__).resolve().parents[1]
RATE = 8000
CHUNK_MS = 100  # the headline chunk: latency and concurrency use it
SWEEP_MS = (40, 100, 200, 400)


def _untrained_recognizer() -> OfflineRecognizer:
    from gruasr.bundle import ModelBundle
    from gruasr.data.tokens import TokenTable
    from gruasr.features.cmvn import GlobalCMVN
    from gruasr.models.ctc_model import CTCModel
    from gruasr.training.config import load_config

    config = load_config(ROOT / "configs" / "telephone-streaming.toml")
    model = CTCModel(config.model).eval()
    dim = config.features.dim
    bundle = ModelBundle(model, config.features, GlobalCMVN(torch.zeros(dim), torch.ones(dim)), TokenTable(), {})
    return OfflineRecognizer(bundle, options=DecodeOptions("greedy"))


def _an4_test(data: Path, count: int | None) -> tuple[list[np.ndarray], list[str]]:
    from gruasr.data.corpora.an4 import import_an4
    from gruasr.data.manifest import load_utterance, read_manifest

    work = Path("bench-results") / "streaming-data"
    if not (work / "test.jsonl").is_file():
        import_an4(data / "an4", work)
    utts = read_manifest(work / "test.jsonl")[:count]
    return [load_utterance(u, RATE) for u in utts], [u.text for u in utts]


def _silence_after(endpoint: EndpointConfig) -> np.ndarray:
    """What follows each utterance: 1.5 x the trailing silence, so the endpointer ends it as a live call would."""
    return np.zeros(int(1.5 * endpoint.trailing_silence * RATE), np.float32)


def rtf_and_latency(rec: StreamingRecognizer, audios: list[np.ndarray], chunk_ms: int = CHUNK_MS) -> dict[str, float]:
    chunk = RATE * chunk_ms // 1000
    tail = _silence_after(rec.endpoint)

    def run() -> dict[str, float]:
        compute, audio_s, partial_lags, final_lags = 0.0, 0.0, [], []
        for audio in audios:
            stream = rec.stream()
            signal = np.concatenate([audio, tail])
            for start in range(0, signal.shape[0], chunk):
                began = time.perf_counter()
                events = stream.accept(signal[start : start + chunk])
                spent = time.perf_counter() - began
                compute += spent
                now = stream.seconds
                for e in events:
                    if e.type == "partial":
                        partial_lags.append(now - e.end + spent)
                    elif e.words:
                        final_lags.append(now - e.words[-1].end + spent)
            began = time.perf_counter()
            stream.finish()
            compute += time.perf_counter() - began
            audio_s += signal.shape[0] / RATE
        return {
            "chunk_ms": chunk_ms,
            "rtf_one_thread": compute / audio_s,
            "partial_latency_ms_p50": 1000 * float(np.median(partial_lags)) if partial_lags else float("nan"),
            "final_latency_ms_p50": 1000 * float(np.median(final_lags)) if final_lags else float("nan"),
            "final_latency_ms_p95": 1000 * float(np.percentile(final_lags, 95)) if final_lags else float("nan"),
            "finals": len(final_lags),
        }

    return one_thread(run)


def concurrency(
    rec: StreamingRecognizer, audios: list[np.ndarray], count: int, ticks: int, batched: bool
) -> dict[str, float]:
    chunk = RATE * CHUNK_MS // 1000
    streams = [rec.stream() for _ in range(count)]
    signals = [np.concatenate([audios[i % len(audios)], np.zeros(RATE // 2, np.float32)]) for i in range(count)]
    offsets = [(i * 7 * chunk) % s.shape[0] for i, s in enumerate(signals)]  # streams out of step
    times, finals = [], 0
    for tick in range(ticks):
        began = time.perf_counter()
        for stream, signal, offset in zip(streams, signals, offsets, strict=True):
            start = (offset + tick * chunk) % (signal.shape[0] - chunk)
            stream.feed(signal[start : start + chunk])
        if batched:
            rec.advance(streams)
        else:
            for stream in streams:
                rec.advance([stream])
        finals += sum(e.type == "final" for stream in streams for e in stream.events())
        times.append(time.perf_counter() - began)
    steady = times[2:] if len(times) > 4 else times
    p95 = float(np.percentile(steady, 95))
    return {
        "streams": count,
        "batched": batched,
        "tick_ms_p50": 1000 * float(np.median(steady)),
        "tick_ms_p95": 1000 * p95,
        "real_time": p95 < CHUNK_MS / 1000,
        "finals": finals,
    }


def wer_rows(
    folder: Path, endpoint: EndpointConfig, audios: list[np.ndarray], texts: list[str], nonspeech: Path
) -> list[dict]:
    """AN4 test WER through the mu-law line: the bidirectional model offline, the streaming model (in `folder`)
    offline, streamed, and streamed with the bidirectional model as the second pass of its finals; greedy and
    each model's own decoding. Beside each WER, the words the same path invents
    per minute of the generated non-speech clips in the manifest `nonspeech` (through the same line)."""
    line = TelephoneChannel(codec="ulaw", output_rate=RATE)
    heard = [line.apply(audio, RATE, np.random.default_rng([0, i])) for i, audio in enumerate(audios)]
    tail = _silence_after(endpoint)

    def stream_finals(recognizer: StreamingRecognizer) -> Callable[[np.ndarray], str]:
        def run(audio: np.ndarray) -> str:
            stream = recognizer.stream()
            events = stream.accept(np.concatenate([audio, tail])) + stream.finish()
            return " ".join(e.text for e in events if e.type == "final")

        return run

    def path(mode: str, model: OfflineRecognizer, options: DecodeOptions | None) -> Callable[[np.ndarray], str]:
        """offline: VAD-segmented recognition; streamed: through the endpointer (fed at once: any chunking gives
        the same events, tested); two-pass: streamed, each final from the bundled bidirectional model on its
        utterance's audio, decoded by `options` (None: its own decoding)."""
        if mode == "offline":
            return lambda audio: model.transcribe(audio, RATE).text
        second = OfflineRecognizer.load(options=options) if mode == "two-pass" else None
        return stream_finals(StreamingRecognizer(model, endpoint, second))

    rows = []
    paths = (("bidirectional (bundled)", None, ["offline"]), ("streaming", folder, ["offline", "streamed", "two-pass"]))
    for name, folder_or_bundled, modes in paths:
        for options in (DecodeOptions("greedy"), None):  # None: the model's own
            model = OfflineRecognizer.load(folder_or_bundled, options=options)
            for mode in modes:
                decode, counts = path(mode, model, options), ErrorCounts()
                for audio, text in zip(heard, texts, strict=True):
                    counts.add(text, decode(audio))
                invented = invented_words(lambda x, _: decode(x), nonspeech, RATE, line)  # noqa: B023
                rows.append({"model": name, "mode": mode, "decoding": _describe(model.options),
                             "wer": counts.wer, "words": counts.words,
                             "invented_per_minute": invented.per_minute})  # fmt: skip
    return rows


def _describe(options: DecodeOptions) -> str:
    if options.method == "greedy":
        return "greedy"
    return f"beam {options.beam.beam_size}" + (" + LM" if options.use_lm else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="unidirectional model directory")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 10, 50, 100, 150, 200])
    parser.add_argument("--utterances", type=int, default=None, help="AN4 test utterances (default: all 130)")
    parser.add_argument("--ticks", type=int, default=30, help="100 ms ticks per concurrency measurement")
    parser.add_argument("--repeat", type=int, default=1, help="measure the one-thread RTF sweep this many times")
    parser.add_argument("--quick", action="store_true", help="a few utterances and streams: the path, not numbers")
    parser.add_argument("--out", type=Path, default=Path("bench-results/streaming.json"))
    args = parser.parse_args()
    if args.quick:  # the path, not numbers: one thread, which stays fast when another process holds a core
        args.utterances, args.streams, args.ticks = 4, [1, 4], 5
        torch.set_num_threads(1)
    folder = args.model if args.model is not None else BUNDLED_STREAMING
    if args.model is not None or (BUNDLED_STREAMING / "model.json").is_file():
        offline, trained = OfflineRecognizer.load(folder), True
        source = str(args.model) if args.model is not None else "bundled"
    else:
        offline, source, trained = _untrained_recognizer(), "untrained telephone-streaming architecture", False
    rec = StreamingRecognizer(offline, EndpointConfig())
    audios, texts = _an4_test(args.data, args.utterances)
    console = Console()
    params = offline.model.num_parameters()
    console.print(f"model: {source}, {params:,} parameters; {len(audios)} AN4 test utterances; {CHUNK_MS} ms chunks")

    sweep = [
        rtf_and_latency(rec, audios, ms) for _ in range(args.repeat) for ms in ((CHUNK_MS,) if args.quick else SWEEP_MS)
    ]
    latency = next(r for r in sweep if r["chunk_ms"] == CHUNK_MS)
    if trained:  # the same stream with each final from the bundled bidirectional model
        two_pass = StreamingRecognizer(offline, EndpointConfig(), OfflineRecognizer.load())
        sweep.append({**rtf_and_latency(two_pass, audios, CHUNK_MS), "second_pass": "bundled bidirectional"})
    table = Table(title="one stream, one thread")
    for col in ("chunk ms", "RTF", "partial latency p50 ms", "final latency p50 ms", "final latency p95 ms"):
        table.add_column(col, justify="right")
    for r in sweep:
        chunk = f"{r['chunk_ms']}" + (" + 2nd pass" if r.get("second_pass") else "")
        table.add_row(chunk, f"{r['rtf_one_thread']:.4f}", f"{r['partial_latency_ms_p50']:.0f}",
                      f"{r['final_latency_ms_p50']:.0f}", f"{r['final_latency_ms_p95']:.0f}")  # fmt: skip
    console.print(table)

    rows = [concurrency(rec, audios, n, args.ticks, batched=True) for n in args.streams]
    rows.append(concurrency(rec, audios, max(args.streams), args.ticks, batched=False))
    table = Table(title=f"concurrent streams, {torch.get_num_threads()} threads, {CHUNK_MS} ms per tick")
    for col in ("streams", "dispatch", "tick p50 ms", "tick p95 ms", "real time", "finals"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["streams"]), "batched" if r["batched"] else "one by one", f"{r['tick_ms_p50']:.1f}",
                      f"{r['tick_ms_p95']:.1f}", "yes" if r["real_time"] else "no", str(r["finals"]))  # fmt: skip
    console.print(table)
    sustained = max((r["streams"] for r in rows if r["batched"] and r["real_time"]), default=0)
    console.print(f"most concurrent real-time streams measured: {sustained} (of {args.streams})")

    with tempfile.TemporaryDirectory() as tmp:
        clips = NonSpeechConfig(count=20 if args.quick else 300, seed=1)
        nonspeech = build_nonspeech(tmp, "test", clips)
        wer = wer_rows(folder, rec.endpoint, audios, texts, nonspeech) if trained else []
    if wer:
        table = Table(title=f"AN4 test WER through the mu-law line ({len(audios)} utterances) and words invented "
                            f"per minute of non-speech ({clips.count} generated clips)")  # fmt: skip
        for col in ("model", "mode", "decoding", "WER %", "words", "invented / min"):
            table.add_column(col, justify="right")
        for row in wer:
            table.add_row(str(row["model"]), str(row["mode"]), str(row["decoding"]), f"{100 * float(row['wer']):.2f}",
                          str(row["words"]), f"{row['invented_per_minute']:.2f}")  # fmt: skip
        console.print(table)
    else:
        console.print("no trained streaming model: accuracy not measured (speed only)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"environment": environment(), "model": source, "parameters": params, "trained": trained,
              "chunk_ms": CHUNK_MS, "utterances": len(audios), "latency": latency, "rtf_sweep": sweep,
              "concurrency": rows, "sustained_streams": sustained, "wer": wer}  # fmt: skip
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
