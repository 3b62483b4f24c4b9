"""Streaming recognition of live calls: `StreamingRecognizer` (shared, holds the model) and `Stream` (one per
call leg), which gives `Event`s; endpointing by `gruasr.vad`.

    from gruasr.streaming import EndpointConfig, StreamingRecognizer
    asr = StreamingRecognizer.load(endpoint=EndpointConfig(trailing_silence=0.6))   # bundled model, device="cpu"
"""

from typing import Any

from gruasr.events import Event, PendingFinal
from gruasr.vad import EndpointConfig, Endpointer

__all__ = ["EndpointConfig", "Endpointer", "Event", "PendingFinal", "Stream", "StreamingRecognizer"]


def __getattr__(name: str) -> Any:
    # The torch recognizer is imported on first use, so gruasr.streaming.calls serves the torch-free runtime too.
    if name in ("Stream", "StreamingRecognizer"):
        from gruasr.streaming import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'gruasr.streaming' has no attribute {name!r}")
