"""The torch-free runtime: exported models (gruasr model export --onnx) on ONNX Runtime, with Kaldi's filterbank in
numpy (gruasr.features.kaldi) and gruasr's own decoders. Nothing here imports torch (tests/runtime checks it in a
venv without torch).

    from gruasr.runtime import OnnxRecognizer, OnnxStreamingRecognizer
    OnnxRecognizer.load("exports/telephone").transcribe_file("call.wav")
    OnnxStreamingRecognizer.load("exports/telephone-streaming").stream(8000).accept(chunk)
"""

from gruasr.runtime.model import OnnxModel
from gruasr.runtime.offline import OnnxRecognizer
from gruasr.runtime.streaming import OnnxStream, OnnxStreamingRecognizer

__all__ = ["OnnxModel", "OnnxRecognizer", "OnnxStream", "OnnxStreamingRecognizer"]
