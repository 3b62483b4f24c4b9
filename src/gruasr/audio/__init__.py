"""Audio in and out: decoding, resampling, G.711 and the telephone channel."""

from gruasr.audio.io import AN4_RAW, Audio, AudioInfo, RawFormat, audio_info, load_audio, save_wav
from gruasr.audio.resample import resample

__all__ = ["AN4_RAW", "Audio", "AudioInfo", "RawFormat", "audio_info", "load_audio", "resample", "save_wav"]
