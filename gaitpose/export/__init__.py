"""Model export: torch -> ONNX with embedded metadata and parity checks, and INT8 quantisation.

torch/onnx are imported inside functions so ``import gaitpose.export`` stays cheap.
"""
