"""Voice activity and endpointing: where one utterance ends and the next begins, live or in a file.

WebRTC's voice activity detector (the maintained `webrtcvad-wheels` build) labels every 10, 20 or 30 ms frame as
speech or not. An utterance ends after `trailing_silence` seconds without speech, or when it reaches
`max_utterance` seconds; stretches of silence are cut the same way, so nothing grows without bound in a call of
hours. `min_speech` seconds of speech in a row are needed before a stretch counts as speech, so that clicks and
line noise do not hold an utterance open.

Streams (gruasr.streaming) and offline recognition (gruasr.recognizer, through `Segmenter`) cut audio by the
same rules (offline with the least aggressive VAD mode by default, so quiet talkers are kept), and stretches in
which the VAD heard no speech are not decoded at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gruasr.errors import ConfigError

VAD_RATES = (8000, 16000, 32000, 48000)


@dataclass(frozen=True)
class EndpointConfig:
    #: WebRTC VAD aggressiveness, 0 (keeps most as speech) to 3 (most aggressive)
    vad_mode: int = 2
    #: VAD frame: 10, 20 or 30 ms
    frame_ms: int = 20
    #: seconds without speech that end an utterance
    trailing_silence: float = 0.6
    #: seconds of speech in a row that start one
    min_speech: float = 0.06
    #: an utterance is cut when it reaches this many seconds, speech or not
    max_utterance: float = 20.0
    #: False: never cut (one utterance until the stream ends, as offline recognition of the whole input)
    enabled: bool = True
    #: give no final result for an utterance in which the VAD heard no speech (what a model makes of line
    #: noise between turns is dropped)
    drop_unvoiced: bool = True

    def __post_init__(self) -> None:
        if self.vad_mode not in (0, 1, 2, 3):
            raise ConfigError(f"vad_mode must be 0, 1, 2 or 3, got {self.vad_mode}")
        if self.frame_ms not in (10, 20, 30):
            raise ConfigError(f"frame_ms must be 10, 20 or 30 (WebRTC VAD frames), got {self.frame_ms}")
        if not self.trailing_silence > 0 or not self.min_speech >= 0:
            raise ConfigError("trailing_silence must be > 0 and min_speech >= 0")
        if not self.max_utterance > self.trailing_silence:
            raise ConfigError(f"max_utterance ({self.max_utterance}) must exceed trailing_silence")


class Endpointer:
    """Feed samples (float in [-1, 1], any chunk size); `accept` returns where utterances should end: (sample
    position, whether the utterance held speech). Holds less than one VAD frame of audio."""

    def __init__(self, config: EndpointConfig, sample_rate: int) -> None:
        if sample_rate not in VAD_RATES:
            raise ConfigError(f"the VAD runs at {VAD_RATES} Hz, not {sample_rate}")
        import webrtcvad

        self.config = config
        self.rate = sample_rate
        self.frame = sample_rate * config.frame_ms // 1000
        self._vad = webrtcvad.Vad(config.vad_mode)
        self._buffer = np.zeros(0, dtype=np.int16)
        self._position = 0  # samples consumed by the VAD
        self._start = 0  # sample where the current utterance began
        self._speech_run = 0  # samples of speech in a row
        self._silence_run = 0  # samples without (confirmed) speech in a row
        self._heard = False  # the current utterance holds confirmed speech
        self.speech_frames = 0
        self.frames = 0
        # the rules in samples
        self._min_speech = config.min_speech * sample_rate
        self._trailing = config.trailing_silence * sample_rate
        self._longest = config.max_utterance * sample_rate

    def accept(self, samples: np.ndarray) -> list[tuple[int, bool]]:
        if not self.config.enabled:
            return []
        pcm = np.clip(np.round(np.asarray(samples, dtype=np.float32) * 32768.0), -32768, 32767).astype(np.int16)
        buffer = np.concatenate([self._buffer, pcm]) if self._buffer.shape[0] else pcm
        whole = buffer.shape[0] // self.frame * self.frame
        data, self._buffer = buffer[:whole].tobytes(), buffer[whole:]
        cuts: list[tuple[int, bool]] = []
        frame, step, is_speech = self.frame, 2 * self.frame, self._vad.is_speech
        for begin in range(0, len(data), step):  # one VAD frame of 16-bit samples at a time
            speech = is_speech(data[begin : begin + step], self.rate)
            self._position += frame
            self.frames += 1
            if speech:
                self.speech_frames += 1
                self._speech_run += frame
            else:
                self._speech_run = 0
            if self._speech_run >= self._min_speech and self._speech_run > 0:
                self._heard = True
                self._silence_run = 0
            elif not speech:
                self._silence_run += frame
            if self._silence_run >= self._trailing or self._position - self._start >= self._longest:
                cuts.append((self._position, self._heard))
                self._start = self._position
                self._silence_run = 0
                self._heard = False
        return cuts

    @property
    def in_speech(self) -> bool:
        """Whether the current utterance has heard speech."""
        return self._heard


class Segmenter:
    """Cuts one channel into utterances with the endpointer's rules, for offline recognition.

    `accept(samples)` returns the utterances that ended: (start, end, voiced) in samples from the start of the
    channel. With the endpointer disabled, audio is cut every `max_utterance` seconds only. `finish()` returns
    the last one. The caller keeps the samples; this holds less than one VAD frame."""

    def __init__(self, config: EndpointConfig, sample_rate: int) -> None:
        self.config = config
        self._endpointer = Endpointer(config, sample_rate)
        self._limit = int(config.max_utterance * sample_rate)
        self._start = 0
        self._received = 0

    def accept(self, samples: np.ndarray) -> list[tuple[int, int, bool]]:
        self._received += len(samples)
        out = []
        if self.config.enabled:
            for cut, voiced in self._endpointer.accept(samples):
                out.append((self._start, cut, voiced))
                self._start = cut
        else:
            while self._received - self._start >= self._limit:
                out.append((self._start, self._start + self._limit, True))
                self._start += self._limit
        return out

    def finish(self) -> list[tuple[int, int, bool]]:
        if self._received <= self._start:
            return []
        voiced = self._endpointer.in_speech or not self.config.enabled
        last = (self._start, self._received, voiced)
        self._start = self._received
        return [last]


def speech_segments(samples: np.ndarray, sample_rate: int, config: EndpointConfig) -> list[tuple[int, int]]:
    """The utterances of mono audio (n,) in which the VAD heard speech: [(start, end)] in samples."""
    segmenter = Segmenter(config, sample_rate)
    cuts = segmenter.accept(samples) + segmenter.finish()
    return [(start, end) for start, end, voiced in cuts if voiced]
