"""``benchmarks.whole_job``: both whole jobs really run as processes on a real clip and are tabulated."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gaitpose.errors import InputError

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "data" / "sports2d_walk.mp4"
MODEL = REPO / "models" / "student" / "model.onnx"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="mediapipe not installed")
@pytest.mark.skipif(not MODEL.is_file(), reason="shipped models/ not present")
def test_whole_job_times_both_processes_and_tabulates(tmp_path: Path) -> None:
    from benchmarks.whole_job import whole_job_headline, whole_job_markdown, whole_job_section

    sec = whole_job_section([CLIP, tmp_path / "missing.mp4"], model=MODEL, reps=1)
    row = sec["videos"][CLIP.name]
    assert row["reps"] == 1 and row["mediapipe_s"] > 0 and row["analyze_s"] > 0
    assert row["ratio"] == pytest.approx(row["mediapipe_s"] / row["analyze_s"], rel=1e-2)
    assert "does not exist" in sec["videos"]["missing.mp4"]["error"]
    table = "\n".join(whole_job_markdown(sec))
    assert f"| {CLIP.name} | {row['mediapipe_s']:.2f} | {row['analyze_s']:.2f} |" in table
    head = whole_job_headline(sec)
    assert head is not None and head["measured"] == row["ratio"] and head["pass"] == (row["ratio"] >= 3.0)


def test_whole_job_missing_video_is_an_input_error(tmp_path: Path) -> None:
    from benchmarks.whole_job import whole_job_on_video

    with pytest.raises(InputError, match="does not exist"):
        whole_job_on_video(tmp_path / "nope.mp4", model=MODEL, reps=1)
