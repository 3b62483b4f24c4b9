"""`gruasr stream` (events of a live stream, from a file) and `gruasr call` (a call's transcript, leg by leg)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from gruasr.cli.inputs import add_raw_option, check_audio_files
from gruasr.cli.recognize import _add_decoding, _recognizer
from gruasr.cli.redaction import add_redact_option, redaction
from gruasr.errors import ConfigError

if TYPE_CHECKING:
    from gruasr.streaming import StreamingRecognizer


def _streaming(args: argparse.Namespace) -> StreamingRecognizer:
    from gruasr.vad import EndpointConfig

    endpoint = EndpointConfig(
        vad_mode=args.vad_mode, trailing_silence=args.trailing_silence, max_utterance=args.max_utterance,
        enabled=not args.no_endpoint, drop_unvoiced=not args.keep_unvoiced,
    )  # fmt: skip
    second = _second_pass(args)
    if args.engine == "onnx":  # ONNX Runtime, without torch (gruasr.runtime); its sessions get --threads
        from gruasr.runtime import OnnxStreamingRecognizer

        offline: Any = _recognizer(args)
        onnx: Any = OnnxStreamingRecognizer(offline, endpoint, second)  # StreamingRecognizer's interface
        return onnx
    import torch

    from gruasr.streaming import StreamingRecognizer
    from gruasr.streaming.recognizer import bundled_streaming_model

    # One intra-op thread by default: a stream's steps are small, and with a busy core beside it a second thread
    # makes every step wait on a descheduled peer (docs/serving.md, "Threads").
    torch.set_num_threads(args.threads)
    if args.model is None:
        args.model = str(bundled_streaming_model())
    return StreamingRecognizer(_recognizer(args), endpoint, second)


def _second_pass(args: argparse.Namespace) -> Any:
    """--second-pass [DIR]: the recognizer of the finals (default: the bundled default model; with --engine onnx an
    exported folder), decoded as the decoding options say, with its own LM; None without the option."""
    if args.second_pass is None:
        return None
    if args.engine == "onnx" and args.second_pass == "default":
        raise ConfigError("--engine onnx needs --second-pass DIR, a folder of `gruasr model export --onnx`")
    model = None if args.second_pass == "default" else args.second_pass
    return _recognizer(argparse.Namespace(**{**vars(args), "model": model, "lm": None, "lexicon": None}))


def _cmd_stream(args: argparse.Namespace) -> int:
    from gruasr.redact import redact_events
    from gruasr.streaming.calls import file_events

    policy = redaction(args)
    if not check_audio_files("stream", [args.file], args.raw):  # before the model loads
        return 1
    recognizer = _streaming(args)
    events = file_events(recognizer, args.file, args.chunk_ms, label_legs=False, realtime=args.realtime, raw=args.raw)
    for event in redact_events(events, policy):  # a leg's held digits join its next final
        if args.json:
            print(json.dumps(event.to_dict()), flush=True)
        elif event.type == "final" or args.partials:
            leg = f"{event.leg}: " if event.leg else ""
            print(f"{event.type:7s} {event.start:8.2f} {event.end:8.2f}  {leg}{event.text}", flush=True)
    return 0


def _cmd_call(args: argparse.Namespace) -> int:
    from gruasr.redact import redact_events
    from gruasr.streaming.calls import call_transcript
    from gruasr.subtitles import Cue, subtitles, timestamp

    policy = redaction(args)
    if not check_audio_files("call", [args.file], args.raw):  # before the model loads
        return 1
    recognizer = _streaming(args)
    finals = call_transcript(recognizer, args.file, raw=args.raw)
    if policy.enabled:  # each leg's finals in its own order; held digits move a final's start, so sort again
        finals = sorted(redact_events(finals, policy), key=lambda e: (e.start, e.channel))
    if args.format == "json":
        for event in finals:
            print(json.dumps({"audio": args.file, **event.to_dict()}))
    elif args.format in ("srt", "vtt"):
        sys.stdout.write(subtitles((Cue(e.start, e.end, e.text, e.leg) for e in finals), args.format))
    else:
        for event in finals:
            print(f"[{timestamp(event.start, '.')} - {timestamp(event.end, '.')}] {event.leg}: {event.text}")
    return 0


def _add_streaming(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="audio file (any format and rate gruasr reads)")
    add_raw_option(parser)
    add_redact_option(parser)
    _add_decoding(parser)
    parser.set_defaults(model=None)
    parser.add_argument("--vad-mode", type=int, default=2, choices=[0, 1, 2, 3], help="WebRTC VAD aggressiveness")
    parser.add_argument("--trailing-silence", type=float, default=0.6, help="seconds of silence ending an utterance")
    parser.add_argument("--max-utterance", type=float, default=20.0, help="longest utterance, seconds")
    parser.add_argument("--no-endpoint", action="store_true", help="no endpointing: one utterance per leg")
    parser.add_argument(
        "--threads", type=int, default=1, help="intra-op threads of torch or ONNX Runtime (default 1, docs/serving.md)"
    )
    parser.add_argument(
        "--keep-unvoiced", action="store_true", help="also report utterances in which the VAD heard no speech"
    )
    parser.add_argument(
        "--second-pass", nargs="?", const="default", metavar="DIR",
        help="finals from a second model on each utterance's audio (no DIR: the bundled default model; "
        "partials stay the streaming model's; docs/streaming.md)",
    )  # fmt: skip


def add_stream_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    st = sub.add_parser("stream", help="recognize a file as a live stream: partial and final events")
    _add_streaming(st)
    st.add_argument("--chunk-ms", type=float, default=100.0, help="audio per chunk fed to the stream (ms)")
    st.add_argument("--realtime", action="store_true", help="feed the audio no faster than real time")
    st.add_argument("--json", action="store_true", help="one JSON event per line")
    st.add_argument("--partials", action="store_true", help="without --json: also print partial results")
    st.set_defaults(func=_cmd_stream)

    call = sub.add_parser("call", help="transcribe a call: one leg per channel, time-ordered, with timestamps")
    _add_streaming(call)
    form = call.add_mutually_exclusive_group()
    form.add_argument("--json", dest="format", action="store_const", const="json", help="one JSON line per turn")
    form.add_argument("--srt", dest="format", action="store_const", const="srt", help="SubRip subtitles")
    form.add_argument("--vtt", dest="format", action="store_const", const="vtt", help="WebVTT subtitles")
    call.set_defaults(func=_cmd_call, format="text")
