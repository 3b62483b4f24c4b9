"""The public recognition API: OfflineRecognizer and StreamingRecognizer load one way, live on the model's device
(CPU, meta, CUDA when present), name channels and legs alike, take the frame shift from the feature config,
raise ShapeError for bad shapes, import nothing from training; every documented import exists."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gruasr.audio.io import RawFormat, load_audio, save_wav
from gruasr.bundle import DecodeOptions, load_bundle
from gruasr.cli.main import main
from gruasr.errors import ShapeError
from gruasr.recognizer import OfflineRecognizer, Result
from gruasr.streaming import Event, StreamingRecognizer

from ..test_bundle import saved, small_bundle

ROOT = Path(__file__).resolve().parents[2]
RATE = 8000


def _speechlike(seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """Noise under a 4 Hz envelope: enough structure for the features and the model to act on."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) * rng.standard_normal(t.shape[0])).astype(np.float32)


def test_inference_imports_nothing_from_training() -> None:
    code = (
        "import sys, gruasr.recognizer, gruasr.streaming, gruasr.streaming.calls, gruasr.bundle; "
        "print(sorted(m for m in sys.modules if m.startswith('gruasr.training')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]"


def _documented_imports() -> list[tuple[str, str]]:
    """(where, import line) for every `from gruasr... import ...` / `import gruasr...` line in README.md, docs/*.md
    and every docstring of the package."""
    texts = [(str(p.relative_to(ROOT)), p.read_text()) for p in [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))]]
    for path in sorted((ROOT / "src" / "gruasr").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    texts.append((str(path.relative_to(ROOT)), doc))
    pattern = re.compile(r"^\s*(from gruasr[\w.]* import [\w, ]+|import gruasr[\w.]*(?:, gruasr[\w.]*)*)", re.M)
    return [(where, m.group(1).strip().rstrip(",")) for where, text in texts for m in pattern.finditer(text)]


def test_every_documented_import_exists() -> None:
    lines = _documented_imports()
    assert len(lines) >= 10  # the README alone shows several
    assert any("OfflineRecognizer" in line for _, line in lines)
    assert any("StreamingRecognizer" in line for _, line in lines)
    failures = []
    for where, line in lines:
        try:
            exec(line, {})  # noqa: S102 - the documented line itself, nothing else
        except ImportError as err:
            failures.append(f"{where}: {line!r}: {err}")
    assert not failures, "\n".join(failures)


def test_one_way_to_load_each_recognizer(tmp_path: Path) -> None:
    folder = saved(tmp_path / "m", extra={"decoding": {"method": "greedy"}})
    offline = OfflineRecognizer.load(folder, device="cpu")
    assert offline.options.method == "greedy" and offline.device == torch.device("cpu")
    streaming = StreamingRecognizer.load(folder, device="cpu", options=DecodeOptions("beam", use_lm=False))
    assert streaming.offline.options == DecodeOptions("beam", use_lm=False)
    assert streaming.frame_seconds == pytest.approx(0.01) and streaming.step_seconds == pytest.approx(0.04)


def test_filterbank_cmvn_and_model_run_on_the_meta_device() -> None:
    """Everything the offline path computes follows the model: moved to meta, a forward gives meta tensors of
    the right shapes (no data, no CPU tensors mixed in)."""
    bundle = small_bundle().to("meta")
    asr = OfflineRecognizer(bundle)
    assert asr.device.type == "meta" and asr.fbank.window.device.type == "meta"
    assert bundle.cmvn.mean.device.type == "meta"
    log_probs = asr.log_probs(np.zeros(RATE, np.float32))  # 1 s: 98 frames -> 25 outputs
    assert log_probs.device.type == "meta" and log_probs.shape == (25, 29)


def test_streams_keep_their_state_on_the_model_device() -> None:
    rec = StreamingRecognizer(OfflineRecognizer(small_bundle(), options=DecodeOptions("greedy")))
    stream = rec.stream(RATE, leg="B", channel=1)
    stream.accept(_speechlike(0.5))
    assert stream._pending.device == rec.device and stream._context.device == rec.device
    assert stream._state is not None
    state = stream._state if isinstance(stream._state, torch.Tensor) else stream._state[0]
    assert state.device == rec.device


def test_word_times_follow_the_feature_frame_shift() -> None:
    """The same posteriors decode to word times twice as late when the features are 20 ms apart."""
    log_probs = torch.full((8, 29), -20.0)
    log_probs[:, 0] = 0.0  # blank everywhere
    a = small_bundle().tokens.symbols.index("a")
    log_probs[3, 0], log_probs[3, a] = -20.0, 0.0
    times = []
    for shift in (10.0, 20.0):
        asr = OfflineRecognizer(small_bundle(shift), options=DecodeOptions("greedy"))
        hyp = asr.decode(log_probs)
        assert hyp.text == "a"
        times.append((hyp.words[0].start, hyp.words[0].end))
    assert times[0] == pytest.approx((0.12, 0.16)) and times[1] == pytest.approx((0.24, 0.32))


def test_bad_shapes_are_shape_errors() -> None:
    asr = OfflineRecognizer(small_bundle(), options=DecodeOptions("greedy"))
    with pytest.raises(ShapeError, match="mono"):
        asr.transcribe(np.zeros((2, RATE), np.float32), RATE)
    with pytest.raises(ShapeError, match="expected features"):
        asr.model(torch.zeros(1, 10, 7))
    with pytest.raises(ShapeError, match="mono"):
        StreamingRecognizer(asr).stream().accept(np.zeros((2, 10), np.float32))


def test_results_and_events_name_the_channel_and_leg_alike() -> None:
    asr = OfflineRecognizer(small_bundle(), options=DecodeOptions("greedy"))
    result = Result(asr.transcribe(_speechlike(), RATE), 1, 1.5, "B")
    assert list(result.to_dict())[:2] == ["channel", "leg"] and result.to_dict()["channel"] == 1
    event = Event("final", "a", 0.0, 0.1, channel=1, leg="B")
    assert {k: event.to_dict()[k] for k in ("channel", "leg")} == {"channel": 1, "leg": "B"}
    assert "leg" not in Result(result.hypothesis, 0, 1.5).to_dict()
    assert "leg" not in Event("partial", "", 0, 0).to_dict()


@pytest.mark.cuda
def test_cuda_offline_and_streamed_log_probs_equal_the_cpu_ones(tmp_path: Path) -> None:
    folder = saved(tmp_path / "m")
    audio = _speechlike()
    cpu = OfflineRecognizer.load(folder, device="cpu", options=DecodeOptions("greedy"))
    gpu = OfflineRecognizer.load(folder, device="cuda", options=DecodeOptions("greedy"))
    assert gpu.fbank.window.is_cuda and gpu.bundle.cmvn.mean.is_cuda and load_bundle(folder, "cuda").device.type
    on_gpu = gpu.log_probs(audio)
    assert on_gpu.is_cuda
    torch.testing.assert_close(on_gpu.cpu(), cpu.log_probs(audio), atol=1e-4, rtol=1e-4)
    assert gpu.transcribe(audio, RATE).text == cpu.transcribe(audio, RATE).text
    streamed = {}
    for name, offline in (("cpu", cpu), ("cuda", gpu)):
        rec = StreamingRecognizer(offline)
        stream = rec.stream(record=True)
        for start in range(0, audio.shape[0], 800):
            stream.accept(audio[start : start + 800])
        stream.finish()
        assert stream.recorded is not None
        streamed[name] = torch.cat([lp for _, _, lp in stream.recorded])
    torch.testing.assert_close(streamed["cuda"], streamed["cpu"], atol=1e-4, rtol=1e-4)


@pytest.mark.cuda
def test_cuda_the_bundled_models_load_on_the_gpu() -> None:
    asr = OfflineRecognizer.load(device="cuda")
    assert asr.device.type == "cuda" and asr.fbank.window.is_cuda
    streaming = StreamingRecognizer.load(device="cuda")
    assert streaming.device.type == "cuda"
    assert isinstance(asr.transcribe(_speechlike(), RATE).text, str)


def test_stream_and_call_read_headerless_audio_as_the_same_wav(tmp_path: Path, capsys) -> None:
    folder = saved(tmp_path / "m")
    raw = tmp_path / "leg.pcm"
    raw.write_bytes((_speechlike(2.0) * 32767).astype("<i2").tobytes())
    wav = tmp_path / "leg.wav"
    save_wav(wav, load_audio(raw, raw=RawFormat(RATE, 2, "little")).channel(0), RATE)
    common = ["--model", str(folder), "--greedy", "--json", "--no-endpoint", "--keep-unvoiced"]
    for command in ("stream", "call"):
        assert main([command, *common, "--raw", "8000:2:le", str(raw)]) == 0
        from_raw = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert main([command, *common, str(wav)]) == 0
        from_wav = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert from_raw and [{**e, "audio": None} for e in from_raw] == [{**e, "audio": None} for e in from_wav]
        assert all(e["channel"] == 0 for e in from_raw)
