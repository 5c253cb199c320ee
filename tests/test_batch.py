"""Batch labelling: a corrupt recording is reported and skipped, reruns resume, Ray runs the same tasks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from data_tools.batch import parts_dir_for, run_batch
from data_tools.cli import app
from data_tools.label import LabelOptions, load_frame_store
from tests.frames_fixture import video_to_frame_store

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def _store(root: Path) -> Path:
    frames = root / "frames"
    video_to_frame_store(DATA / "pose2sim_cam01.mp4", frames, "good", subject="a", stride=5)
    video_to_frame_store(DATA / "pose2sim_cam01.mp4", frames, "broken", subject="b", stride=5)
    (frames / "broken" / "000020.jpg").write_bytes(b"")  # zero-byte JPEG listed in the manifest
    return frames


def test_corrupt_recording_is_reported_and_rerun_resumes(tmp_path: Path) -> None:
    frames = _store(tmp_path)
    out = tmp_path / "labels.json"
    res = runner.invoke(app, ["label", str(frames), "--out", str(out)])
    assert res.exit_code == 1, res.output
    errors = [ln.strip() for ln in re.split(r"[\r\n]+", res.output) if ln.strip().startswith("error:")]
    assert len(errors) == 1 and "broken/000020.jpg" in errors[0] and "cannot decode" in errors[0], res.output
    assert "good: labelled" in res.output and "1 recording(s) failed: broken" in res.output
    data = json.loads(out.read_text())
    assert {i["recording"] for i in data["images"]} == {"good"}
    assert "broken" in data["info"]["failed_recordings"]
    part = parts_dir_for(out) / "good.json"
    stamp = part.stat().st_mtime_ns
    # fix the frame: the rerun labels only the broken recording and merges both
    video_to_frame_store(DATA / "pose2sim_cam01.mp4", tmp_path / "fix", "broken", stride=5)
    (frames / "broken" / "000020.jpg").write_bytes((tmp_path / "fix" / "broken" / "000020.jpg").read_bytes())
    res = runner.invoke(app, ["label", str(frames), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "good: labelled" in res.output and "(resumed)" in res.output
    assert part.stat().st_mtime_ns == stamp
    data = json.loads(out.read_text())
    assert {i["recording"] for i in data["images"]} == {"good", "broken"}
    assert "failed_recordings" not in data["info"]
    # a changed option invalidates the cache
    res = runner.invoke(app, ["label", str(frames), "--out", str(out), "--recordings", "good", "--agree-frac", "0.1"])
    assert res.exit_code == 0 and "(resumed)" not in res.output


@pytest.mark.slow
def test_ray_engine_runs_the_same_tasks(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    frames = tmp_path / "frames"
    video_to_frame_store(DATA / "pose2sim_cam01.mp4", frames, "good", stride=10)
    ray.init(num_cpus=1, include_dashboard=False)
    try:
        res = run_batch(frames, tmp_path / "labels.json", load_frame_store(frames), LabelOptions(), engine="ray",
                        show_progress=False)
    finally:
        ray.shutdown()
    assert not res.failed and res.labels is not None
    assert res.labels["info"]["recordings"]["good"]["frames_labelled"] >= 4
