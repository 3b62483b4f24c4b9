"""Features: Kaldi-compatible log-mel filterbank and MFCC (offline and streaming), global CMVN, SpecAugment.

fbank = Fbank(FbankConfig())                 # 8 kHz, 80 log-mel bins, 25 ms frames every 10 ms
feats = fbank(samples)                       # samples (n,) float in [-1, 1] -> (T, 80) float32
cmvn = compute_cmvn("train.jsonl", fbank, 8000); cmvn.save("cmvn.json")
x = SpecAugment(SpecAugmentConfig())(cmvn(batch), lengths, generator)
"""

from importlib import import_module
from typing import Any

from gruasr.features.config import FbankConfig, MfccConfig

# The torch parts are imported on first use, so the torch-free runtime (gruasr.runtime) can read FbankConfig.
_LAZY = {
    "CmvnStats": "cmvn", "GlobalCMVN": "cmvn", "compute_cmvn": "cmvn", "Fbank": "fbank", "Mfcc": "fbank",
    "mel_banks": "fbank", "num_frames": "framing", "SpecAugment": "specaugment", "SpecAugmentConfig": "specaugment",
    "StreamingFbank": "streaming",
}  # fmt: skip

__all__ = [
    "CmvnStats",
    "Fbank",
    "FbankConfig",
    "GlobalCMVN",
    "Mfcc",
    "MfccConfig",
    "SpecAugment",
    "SpecAugmentConfig",
    "StreamingFbank",
    "compute_cmvn",
    "mel_banks",
    "num_frames",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"gruasr.features.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'gruasr.features' has no attribute {name!r}")
