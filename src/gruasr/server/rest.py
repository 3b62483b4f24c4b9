"""OpenAI-compatible transcription of recorded calls: `POST /v1/audio/transcriptions` (multipart/form-data), as
the OpenAI API and its SDKs speak it (platform.openai.com/docs/api-reference/audio/createTranscription).

Fields: `file` (required: any format gruasr.audio reads: WAV in any encoding incl. G.711, FLAC, ...), `model`
(accepted, any name: the server has one model), `response_format` = json (default) | text | srt | vtt |
verbose_json, `timestamp_granularities[]` = segment (default) and/or word (verbose_json only), `language` and
`prompt` and `temperature` (accepted, ignored). Every channel of the file is a call leg: a stereo call's legs
are transcribed apart and merged in time order; verbose_json segments then carry "channel" and "leg", and
subtitles name the leg. Errors come as OpenAI's `{"error": {"message", "type", "param", "code"}}` with 400
(bad request or audio), 401 (no or a bad API key, from gruasr.server.security), 408 (the body did not arrive
within `upload_seconds`), 413 (over `max_upload_bytes` or `max_upload_seconds` of audio), 429 (a per-key or
per-address limit, or the key's daily audio quota) or 503 (shutting down). The model is the server's REST model
(`rest_model`: by default the bundled bidirectional telephone model, the more accurate one on recordings).

The upload never touches the disk: it is decoded from an anonymous in-memory file (Linux `memfd_create`; where
that is missing, a private temporary file deleted at once). Its header is read first, so a file that claims hours
of audio (or a rate outside 8-48 kHz) is refused before any decoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from gruasr.audio.io import AudioInfo, audio_info
from gruasr.decoding.hypothesis import Word
from gruasr.errors import AudioFormatError, GruAsrError
from gruasr.server.engine import Engine, Refused
from gruasr.server.guard import Pass
from gruasr.server.security import principal
from gruasr.server.wire import MAX_RATE, MIN_RATE
from gruasr.subtitles import Cue, subtitles
from gruasr.transcription import Result

log = logging.getLogger("gruasr.server.rest")
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
SEGMENT_GAP = 0.8  # seconds of silence between words that start a new segment
PROTOCOL = "rest"


def error(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    """OpenAI's error object."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status)


def segments(results: list[Result]) -> list[dict[str, Any]]:
    """Each channel's words grouped into segments at pauses over SEGMENT_GAP, all channels in time order."""
    out: list[dict[str, Any]] = []
    for result in results:
        group: list[Word] = []
        for word in [*result.hypothesis.words, None]:
            if group and (word is None or word.start - group[-1].end > SEGMENT_GAP):
                item: dict[str, Any] = {"start": round(group[0].start, 3), "end": round(group[-1].end, 3),
                                        "text": " ".join(w.word for w in group), "words": group}  # fmt: skip
                if len(results) > 1:
                    item.update(channel=result.channel, leg=result.leg)
                out.append(item)
                group = []
            if word is not None:
                group.append(word)
    out.sort(key=lambda s: (s["start"], s.get("channel", 0)))
    return out


def _verbose(parts: list[dict[str, Any]], duration: float, words: bool) -> dict[str, Any]:
    listed = []
    for n, part in enumerate(parts):
        seg = {"id": n, "seek": 0, "start": part["start"], "end": part["end"], "text": part["text"], "tokens": [],
               "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 1.0, "no_speech_prob": 0.0}  # fmt: skip
        if "channel" in part:
            seg.update(channel=part["channel"], leg=part["leg"])
        listed.append(seg)
    out: dict[str, Any] = {"task": "transcribe", "language": "english", "duration": round(duration, 3),
                           "text": " ".join(p["text"] for p in parts), "segments": listed}  # fmt: skip
    if words:
        out["words"] = [
            {"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3), "confidence": round(w.conf, 4)}
            for p in parts
            for w in p["words"]
        ]
    return out


@contextlib.contextmanager
def in_memory_file(data: bytes, suffix: str) -> Iterator[str]:
    """A path that reads back `data` (audio readers need a path): an anonymous in-memory file where the system
    has one (Linux memfd: nothing reaches a disk), else a private temporary file, deleted at once."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("gruasr-upload", os.MFD_CLOEXEC)
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, name = tempfile.mkstemp(prefix="gruasr-upload-", suffix=suffix)
    try:
        _write_all(fd, data)
        yield name
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(name)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _transcribe(engine: Engine, data: bytes, suffix: str, admit: Callable[[AudioInfo], None]) -> list[Result]:
    """In the offline pool: the upload from memory; its header checked by `admit` (limits, quota) before any
    decoding; every channel transcribed by the server's model."""
    with in_memory_file(data, suffix) as name:
        try:
            admit(audio_info(name))
            results = engine.offline.transcribe_file(name)
            return [engine.policy.redact_result(r) for r in results] if engine.policy.enabled else results
        except GruAsrError as err:  # the messages name the file's path: the client knows its file by its name
            if isinstance(err, Refused):
                raise
            raise type(err)(str(err).replace(name, "the uploaded file")) from None


def _admission(engine: Engine, held: Pass) -> Callable[[AudioInfo], None]:
    limit = engine.config.max_upload_seconds

    def admit(info: AudioInfo) -> None:
        if not MIN_RATE <= info.sample_rate <= MAX_RATE:
            raise AudioFormatError(f"the sample rate {info.sample_rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
        if info.duration > limit:
            raise Refused("too_large", f"the upload holds {info.duration:.0f} s of audio, over the {limit:g} s limit")
        held.spend(info.duration * info.channels)

    return admit


#: HTTP status of a refusal, by reason
_STATUS = {"too_large": 413, "per_key": 429, "per_address": 429, "quota": 429, "draining": 503}


async def transcriptions(request: Request, engine: Engine) -> Response:
    """POST /v1/audio/transcriptions (see the module docstring)."""
    metrics, limit = engine.metrics, engine.config.max_upload_bytes
    if engine.draining:
        metrics.refuse("draining")
        return error(503, "the server is shutting down", code="draining")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        metrics.refuse("too_large")
        return error(413, f"the upload is over the {limit} byte limit", "file", "too_large")
    try:
        held = engine.guard.admit(principal(request.scope))
    except Refused as err:
        metrics.refuse(err.reason)
        return error(_STATUS.get(err.reason, 503), str(err), code=err.reason)
    try:
        return await _transcription(request, engine, held)
    finally:
        held.release()


async def _transcription(request: Request, engine: Engine, held: Pass) -> Response:
    metrics, limit = engine.metrics, engine.config.max_upload_bytes
    try:
        async with asyncio.timeout(engine.config.upload_seconds), request.form(max_files=1, max_fields=20) as form:
            upload = form.get("file")
            fmt = str(form.get("response_format") or "json")
            granularities = [str(g) for g in form.getlist("timestamp_granularities[]")]
            if not isinstance(upload, UploadFile):
                metrics.refuse("bad_request")
                return error(400, "the 'file' field (an audio file) is required", "file")
            if fmt not in FORMATS:
                metrics.refuse("bad_request")
                return error(400, f"response_format must be one of {', '.join(FORMATS)}", "response_format")
            if any(g not in ("word", "segment") for g in granularities):
                metrics.refuse("bad_request")
                return error(400, "timestamp_granularities[] must be word or segment", "timestamp_granularities[]")
            data = await upload.read(limit + 1)
            suffix = Path(upload.filename or "audio").suffix[:10]
    except (MultiPartException, HTTPException) as err:  # inside an app, Starlette raises the latter for the former
        metrics.refuse("bad_request")
        detail = err.message if isinstance(err, MultiPartException) else err.detail
        return error(400, f"not a valid multipart form: {detail}")
    except TimeoutError:
        metrics.refuse("slow")
        return error(408, f"the upload did not arrive within {engine.config.upload_seconds:g} s", code="timeout")
    if len(data) > limit:
        metrics.refuse("too_large")
        return error(413, f"the upload is over the {limit} byte limit", "file", "too_large")
    try:
        results = await asyncio.get_running_loop().run_in_executor(
            engine.offline_pool, _transcribe, engine, data, suffix, _admission(engine, held)
        )
    except Refused as err:
        metrics.refuse(err.reason)
        param = "file" if err.reason == "too_large" else None
        return error(_STATUS.get(err.reason, 503), str(err), param, err.reason)
    except GruAsrError as err:
        metrics.refuse("bad_audio")
        return error(400, str(err), "file", "bad_audio")
    duration = max((r.duration for r in results), default=0.0)
    metrics.requests.labels(fmt).inc()
    metrics.audio.labels(PROTOCOL).inc(duration * len(results))
    parts = segments(results)
    text = " ".join(p["text"] for p in parts)
    extra: dict[str, Any] = {"protocol": PROTOCOL, "format": fmt, "seconds": round(duration, 2)}
    if engine.config.log_transcripts:  # off by default: no transcript text in the logs
        extra["text"] = text
    log.info("transcribed", extra=extra)
    if fmt == "json":
        return JSONResponse({"text": text})
    if fmt == "text":
        return PlainTextResponse(text + "\n")
    if fmt in ("srt", "vtt"):
        cues = (Cue(p["start"], p["end"], p["text"], p.get("leg")) for p in parts)
        return PlainTextResponse(
            subtitles(cues, fmt), media_type="text/vtt" if fmt == "vtt" else "application/x-subrip"
        )
    return JSONResponse(_verbose(parts, duration, "word" in granularities))
