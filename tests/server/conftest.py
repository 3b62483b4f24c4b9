"""Server fixtures: the bundled streaming model once per session, servers on free loopback ports (port 0) in a
thread of this process, always stopped; real AN4 recordings as 8 kHz 16-bit PCM."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from starlette.applications import Starlette

from gruasr.audio.io import AN4_RAW, load_audio, save_wav
from gruasr.data.corpora.an4 import parse_transcription
from gruasr.server.config import ServerConfig
from gruasr.server.runner import DrainingServer, build
from gruasr.streaming import StreamingRecognizer

RATE = 8000


@dataclass
class Running:
    app: Starlette
    server: DrainingServer
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def recognizer() -> StreamingRecognizer:
    torch.set_num_threads(1)
    return StreamingRecognizer.load()


@contextmanager
def running(recognizer: StreamingRecognizer, **settings: object) -> Iterator[Running]:
    """A server on a free loopback port in a thread; stopped (and joined) whatever the test does."""
    config = ServerConfig(**{"port": 0, **settings})  # type: ignore[arg-type]
    app, server = build(config, recognizer)
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the test server did not start")
            time.sleep(0.02)
        yield Running(app, server, int(server.servers[0].sockets[0].getsockname()[1]))
    finally:
        server.should_exit = True
        thread.join(30)
        if thread.is_alive():
            server.force_exit = True
            thread.join(10)


@pytest.fixture
def server(recognizer: StreamingRecognizer) -> Iterator[Running]:
    with running(recognizer) as r:
        yield r


@dataclass(frozen=True)
class Utterance:
    id: str
    speaker: str
    text: str
    samples: np.ndarray  # float32 at 8 kHz, already on the 16-bit grid

    @property
    def pcm(self) -> bytes:
        return pcm16(self.samples)


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(np.round(samples * 32768), -32768, 32767)).astype("<i2").tobytes()


@pytest.fixture(scope="session")
def an4(data_dir: Path) -> list[Utterance]:
    """Six AN4 test utterances of three speakers (two each), at 8 kHz on the 16-bit grid."""
    texts, _ = parse_transcription(data_dir / "an4" / "etc" / "an4_test.transcription")
    paths = sorted((data_dir / "an4" / "wav" / "an4test_clstk").glob("*/*.raw"))
    speakers: dict[str, list[Path]] = {}
    for p in paths:
        speakers.setdefault(p.parent.name, []).append(p)
    chosen = [p for name in sorted(speakers)[:3] for p in speakers[name][:2]]
    if len(chosen) != 6:
        pytest.fail(f"AN4 test audio not found under {data_dir}")
    out = []
    for p in chosen:
        x = load_audio(p, raw=AN4_RAW, sample_rate=RATE).channel(0)
        x = np.round(np.clip(x, -1, 32767 / 32768) * 32768) / 32768  # what 16-bit PCM carries
        out.append(Utterance(p.stem, p.parent.name, texts[p.stem], x.astype(np.float32)))
    return out


def wav(path: Path, samples: np.ndarray) -> Path:
    """Mono or (channels, n) float audio as 16-bit PCM WAV at 8 kHz."""
    save_wav(path, samples, RATE)
    return path
