"""What the study measures on each trained run, written to runs/<name>/measure.json (kept: a measured run is
not measured again).

Every model is decoded greedily (the acoustic models are compared, not language models) on the same inputs:
the test audio goes through the same simulated telephone line (300-3400 Hz, G.711 mu-law), with the same random
draws per utterance for every model, so differences come from the models alone.

- test: WER on AN4 test and on FSDD test phone numbers;
- noise: WER on AN4 test with white noise at each SNR (added before the line's filter and codec);
- packet loss: WER on AN4 test with that fraction of 20 ms frames lost (concealed as the channel does);
- length: WER on long inputs made by joining AN4 test utterances (0.25 s pauses) to at least L seconds,
  decoded in one pass (no segmentation), so the recurrent state must carry the whole input;
- speed: real-time factor on one thread (features + network + greedy decoding), each unit on its fastest
  inference backend (RecurrentStack.inference_backend); training step time on one thread, unit after unit;
- streaming (unidirectional): audio fed in chunks to a `gruasr.streaming` stream; compute per chunk on one
  thread, and the largest difference from the offline log-probabilities (~0: the streaming path is exact);
- memory: bytes a training step holds on a fixed batch: parameters, gradients, Adam's two moments, and the
  activations saved for the backward pass (counted through autograd's saved-tensor hooks); and, measured, how
  much a fresh process's peak resident memory grows over two such steps (first seed only: it does not depend
  on the seed);
- training: per-epoch time, time to the target dev WER, gradient norms and skipped steps, from summary.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gruasr.audio.telephony import TelephoneChannel
from gruasr.bundle import ModelBundle, frame_seconds, load_bundle
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.features.config import FbankConfig
from gruasr.models.ctc_model import CTCModel, ModelConfig
from gruasr.recognizer import DecodeOptions, OfflineRecognizer
from gruasr.study.config import MeasureConfig, StudyConfig
from gruasr.study.runs import Run, run_dir
from gruasr.timing import median_seconds, one_thread

MEASURE_VERSION = 3
PAUSE_SECONDS = 0.25


@dataclass(frozen=True)
class Item:
    text: str
    samples: np.ndarray  # float32 at the model rate


def load_items(manifest: Path, rate: int, limit: int = 0) -> list[Item]:
    utts = read_manifest(manifest)
    if limit:
        utts = utts[:limit]
    return [Item(u.text, load_utterance(u, rate)) for u in utts]


def long_inputs(items: Sequence[Item], lengths: Sequence[float], per_length: int, rate: int) -> list[list[Item]]:
    """For each length L, `per_length` inputs joining randomly drawn items (seeded; no repeats within one input)
    with short pauses until they last at least L seconds."""
    rng = np.random.default_rng(0)
    pause = np.zeros(int(PAUSE_SECONDS * rate), dtype=np.float32)
    out = []
    for length in lengths:
        made = []
        for _ in range(per_length):
            order = rng.permutation(len(items))
            parts: list[np.ndarray] = []
            texts: list[str] = []
            for i in order:
                parts += [items[i].samples, pause]
                texts.append(items[i].text)
                if sum(p.shape[0] for p in parts) >= length * rate:
                    break
            made.append(Item(" ".join(texts), np.concatenate(parts[:-1])))
        out.append(made)
    return out


class Scorer:
    """Greedy log-probabilities and transcripts of one model (an offline Recognizer, one pass per input)."""

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        self.recognizer = OfflineRecognizer(bundle, options=DecodeOptions("greedy"))
        self.rate = bundle.sample_rate

    def log_probs(self, samples: np.ndarray) -> torch.Tensor:
        return self.recognizer.log_probs(samples)

    def text(self, samples: np.ndarray) -> str:
        return self.recognizer.decode(self.log_probs(samples)).text

    def score(self, items: Sequence[Item], channel: TelephoneChannel | None = None) -> dict[str, float]:
        counts = ErrorCounts()
        for index, item in enumerate(items):
            samples = item.samples
            if channel is not None:
                samples = channel.apply(samples, self.rate, np.random.default_rng([0, index]))
            counts.add(item.text, self.text(samples))
        return {"wer": counts.wer, "cer": counts.cer, "words": counts.words, "errors": counts.errors}


def real_time_factor(scorer: Scorer, items: Sequence[Item]) -> float:
    def timed() -> float:
        scorer.text(items[0].samples)  # warm-up
        start = time.perf_counter()
        for item in items:
            scorer.text(item.samples)
        return time.perf_counter() - start

    seconds = one_thread(timed)
    return seconds / (sum(i.samples.shape[0] for i in items) / scorer.rate)


def streaming_probe(scorer: Scorer, items: Sequence[Item], chunk_ms: int) -> dict[str, float]:
    """Feed each item to a gruasr.streaming stream (no endpointing: one utterance) in chunks of `chunk_ms`; time
    every whole chunk on one thread and compare the streamed log-probabilities with the offline ones."""
    from gruasr.streaming import EndpointConfig, StreamingRecognizer

    recognizer = StreamingRecognizer(scorer.recognizer, EndpointConfig(enabled=False))
    chunk = int(chunk_ms * scorer.rate / 1000)

    def run() -> dict[str, float]:
        times: list[float] = []
        diff = 0.0
        for item in items:
            stream = recognizer.stream(record=True)
            whole = item.samples.shape[0] // chunk * chunk
            for start in range(0, whole, chunk):
                began = time.perf_counter()
                stream.accept(item.samples[start : start + chunk])
                times.append(time.perf_counter() - began)
            stream.accept(item.samples[whole:])
            stream.finish()
            assert stream.recorded is not None
            streamed = torch.cat([lp for _, _, lp in stream.recorded])
            offline = scorer.log_probs(scorer.recognizer.end_padded(item.samples))  # a stream's end: END_SILENCE
            diff = max(diff, float((streamed - offline).abs().max()))
        return {
            "chunk_ms": chunk_ms,
            "compute_ms_median": 1000 * float(np.median(times)),
            "compute_ms_p95": 1000 * float(np.percentile(times, 95)),
            # a sound at the start of a chunk waits the whole chunk, then the chunk's compute
            "latency_ms": chunk_ms + 1000 * float(np.percentile(times, 95)),
            "max_abs_diff_offline": diff,
        }

    return one_thread(run)


#: tokens per utterance in the synthetic batches of the memory and speed probes
PROBE_TOKENS = 30


def probe_batch(
    config: ModelConfig, batch: int, seconds: float, seed: int = 0, features: FbankConfig | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random features (batch, frames, input_dim) and targets (batch, PROBE_TOKENS) for the probes: `seconds`
    of audio at the frame shift of `features` (default: FbankConfig())."""
    generator = torch.Generator().manual_seed(seed)
    frames = int(seconds / frame_seconds(features or FbankConfig()))
    x = torch.randn(batch, frames, config.input_dim, generator=generator)
    return x, torch.randint(1, config.vocab_size, (batch, PROBE_TOKENS), generator=generator)


def probe_loss(model: CTCModel, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """CTC loss of a probe batch (every utterance and target at full length)."""
    batch, frames = x.shape[:2]
    log_probs, lengths, _ = model(x, torch.full((batch,), frames))
    target_lengths = torch.full((batch,), targets.shape[1])
    return F.ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths, zero_infinity=True)


def probe_step(model: CTCModel, optimizer: torch.optim.Optimizer, x: torch.Tensor, targets: torch.Tensor) -> None:
    """One training step on a probe batch: forward, CTC loss, backward, optimizer step."""
    loss = probe_loss(model, x, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def training_memory(
    config: ModelConfig, batch: int, seconds: float, seed: int = 0, features: FbankConfig | None = None
) -> dict[str, float]:
    """Bytes of one training step on `batch` utterances of `seconds` with 30-token targets (CPU, float32)."""
    model = CTCModel(config).train()
    x, targets = probe_batch(config, batch, seconds, seed, features)
    seen = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        ptr = t.untyped_storage().data_ptr()
        if ptr not in seen:
            seen.add(ptr)
            saved += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = probe_loss(model, x, targets)
    loss.backward()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return {
        "parameters_mb": params / 2**20,
        "activations_mb": saved / 2**20,
        # parameters + gradients + Adam's two moments + saved activations
        "step_mb": (4 * params + saved) / 2**20,
    }


def _peak_rss_child() -> None:
    """In a fresh process (argv: model config JSON, batch, seconds, feature config JSON): print the resident
    memory before and at the peak of two training steps, sampled every 0.5 ms from /proc (Linux)."""
    import os
    import sys
    import threading

    torch.set_num_threads(1)
    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page

    config = ModelConfig.from_dict(json.loads(sys.argv[1]))
    model = CTCModel(config).train()
    optimizer = torch.optim.AdamW(model.parameters())
    features = FbankConfig.from_dict(json.loads(sys.argv[4]))
    x, targets = probe_batch(config, int(sys.argv[2]), float(sys.argv[3]), features=features)
    base, peak, done = rss(), [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    for _ in range(2):
        probe_step(model, optimizer, x, targets)
    done.set()
    watcher.join()
    print(json.dumps({"base": base, "peak": max(peak[0], rss())}))


def peak_training_rss(config: ModelConfig, batch: int, seconds: float, features: FbankConfig | None = None) -> float:
    """Measured: how much a fresh process's resident memory grows at its peak over two training steps (Adam) on
    `batch` utterances of `seconds`, in MiB: RSS is sampled every 0.5 ms from /proc (Linux) while they run."""
    import subprocess
    import sys

    code = "from gruasr.study.measure import _peak_rss_child; _peak_rss_child()"
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config.to_dict()), str(batch), str(seconds),
         json.dumps((features or FbankConfig()).to_dict())],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    sizes = json.loads(done.stdout.strip().splitlines()[-1])
    return (sizes["peak"] - sizes["base"]) / 2**20


def training_facts(summary: dict[str, Any], target: float) -> dict[str, Any]:
    history = summary["history"]
    elapsed = np.cumsum([h["seconds"] for h in history]).tolist()
    reached = next((t for h, t in zip(history, elapsed, strict=True) if h["dev_wer"] <= target), None)
    return {
        "epochs": len(history),
        "epoch_seconds": float(np.mean([h["seconds"] for h in history])),
        "train_seconds": elapsed[-1],
        "seconds_to_target": reached,
        "best_dev_wer": summary["selection"]["dev_wer"],
        "dev_wer": [h["dev_wer"] for h in history],
        "loss": [h["loss"] for h in history],
        "grad_norm_median": [h.get("grad_norm_median") for h in history],
        "grad_norm_max": [h.get("grad_norm_max") for h in history],
        "skipped_steps": sum(h.get("skipped_steps", 0) for h in history),
        "diverged": any(not np.isfinite(h["loss"]) for h in history) or summary["selection"]["dev_wer"] >= 1.0,
    }


class TestData:
    """The study's test inputs, loaded once per process."""

    def __init__(self, out: Path, measure: MeasureConfig, rate: int) -> None:
        data = out / "data"
        self.an4 = load_items(data / "an4" / "test.jsonl", rate, measure.limit)
        self.numbers = load_items(data / "fsdd" / "test_numbers.jsonl", rate, measure.limit)
        self.long = long_inputs(self.an4, measure.lengths, measure.long_per_length, rate)
        self.rtf = self.an4[: measure.rtf_utterances]


def measure_run(run: Run, study: StudyConfig, out: Path, test: TestData, sweeps: bool) -> dict[str, Any]:
    measure = study.measure
    folder = run_dir(out, run)
    bundle = load_bundle(folder / "model")
    scorer = Scorer(bundle)
    line = TelephoneChannel(codec="ulaw", output_rate=scorer.rate)
    result: dict[str, Any] = {
        "version": MEASURE_VERSION,
        "run": run.name,
        "unit": run.unit,
        "direction": run.direction,
        "seed": run.seed,
        "hidden_size": run.config.model.hidden_size,
        "parameters": bundle.model.num_parameters(),
        "backend": run.config.model.backend or "default",
        "training": training_facts(json.loads((folder / "summary.json").read_text()), measure.target_dev_wer),
        "test": {"an4": scorer.score(test.an4, line), "numbers": scorer.score(test.numbers, line)},
        "rtf_one_thread": real_time_factor(scorer, test.rtf),
        "memory": training_memory(
            run.config.model, measure.memory_batch, measure.memory_seconds, features=run.config.features
        ),
    }
    if run.seed == study.seeds[0]:  # the same for every seed: measured once per unit and direction
        rss = peak_training_rss(run.config.model, measure.memory_batch, measure.memory_seconds, run.config.features)
        result["memory"]["peak_rss_growth_mb"] = rss
    if run.direction == "uni":
        result["streaming"] = streaming_probe(scorer, test.rtf[:10], measure.chunk_ms)
    if sweeps:
        result["snr"] = {
            str(snr): scorer.score(test.an4, TelephoneChannel(codec="ulaw", snr_db=snr, output_rate=scorer.rate))
            for snr in measure.snr_db
        }
        result["packet_loss"] = {
            str(p): scorer.score(test.an4, TelephoneChannel(codec="ulaw", packet_loss=p, output_rate=scorer.rate))
            for p in measure.packet_loss
        }
        result["length"] = {
            str(length): {
                **scorer.score(items, line),
                "seconds": float(np.mean([i.samples.shape[0] / scorer.rate for i in items])),
            }
            for length, items in zip(measure.lengths, test.long, strict=True)
        }
    return result


def train_step_seconds(
    config: ModelConfig, batch: int, seconds: float, repeat: int = 3, features: FbankConfig | None = None
) -> float:
    """Median wall time of one training step (forward, CTC loss, backward, AdamW) on one thread, on `batch`
    utterances of `seconds`: the units' training speed measured side by side, whatever else the machine was
    doing while the runs trained."""

    def run() -> float:
        model = CTCModel(config).train()
        optimizer = torch.optim.AdamW(model.parameters())
        x, targets = probe_batch(config, batch, seconds, features=features)
        return median_seconds(lambda: probe_step(model, optimizer, x, targets), torch.device("cpu"), repeat)

    return one_thread(run)


def _save(path: Path, result: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(path)


def measure_runs(
    runs: list[Run], study: StudyConfig, out: Path, console: Console, shard: tuple[int, int] = (0, 1)
) -> None:
    """Measure this shard's trained runs that have no measure.json yet. The per-unit probes (peak memory,
    training step time) run on the first seed's models only: they do not depend on the seed."""
    k, n = shard
    todo = []
    for i, run in enumerate(runs):
        path = run_dir(out, run) / "measure.json"
        if i % n != k or not (run_dir(out, run) / "summary.json").is_file():
            continue
        saved = json.loads(path.read_text()) if path.is_file() else {}
        first = run.seed == study.seeds[0]
        if saved.get("version") != MEASURE_VERSION or (first and "train_step_s" not in saved):
            todo.append(run)
    if not todo:
        return
    test: TestData | None = None
    sweep_seeds = study.measure.sweep_seeds or study.seeds
    progress = Progress(
        TextColumn("measuring {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    )  # fmt: skip
    with progress:
        job = progress.add_task("", total=len(todo))
        for run in todo:
            progress.update(job, description=run.name)
            path = run_dir(out, run) / "measure.json"
            result = json.loads(path.read_text()) if path.is_file() else {}
            if result.get("version") != MEASURE_VERSION:
                test = test or TestData(out, study.measure, runs[0].config.sample_rate)
                result = measure_run(run, study, out, test, sweeps=run.seed in sweep_seeds)
            if run.seed == study.seeds[0] and "train_step_s" not in result:
                memory = study.measure
                result["train_step_s"] = train_step_seconds(
                    run.config.model, memory.memory_batch, memory.memory_seconds, features=run.config.features
                )
            _save(path, result)
            progress.advance(job)
