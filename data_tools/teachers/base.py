"""The small teacher interface shared by every pseudo-labelling backend."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


@dataclass
class TeacherOutput:
    """Keypoints of the one person in a crop, in the crop's pixels (gaitpose order, 21)."""

    keypoints: np.ndarray  # (21, 2) float32
    scores: np.ndarray  # (21,) float32 in [0, 1]; 0 = not found

    @property
    def found(self) -> bool:
        return bool((self.scores > 0).any())


class Teacher(Protocol):
    name: str

    def __call__(self, crop_rgb: np.ndarray) -> TeacherOutput: ...

    def close(self) -> None: ...


def make_teacher(name: str, config: str | Path | None = None) -> Teacher:
    """Build a teacher by name: 'mediapipe' (default) or 'onnx' (needs a YAML config)."""
    if name == "mediapipe":
        from data_tools.teachers.mediapipe_teacher import MediaPipeTeacher

        return MediaPipeTeacher()
    if name == "onnx":
        if config is None:
            raise ValueError("the onnx teacher needs --teacher-config YAML (model, input size, mean/std, keypoints)")
        from data_tools.teachers.onnx_teacher import OnnxTeacher

        return OnnxTeacher.from_yaml(config)
    raise ValueError(f"unknown teacher {name!r}; choose mediapipe or onnx")
