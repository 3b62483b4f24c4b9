"""Features: Kaldi-compatible log-mel filterbank and MFCC (offline and streaming), global CMVN, SpecAugment.

fbank = Fbank(FbankConfig())                 # 8 kHz, 80 log-mel bins, 25 ms frames every 10 ms
feats = fbank(samples)                       # samples (n,) float in [-1, 1] -> (T, 80) float32
cmvn = compute_cmvn("train.jsonl", fbank, 8000); cmvn.save("cmvn.json")
x = SpecAugment(SpecAugmentConfig())(cmvn(batch), lengths, generator)
"""

from gruasr.features.cmvn import CmvnStats, GlobalCMVN, compute_cmvn
from gruasr.features.config import FbankConfig, MfccConfig
from gruasr.features.fbank import Fbank, Mfcc, mel_banks
from gruasr.features.framing import num_frames
from gruasr.features.specaugment import SpecAugment, SpecAugmentConfig
from gruasr.features.streaming import StreamingFbank

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
