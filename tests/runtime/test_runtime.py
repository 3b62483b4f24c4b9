"""The runtime without torch: transcribe, stream and call through gruasr.runtime and the CLI's --engine onnx, in a
virtual environment where torch is not installed; torch must not be imported on any of these paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gruasr.audio.io import AN4_RAW, load_audio
from gruasr.cli.main import main
from gruasr.runtime import OnnxRecognizer, OnnxStreamingRecognizer

from .conftest import ROOT

SAMPLE = ROOT / "src" / "gruasr" / "samples" / "call.wav"


@pytest.fixture(scope="module")
def expected(onnx_dir: Path) -> dict[str, str]:
    """The torch engine's transcript of the sample call, per leg (make test-runtime writes it with the main venv:
    gruasr transcribe --json src/gruasr/samples/call.wav > build/onnx/call-torch.jsonl)."""
    path = onnx_dir / "call-torch.jsonl"
    if not path.is_file():
        pytest.fail(f"{path} missing: make test-runtime writes it")
    return {line["leg"]: line["text"] for line in map(json.loads, path.read_text().splitlines())}


def test_torch_is_not_installed_here_nor_imported() -> None:
    import importlib.util

    assert importlib.util.find_spec("torch") is None, "the runtime venv must not have torch"
    assert "torch" not in sys.modules


def test_transcribe_the_sample_call(onnx_dir: Path, expected: dict[str, str]) -> None:
    asr = OnnxRecognizer.load(onnx_dir / "telephone")
    # rescored by the streaming model exported beside it, as the torch engine is by the bundled one
    assert asr.rescoring is not None and asr.rescoring.model.bundle.path == onnx_dir / "telephone-streaming"
    results = {r.leg: r.text for r in asr.transcribe_file(SAMPLE)}
    assert results == expected
    assert "torch" not in sys.modules


@pytest.mark.parametrize("export", ["telephone-streaming", "telephone-streaming-int8"])
def test_stream_an4_speech_in_100ms_chunks(onnx_dir: Path, data_dir: Path, export: str) -> None:
    asr = OnnxStreamingRecognizer.load(onnx_dir / export)
    path = sorted((data_dir / "an4" / "wav" / "an4test_clstk").glob("*/*.raw"))[0]
    samples = load_audio(path, raw=AN4_RAW, sample_rate=8000).channel(0)
    stream = asr.stream(8000)
    events = []
    for start in range(0, len(samples), 800):
        events += stream.accept(samples[start : start + 800])
    events += stream.finish()
    finals = [e.text for e in events if e.type == "final"]
    assert finals and all(finals)
    if export == "telephone-streaming":  # int8 picks activation scales per chunk: close to offline, not equal
        offline = asr.offline.decode(asr.offline.log_probs(asr.offline.end_padded(samples))).text
        assert " ".join(finals) == offline  # endpointing may split; here it is one utterance
    assert "torch" not in sys.modules


@pytest.mark.parametrize("command", ["transcribe", "call", "stream"])
def test_cli_with_the_onnx_engine(
    onnx_dir: Path, expected: dict[str, str], command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    model = onnx_dir / ("telephone" if command == "transcribe" else "telephone-streaming")
    assert main([command, "--engine", "onnx", "--model", str(model), "--json", str(SAMPLE)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines and all("text" in line for line in lines)
    if command == "transcribe":
        assert {line["leg"]: line["text"] for line in lines} == expected
    assert "torch" not in sys.modules


def test_the_console_script_in_a_fresh_process(onnx_dir: Path, expected: dict[str, str]) -> None:
    """`gruasr transcribe --engine onnx` as a user runs it: a new interpreter, which must not import torch."""
    code = (
        "import sys; from gruasr.cli.main import main; rc = main(['transcribe', '--engine', 'onnx', '--model', "
        f"{str(onnx_dir / 'telephone')!r}, {str(SAMPLE)!r}]); print('torch' in sys.modules); sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "False"
    assert lines[:-1] == [f"{leg}: {text}" for leg, text in expected.items()]


@pytest.mark.parametrize("decode_in", ["threads", "processes"])
def test_serve_the_vosk_protocol_without_torch(onnx_dir: Path, tmp_path: Path, decode_in: str) -> None:
    """`gruasr serve --engine onnx` in-process on a free loopback port: the project's Vosk lock-step client gets
    the finals a local stream gives on the sample call's first leg (finals decoded in threads, or in spawned
    processes, which have no torch to import either), and torch is still not imported."""
    import threading
    import time

    from gruasr.audio.io import save_wav
    from gruasr.server.config import ServerConfig
    from gruasr.server.runner import build
    from tests.server.vosk_client import finals, lockstep

    leg = load_audio(SAMPLE).channel(0)
    path = save_wav(tmp_path / "leg-a.wav", leg, 8000)
    stream = OnnxStreamingRecognizer.load(onnx_dir / "telephone-streaming").stream(8000)
    local = [e.text for e in stream.accept(load_audio(path).channel(0)) + stream.finish() if e.type == "final"]
    config = ServerConfig(port=0, engine="onnx", model=str(onnx_dir / "telephone-streaming"), decode_in=decode_in)
    _, server = build(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        port = int(server.servers[0].sockets[0].getsockname()[1])
        replies = lockstep(f"ws://127.0.0.1:{port}", path.read_bytes(), {"sample_rate": 8000})
    finally:
        server.should_exit = True
        thread.join(30)
    assert [r["text"] for r in finals(replies) if r["text"]] == local
    assert local and "torch" not in sys.modules
