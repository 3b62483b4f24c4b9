"""Audio in and out: decoding, resampling, G.711 and the telephone channel."""

from gruasr.audio.io import AN4_RAW, Audio, AudioInfo, RawFormat, audio_info, load_audio, save_wav
from gruasr.audio.resample import resample
from gruasr.audio.telephony import (
    TelephoneChannel,
    add_noise,
    apply_gain,
    band_limit,
    g711_roundtrip,
    packet_loss,
)

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
]
