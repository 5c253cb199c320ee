"""MediaPipe's C++ start-up chatter is kept out of the labeller's output; anything else still gets through."""

from __future__ import annotations

import os

import numpy as np
import pytest

from data_tools.teachers.mediapipe_teacher import _filtered_stderr


def test_known_chatter_is_dropped_and_other_lines_pass(capfd: pytest.CaptureFixture[str]) -> None:
    with _filtered_stderr():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"W0000 00:00:1.0 1 inference_feedback_manager.cc:114] Feedback manager requires ...\n")
        os.write(2, b"E0000 something real went wrong\n")
        with _filtered_stderr():  # a second teacher's window inside the first: no second capture
            os.write(2, b"W0000 1 landmark_projection_calculator.cc:186] Using NORM_RECT without IMAGE_DIMENSIONS\n")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "XNNPACK" not in err and "inference_feedback_manager" not in err and "NORM_RECT" not in err
    assert "E0000 something real went wrong" in err and err.rstrip().endswith("after")


def test_a_real_teacher_on_a_real_frame_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mediapipe")
    from pathlib import Path

    from data_tools.teachers.mediapipe_teacher import MediaPipeTeacher
    from gaitpose.geometry import crop
    from gaitpose.io import open_recording

    clip = Path(__file__).resolve().parent / "data" / "pose2sim_cam01.mp4"
    with open_recording(clip) as rec:
        rgb = next(iter(rec.color_images(1))).rgb
    h, w = rgb.shape[:2]
    patch, _ = crop(rgb, np.array([w / 2, h / 2]), np.array([h * 0.75, h]), MediaPipeTeacher.input_wh)
    with MediaPipeTeacher() as teacher:
        found = [int((teacher(patch).scores > 0).sum()) for _ in range(2)]
    assert found[0] >= 15  # the man is there: the landmark model ran (its start-up prints the most)
    err = capfd.readouterr().err
    assert "XNNPACK" not in err and "inference_feedback_manager" not in err, err
