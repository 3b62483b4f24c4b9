"""Streaming recognition of live calls: `Recognizer` (shared, holds the model) and `Stream` (one per call leg)."""

from gruasr.vad import EndpointConfig, Endpointer
from gruasr.streaming.recognizer import Event, Recognizer, Stream

__all__ = ["EndpointConfig", "Endpointer", "Event", "Recognizer", "Stream"]
