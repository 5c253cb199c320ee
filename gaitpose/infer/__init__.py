"""Runtime inference with ONNX Runtime, numpy and OpenCV only (no torch on this path)."""

from gaitpose.infer.localizer import Letterbox, OnnxLocalizer, decode_localizer
from gaitpose.infer.pose import OnnxPoseEstimator, PoseResult, load_onnx_meta
from gaitpose.infer.tracker import SubjectTracker

__all__ = [
    "Letterbox",
    "OnnxLocalizer",
    "OnnxPoseEstimator",
    "PoseResult",
    "SubjectTracker",
    "decode_localizer",
    "load_onnx_meta",
]
