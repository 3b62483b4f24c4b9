"""The server's Prometheus metrics (prometheus-client), in a registry of the app's own: nothing global, so tests
and several apps in one process do not share counters. `GET /metrics` renders it in the text exposition format.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0, 2.0, 5.0)
RTF_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)

#: why a session or request was refused (the `reason` label of gruasr_refusals_total)
REASONS = ("capacity", "draining", "backlog", "slow", "bad_request", "bad_audio", "too_large", "unauthorized",
           "idle", "duration", "handshake_timeout", "per_key", "per_address", "quota")  # fmt: skip


class Metrics:
    """Counters, gauges and histograms of one server; see docs/serving.md for their meaning."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions = Counter("gruasr_sessions", "Sessions started, by protocol", ["protocol"], registry=r)
        self.active = Gauge("gruasr_sessions_active", "Sessions open now, by protocol", ["protocol"], registry=r)
        self.audio = Counter("gruasr_audio_seconds", "Audio received, seconds, by protocol", ["protocol"], registry=r)
        self.refusals = Counter("gruasr_refusals", "Sessions and requests refused, by reason", ["reason"], registry=r)
        self.rtf = Histogram(
            "gruasr_tick_real_time_factor",
            "Compute time of a tick over the audio it advanced (all streams together)",
            buckets=RTF_BUCKETS,
            registry=r,
        )
        self.tick = Histogram(
            "gruasr_tick_seconds", "Compute time of one tick (all streams)", buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch = Gauge("gruasr_tick_streams", "Streams advanced in the last tick", registry=r)
        self.partial_latency = Histogram(
            "gruasr_partial_latency_seconds",
            "From audio arriving to the reply or partial event it produced",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.final_latency = Histogram(
            "gruasr_final_latency_seconds",
            "From the audio that ended an utterance arriving to its decoded final result",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decode_queue = Gauge("gruasr_decode_queue", "Finals waiting for or in the decoding pool", registry=r)
        self.requests = Counter(
            "gruasr_transcription_requests", "REST transcription requests, by response format", ["format"], registry=r
        )
        for reason in REASONS:  # present at zero, so a dashboard sees the series before the first refusal
            self.refusals.labels(reason)

    def refuse(self, reason: str) -> None:
        self.refusals.labels(reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
