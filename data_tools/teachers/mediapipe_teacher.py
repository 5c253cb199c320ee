"""MediaPipe BlazePose (full) as a teacher, fully offline.

mediapipe 0.10.21 bundles the 'full' landmark model; lite and heavy would download weights
and fail here, so complexity is fixed to 1. ``static_image_mode=True`` treats every crop on
its own: the default tracking mode smooths landmarks across calls, which drags the swing foot
toward the stance foot and would leak state between crops of different recordings.
"""

from __future__ import annotations

import numpy as np

from data_tools.teachers.base import TeacherOutput
from gaitpose.skeleton import BLAZEPOSE33_TO_GAITPOSE, NUM_KEYPOINTS


class MediaPipeTeacher:
    name = "mediapipe"
    # Crop size the labeller should hand over (width, height): 3:4 portrait fits a standing
    # person; MediaPipe resizes internally, so this only fixes the aspect and the sampling.
    input_wh: tuple[int, int] = (288, 384)

    def __init__(self, min_detection_confidence: float = 0.3) -> None:
        import os

        os.environ.setdefault("GLOG_minloglevel", "2")
        import mediapipe as mp

        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True,
            model_complexity=1,
            smooth_landmarks=False,
            enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
        )

    def __call__(self, crop_rgb: np.ndarray) -> TeacherOutput:
        h, w = crop_rgb.shape[:2]
        result = self._pose.process(np.ascontiguousarray(crop_rgb))
        if result.pose_landmarks is None:
            return TeacherOutput(np.zeros((NUM_KEYPOINTS, 2), np.float32), np.zeros(NUM_KEYPOINTS, np.float32))
        lm = result.pose_landmarks.landmark
        idx = BLAZEPOSE33_TO_GAITPOSE
        # Landmarks are normalised to the image edges; -0.5 converts to pixel-centre coordinates, the
        # convention of ``gaitpose.codec.flip_keypoints``, so mirrored passes line up exactly.
        kp = np.array([[lm[i].x * w - 0.5, lm[i].y * h - 0.5] for i in idx], dtype=np.float32)
        # Visibility is not a reliable quality signal on its own (it stays high on wrong feet);
        # the mirror-agreement rule in labelling is what filters keypoints.
        vis = np.array([lm[i].visibility for i in idx], dtype=np.float32)
        return TeacherOutput(kp, np.clip(vis, 0.0, 1.0))

    def close(self) -> None:
        self._pose.close()

    def __enter__(self) -> MediaPipeTeacher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
