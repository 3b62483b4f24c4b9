"""Audio in and out: decoding, resampling, G.711 and the telephone channel."""

from typing import Any

from gruasr.audio.io import AN4_RAW, Audio, AudioInfo, RawFormat, audio_info, load_audio, save_wav
from gruasr.audio.resample import resample

_TELEPHONY = (
    "TelephoneChannel", "add_noise", "apply_gain", "band_limit", "g711_roundtrip", "packet_loss", "spectral_tilt",
)  # fmt: skip

__all__ = [
    "AN4_RAW",
    "Audio",
    "AudioInfo",
    "RawFormat",
    "TelephoneChannel",
    "add_noise",
    "apply_gain",
    "audio_info",
    "band_limit",
    "g711_roundtrip",
    "load_audio",
    "packet_loss",
    "resample",
    "save_wav",
    "spectral_tilt",
]


def __getattr__(name: str) -> Any:
    # The telephone channel (scipy) is imported on first use: reading audio needs neither, and the torch-free
    # runtime (gruasr.runtime) installs without scipy.
    if name in _TELEPHONY:
        from gruasr.audio import telephony

        return getattr(telephony, name)
    raise AttributeError(f"module 'gruasr.audio' has no attribute {name!r}")
