"""Exported bundled models and real AN4 test speech (through a G.711 mu-law line), shared by the deploy tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gruasr.audio.telephony import TelephoneChannel
from gruasr.data.corpora.an4 import import_an4
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.export.onnx import export_onnx

MODELS = ("telephone", "telephone-streaming")
#: AN4 test utterances the parity tests use (of 130; every 11th, so several speakers)
AN4_COUNT = 12


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both bundled models exported to ONNX float32 (gruasr model export --onnx)."""
    root = tmp_path_factory.mktemp("onnx")
    return {name: export_onnx(name, root / name) for name in MODELS}


@pytest.fixture(scope="session")
def an4_speech(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, np.ndarray, str]]:
    """(id, 8 kHz samples through a mu-law line, reference text) of AN4_COUNT official test utterances."""
    folder = tmp_path_factory.mktemp("an4")
    import_an4(data_dir / "an4", folder)
    utts = read_manifest(folder / "test.jsonl")[:: len(read_manifest(folder / "test.jsonl")) // AN4_COUNT][:AN4_COUNT]
    line = TelephoneChannel(codec="ulaw")
    out = []
    for index, utt in enumerate(utts):
        samples = line.apply(load_utterance(utt, 8000), 8000, np.random.default_rng([0, index]))
        out.append((utt.id, samples.astype(np.float32), utt.text))
    return out
