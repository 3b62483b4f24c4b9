"""An exported model folder (gruasr model export --onnx) loaded into ONNX Runtime, without torch.

    model = OnnxModel.load("exports/telephone")          # checks checksums.sha256 first, as load_bundle does
    fbank = model.fbank(samples)                         # (T, F) log-mel filterbank, the model's options
    log_probs = model.log_probs(fbank)                   # (ceil(T/4), V) through model.onnx

The front end is gruasr.features.kaldi.NumpyFbank with the model's FbankConfig: Kaldi's arithmetic in numpy, equal
to gruasr's Fbank and to kaldi-native-fbank to float32 rounding (tests/features/test_kaldi_numpy.py), rows
independent so many streams' frames go through in one call; the graphs apply the model's CMVN themselves. A graph's
bytes are hashed as they are read into its session (what was checked is what runs), when it is first used.
Sessions run with one intra-op and one inter-op thread by default: a step is small, and on a shared machine a
second thread waits on a descheduled peer (docs/serving.md, "Threads").
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from gruasr.data.tokens import TokenTable
from gruasr.decoding.beam import Lexicon
from gruasr.decoding.lm import NGramLM
from gruasr.errors import CheckpointError, ConfigError
from gruasr.features.config import FbankConfig
from gruasr.features.kaldi import NumpyFbank
from gruasr.integrity import CheckedFolder, TrustedKey, check_folder
from gruasr.transcription import DecodeOptions, model_decoding

FORMAT = "gruasr-onnx"
META = "export.json"
UTTERANCE = "model.onnx"
STREAMING = "streaming.onnx"
LM = "lm.arpa"
LEXICON = "lexicon.txt"


def session_options(threads: int = 1) -> ort.SessionOptions:
    """ONNX Runtime settings: `threads` intra-op threads, one inter-op thread, sequential execution."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be a positive int, got {threads!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return options


def num_frames(num_samples: int, config: FbankConfig) -> int:
    """Frames in a signal of num_samples samples (Kaldi's NumFrames with flush=True; gruasr.features.framing)."""
    size, shift = config.window_size, config.window_shift
    if config.snip_edges:
        return 0 if num_samples < size else 1 + (num_samples - size) // shift
    return (num_samples + shift // 2) // shift


class OnnxModel:
    """The sessions, front end, tokens and settings of an exported folder; see the module docstring."""

    def __init__(self, files: CheckedFolder, meta: dict[str, Any], threads: int = 1) -> None:
        self.files = files
        self.path = files.path
        self.meta = meta
        try:
            self.features = FbankConfig.from_dict(meta["features"])
            self.tokens = TokenTable(tuple(meta["tokens"]))
            self.subsampling = int(meta["subsampling"])
            self.context = int(meta["context"])
            model = meta["model"]
            self.bidirectional = bool(model["bidirectional"])
            self.layers = int(model["num_layers"]) * (2 if self.bidirectional else 1)
            self.hidden = int(model["hidden_size"])
            self.channels = int(model["conv_channels"])
            names = meta["files"]
        except (KeyError, TypeError, ValueError, ConfigError) as err:
            raise CheckpointError(f"{self.path / META}: incomplete or invalid ({err})") from None
        self._names = names
        session_options(threads)  # a bad thread count is refused now, not at the first session
        self._threads = threads
        self._sessions: dict[str, ort.InferenceSession] = {}
        self.front_end = NumpyFbank(self.features)

    def _session(self, key: str) -> ort.InferenceSession:
        """The graph's session, made on first use (a streaming server never loads the whole-utterance graph):
        its bytes are hashed against the manifest as they are read, then handed to ONNX Runtime."""
        if key not in self._sessions:
            data = self.files.read(self._names[key])
            self._sessions[key] = ort.InferenceSession(
                data, session_options(self._threads), providers=["CPUExecutionProvider"]
            )
        return self._sessions[key]

    @property
    def utterance(self) -> ort.InferenceSession:
        """model.onnx's session."""
        return self._session("utterance")

    @property
    def has_streaming(self) -> bool:
        return bool(self._names.get("streaming"))

    @property
    def streaming(self) -> ort.InferenceSession | None:
        """streaming.onnx's session, or None (a bidirectional model has none)."""
        return self._session("streaming") if self.has_streaming else None

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike[str],
        *,
        trusted_keys: Sequence[TrustedKey] | TrustedKey | None = None,
        threads: int = 1,
    ) -> OnnxModel:
        """Check an exported folder against its manifest (and signature, with `trusted_keys`), then load it."""
        folder = Path(folder)
        if folder.is_dir() and not (folder / META).is_file():
            raise CheckpointError(f"{folder}: not an exported gruasr model (no {META}; gruasr model export --onnx)")
        files = check_folder(folder, trusted_keys, deferred=(META,))  # every graph hashed now, and again when read
        try:
            meta = json.loads(files.read(META).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{folder / META}: not valid JSON ({err})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(f"{folder / META}: not an exported gruasr model")
        return cls(files, meta, threads)

    @property
    def sample_rate(self) -> int:
        return self.features.sample_rate

    @property
    def dim(self) -> int:
        return self.features.dim

    @property
    def frame_seconds(self) -> float:
        return self.features.frame_shift_ms / 1000.0

    @property
    def step_seconds(self) -> float:
        return self.subsampling * self.frame_seconds

    def fbank(self, samples: np.ndarray) -> np.ndarray:
        """Mono float samples (n,) in [-1, 1] at the model's rate -> log-mel filterbank (T, F) float32."""
        return self.front_end(samples)

    def log_probs_batch(self, fbank: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """fbank (B, T, F), lengths (B,) -> log_probs (B, ceil(T/4), V), out_lengths (B,) (model.onnx)."""
        log_probs, steps = self.utterance.run(
            None, {"fbank": fbank.astype(np.float32, copy=False), "lengths": lengths.astype(np.int64, copy=False)}
        )
        return log_probs, steps

    def log_probs(self, fbank: np.ndarray) -> np.ndarray:
        """One utterance's filterbank (T, F), T >= 1 -> its CTC log-probabilities (ceil(T/4), V)."""
        log_probs, _ = self.log_probs_batch(fbank[None], np.array([fbank.shape[0]]))
        return log_probs[0]

    def decoding(self, **overrides: object) -> DecodeOptions:
        """The exported model's recommended decoding options, with overrides (gruasr.transcription.model_decoding)."""
        return model_decoding(self.meta, **overrides)

    def language_model(
        self, lm: str | os.PathLike[str] | None = None, lexicon: str | os.PathLike[str] | None = None
    ) -> tuple[NGramLM | None, Lexicon | None]:
        """The LM and lexicon: the named files, else the folder's own (read through the checked folder); without
        a lexicon the LM's words are the lexicon (as ModelBundle.language_model)."""
        language_model, words = None, None
        if lm is not None:
            language_model = NGramLM.from_arpa(lm)
        elif self.files.has(LM):
            language_model = NGramLM.from_arpa_text(self._text(LM), str(self.path / LM))
        if lexicon is not None:
            words = Lexicon.from_file(str(lexicon))
        elif self.files.has(LEXICON):
            words = Lexicon.from_text(self._text(LEXICON))
        elif language_model is not None:
            words = Lexicon(language_model.vocab)
        return language_model, words

    def _text(self, name: str) -> str:
        return self.files.read(name).decode("utf-8", errors="replace")


def verify_export(
    folder: str | os.PathLike[str], trusted_keys: Sequence[TrustedKey] | TrustedKey | None = None
) -> dict[str, Any]:
    """Check an export folder without keeping it: the manifest (and signature with `trusted_keys`), export.json,
    every graph loaded into ONNX Runtime, the LM and lexicon read. Returns a summary; CheckpointError otherwise."""
    model = OnnxModel.load(folder, trusted_keys=trusted_keys)
    graphs = sorted(name for key, name in model._names.items() if name and model._session(key) is not None)
    lm, _ = model.language_model()
    digests = model.files.digests
    return {
        "path": str(model.path),
        "files": sorted(digests) if digests is not None else [],
        "signed_by": model.files.signed_by,
        "graphs": graphs,
        "quantization": "int8" if model.meta.get("quantization") else None,
        "source_weights_sha256": model.meta.get("source_weights_sha256"),
        "sample_rate": model.sample_rate,
        "tokens": len(model.tokens),
        "lm": str(model.path / LM) if lm is not None else None,
    }
