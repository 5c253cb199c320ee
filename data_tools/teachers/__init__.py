"""Teachers: pose models that produce pseudo-labels on a person crop.

A teacher is anything with ``name`` and ``__call__(crop_rgb) -> TeacherOutput`` giving the 21
gaitpose keypoints in the crop's pixels. ``make_teacher`` builds one by name.
"""

from __future__ import annotations

from pathlib import Path

from data_tools.teachers.base import Teacher, TeacherOutput

__all__ = ["Teacher", "TeacherOutput", "make_teacher"]


def make_teacher(name: str, config: str | Path | None = None) -> Teacher:
    """Build a teacher by name: 'mediapipe' (default) or 'onnx' (needs a YAML config).

    It lives here, not in ``base``, so the implementations import ``base`` without a cycle.
    """
    if name == "mediapipe":
        from data_tools.teachers.mediapipe_teacher import MediaPipeTeacher

        return MediaPipeTeacher()
    if name == "onnx":
        if config is None:
            raise ValueError("the onnx teacher needs --teacher-config YAML (model, input size, mean/std, keypoints)")
        from data_tools.teachers.onnx_teacher import OnnxTeacher

        return OnnxTeacher.from_yaml(config)
    raise ValueError(f"unknown teacher {name!r}; choose mediapipe or onnx")
