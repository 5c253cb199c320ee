"""The small teacher interface shared by every pseudo-labelling backend."""

from __future__ import annotations

from dataclasses import dataclass
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
