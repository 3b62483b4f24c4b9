"""A recorded call played as a live one: one stream per channel (call leg), fed in chunks, the legs advanced
together; what `gruasr stream`, `gruasr call` and `gruasr demo` use.

    from gruasr.streaming import StreamingRecognizer
    from gruasr.streaming.calls import call_transcript, file_events
    recognizer = StreamingRecognizer.load()
    for event in file_events(recognizer, "call.wav"):   # partial and final events as they come
        print(event.to_dict())
    turns = call_transcript(recognizer, "call.wav")      # the finals of all legs, in time order
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from gruasr.audio.io import RawFormat, audio_info, load_audio
from gruasr.events import Event
from gruasr.transcription import leg_name

if TYPE_CHECKING:  # the torch recognizer or the ONNX runtime's (gruasr.runtime), which has the same interface
    from gruasr.streaming.recognizer import StreamingRecognizer

READ_SECONDS = 10.0  # the file is read in blocks of this much audio: memory stays bounded


def _blocks(path: str | os.PathLike[str], raw: RawFormat | None) -> Iterator[tuple[np.ndarray, int]]:
    """The file's audio (channels, n) at its own rate, block by block."""
    info = audio_info(path, raw)
    position = 0
    block = int(READ_SECONDS * info.sample_rate)
    while position < info.frames:
        count = min(block, info.frames - position)
        audio = load_audio(path, raw=raw, start=position / info.sample_rate, duration=count / info.sample_rate)
        position += count
        yield audio.samples, info.sample_rate


def _chunks(path: str | os.PathLike[str], chunk_ms: float, raw: RawFormat | None) -> Iterator[np.ndarray]:
    """(channels, chunk) pieces of `chunk_ms` (the last may be shorter) at the file's rate."""
    carry: np.ndarray | None = None
    for samples, rate in _blocks(path, raw):
        buffer = samples if carry is None else np.concatenate([carry, samples], axis=1)
        size = max(1, int(round(chunk_ms * rate / 1000)))
        whole = buffer.shape[1] // size * size
        for start in range(0, whole, size):
            yield buffer[:, start : start + size]
        carry = buffer[:, whole:]
    if carry is not None and carry.shape[1]:
        yield carry


def file_events(
    recognizer: StreamingRecognizer,
    path: str | os.PathLike[str],
    chunk_ms: float = 100.0,
    label_legs: bool = True,
    realtime: bool = False,
    raw: RawFormat | None = None,
) -> Iterator[Event]:
    """A file played as a live call: one stream per channel (channel 0, 1, ... labelled legs A, B, ...; a mono
    file's one leg is labelled unless `label_legs` is False), fed `chunk_ms` at a time, the legs' recurrent
    steps run as one batch; yields the events as they come. `realtime` paces the input as a live call would
    arrive. `raw` reads headerless audio."""
    info = audio_info(path, raw)
    label = label_legs or info.channels > 1
    streams = [
        recognizer.stream(info.sample_rate, leg_name(ch) if label else None, channel=ch) for ch in range(info.channels)
    ]
    began = time.perf_counter()
    for chunk in _chunks(path, chunk_ms, raw):
        for stream, samples in zip(streams, chunk, strict=True):
            stream.feed(samples)
        recognizer.advance(streams)
        for stream in streams:
            yield from stream.events()
        if realtime:
            ahead = streams[0].seconds - (time.perf_counter() - began)
            if ahead > 0:
                time.sleep(ahead)
    for stream in streams:
        yield from stream.finish()


def call_transcript(
    recognizer: StreamingRecognizer,
    path: str | os.PathLike[str],
    chunk_ms: float = 100.0,
    raw: RawFormat | None = None,
) -> list[Event]:
    """Every leg's final results, in time order (legs A, B, ... for the file's channels 0, 1, ...)."""
    finals = [e for e in file_events(recognizer, path, chunk_ms, raw=raw) if e.type == "final"]
    return sorted(finals, key=lambda e: (e.start, e.channel))
