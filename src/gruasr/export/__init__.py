"""Export to ONNX (gruasr.export.onnx) and int8 quantization of the exported graphs (gruasr.export.quantize).
The runtime that runs the exported folders without torch is gruasr.runtime."""
