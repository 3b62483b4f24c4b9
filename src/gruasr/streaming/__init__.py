"""Streaming recognition of live calls: `StreamingRecognizer` (shared, holds the model) and `Stream` (one per
call leg), which gives `Event`s; endpointing by `gruasr.vad`.

    from gruasr.streaming import EndpointConfig, StreamingRecognizer
    asr = StreamingRecognizer.load(endpoint=EndpointConfig(trailing_silence=0.6))   # bundled model, device="cpu"
"""

from gruasr.streaming.recognizer import Event, PendingFinal, Stream, StreamingRecognizer
from gruasr.vad import EndpointConfig, Endpointer

__all__ = ["EndpointConfig", "Endpointer", "Event", "PendingFinal", "Stream", "StreamingRecognizer"]
