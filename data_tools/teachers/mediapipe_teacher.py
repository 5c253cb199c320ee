"""MediaPipe BlazePose (full) as a teacher, fully offline.

mediapipe 0.10.21 bundles the 'full' landmark model; lite and heavy would download weights
and fail here, so complexity is fixed to 1. ``static_image_mode=True`` treats every crop on
its own: the default tracking mode smooths landmarks across calls, which drags the swing foot
toward the stance foot and would leak state between crops of different recordings.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

import numpy as np

from data_tools.teachers.base import TeacherOutput
from gaitpose.skeleton import BLAZEPOSE33_TO_GAITPOSE, NUM_KEYPOINTS

# What MediaPipe's C++ side prints to the process's stderr when a graph starts and sees its first
# frame: start-up chatter, not problems (it bypasses Python's logging, so it cannot be configured).
_BENIGN = re.compile(
    r"Created TensorFlow Lite XNNPACK delegate|All log messages before absl::InitializeLog|"
    r"inference_feedback_manager\.cc|landmark_projection_calculator\.cc.*NORM_RECT without IMAGE_DIMENSIONS|"
    r"gl_context|GL version|Initialized TensorFlow Lite runtime"
)


_capturing = False  # one capture of the process's stderr at a time: nested windows would restore out of order


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    """Capture file descriptor 2 for the block and pass on every line that is not known chatter.

    Why: labelling prints five lines of C++ start-up messages per worker into the progress bar, which
    hides the lines a user needs (how many frames were labelled, which recording failed). Only the
    known lines are dropped; anything else MediaPipe prints still reaches stderr, after the block.
    """
    global _capturing
    fd = 2  # the C++ side writes to the descriptor, whatever Python's sys.stderr is at the moment
    if _capturing:  # another teacher's window already captures it
        yield
        return
    _capturing = True
    with tempfile.TemporaryFile() as tmp:
        if sys.stderr is not None:
            sys.stderr.flush()
        saved = os.dup(fd)
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            _capturing = False
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode("utf-8", "replace").splitlines() if ln and not _BENIGN.search(ln)]
            if kept:
                os.write(fd, ("\n".join(kept) + "\n").encode())


class MediaPipeTeacher:
    name = "mediapipe"
    # Crop size the labeller should hand over (width, height): 3:4 portrait fits a standing
    # person; MediaPipe resizes internally, so this only fixes the aspect and the sampling.
    input_wh: tuple[int, int] = (288, 384)

    def __init__(self, min_detection_confidence: float = 0.3) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        # MediaPipe starts its graph threads in the constructor and prints from them a moment later,
        # and more when the landmark model first runs: one filtered window from here until the first
        # person is found (or a few calls), closed by close() at the latest.
        self._quiet = contextlib.ExitStack()
        self._quiet.enter_context(_filtered_stderr())
        self._quiet_calls = 20
        try:
            import mediapipe as mp

            self._pose = mp.solutions.pose.Pose(
                static_image_mode=True,
                model_complexity=1,
                smooth_landmarks=False,
                enable_segmentation=False,
                min_detection_confidence=min_detection_confidence,
            )
        except BaseException:
            self._quiet.close()
            raise

    def __call__(self, crop_rgb: np.ndarray) -> TeacherOutput:
        h, w = crop_rgb.shape[:2]
        try:
            result = self._pose.process(np.ascontiguousarray(crop_rgb))
        except BaseException:
            self._quiet.close()
            raise
        if self._quiet_calls:
            self._quiet_calls = 0 if result.pose_landmarks is not None else self._quiet_calls - 1
            if not self._quiet_calls:
                self._quiet.close()
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
        self._quiet.close()
        self._pose.close()

    def __del__(self) -> None:  # a teacher dropped without close() must not keep stderr captured
        quiet = getattr(self, "_quiet", None)
        if quiet is not None:
            quiet.close()

    def __enter__(self) -> MediaPipeTeacher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
