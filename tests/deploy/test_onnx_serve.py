"""`gruasr serve --engine onnx`: the Vosk WebSocket protocol served by ONNX Runtime sessions gives what
`gruasr stream --engine onnx` gives on the same file, and the torch engine's text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gruasr.cli.main import main
from tests.server.conftest import RATE, running, wav
from tests.server.vosk_client import finals, lockstep


def test_vosk_client_on_the_onnx_engine(exported, an4_speech, tmp_path: Path, capsys) -> None:
    gap = np.zeros(int(1.5 * RATE), np.float32)
    audio = np.concatenate([gap[: RATE // 2], an4_speech[0][1], gap, an4_speech[1][1], gap[: RATE // 2]])
    audio = np.round(np.clip(audio, -1, 32767 / 32768) * 32768) / 32768  # what 16-bit PCM carries
    path = wav(tmp_path / "two.wav", audio)
    model = str(exported["telephone-streaming"])
    with running(None, engine="onnx", model=model) as server:  # type: ignore[arg-type]
        assert type(server.app.state.engine.recognizer).__name__ == "OnnxStreamingRecognizer"
        replies = lockstep(server.ws, path.read_bytes(), {"sample_rate": RATE, "words": 1})
    got = [r for r in finals(replies) if r["text"]]
    texts = {}
    for engine in ("onnx", "torch"):
        args = ["stream", str(path), "--json"] + (["--engine", "onnx", "--model", model] if engine == "onnx" else [])
        assert main(args) == 0
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        texts[engine] = [e["text"] for e in events if e["type"] == "final"]
        if engine == "onnx":
            served = [(w["word"], w["start"], w["end"]) for r in got for w in r.get("result", [])]
            streamed = [(w["word"], w["start"], w["end"]) for e in events if e["type"] == "final" for w in e["words"]]
            assert served == streamed
    assert [r["text"] for r in got] == texts["onnx"] == texts["torch"]
    assert len(got) == 2


def test_serve_onnx_needs_an_exported_model() -> None:
    from gruasr.errors import ConfigError
    from gruasr.server.config import ServerConfig

    with pytest.raises(ConfigError, match="needs server.model"):
        ServerConfig(engine="onnx")
