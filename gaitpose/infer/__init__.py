"""Runtime inference with ONNX Runtime, numpy and OpenCV only (no torch on this path)."""

from gaitpose.infer.pose import OnnxPoseEstimator, PoseResult, load_onnx_meta

__all__ = ["OnnxPoseEstimator", "PoseResult", "load_onnx_meta"]
