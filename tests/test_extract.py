"""``gaitpose-data extract`` end to end on real clips and real RGB-D recordings written by the tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from data_tools.cli import app
from data_tools.extract import ExtractOptions, extract_recording
from gaitpose.manifest import read_manifest
from tests._rgbd_writers import (
    k4a_calibration,
    write_color_video,
    write_depth_pngs,
    write_kinect_mkv,
    write_realsense_bag,
)

DATA = Path(__file__).parent / "data"
CLIP = DATA / "pose2sim_cam01.mp4"
COLOR_MS = [round(i * 1000 / 30) for i in range(20)]
DEPTH_MS = [round(i * 1000 / 15) + 7 for i in range(10)]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _run(*args: str) -> object:
    return CliRunner().invoke(app, ["extract", *args, "--no-progress"])


def test_extract_clip_stride_max_frames_and_input_untouched(tmp_path: Path) -> None:
    before = _sha(CLIP)
    out = tmp_path / "frames"
    res = _run(str(CLIP), "--out", str(out), "--stride", "3", "--max-frames", "5", "--subject", "S01")
    assert res.exit_code == 0, res.output
    rows = read_manifest(out)
    assert [r["frame_index"] for r in rows] == [0, 3, 6, 9, 12]
    for r in rows:
        assert r["recording"] == "pose2sim_cam01" and r["subject"] == "S01"
        assert r["t_color_ms"] == pytest.approx(r["frame_index"] * 1000 / 30, abs=0.1)
        img = cv2.imread(str(out / r["color_path"]))
        assert img.shape == (480, 270, 3) == (r["height"], r["width"], 3)
        assert "depth_path" not in r
    assert _sha(CLIP) == before
    assert "5 written" in res.stdout


def test_resume_after_interruption_skips_done_work(tmp_path: Path) -> None:
    out = tmp_path / "frames"
    s1 = extract_recording(CLIP, out, options=ExtractOptions(max_frames=6, max_size=160))
    assert s1.frames_written == 6
    # Simulate a crash: a torn last manifest row and a stray temporary image.
    mpath = out / "manifest.jsonl"
    data = mpath.read_bytes()
    mpath.write_bytes(data + b'{"recording": "pose2sim_cam01", "frame_in')
    stray = out / "pose2sim_cam01" / "color" / ".000006.abc123.part.jpg"
    stray.write_bytes(b"\xff\xd8half")
    res = _run(str(CLIP), "--out", str(out), "--max-frames", "10", "--max-size", "160")
    assert res.exit_code == 0, res.output
    rows = read_manifest(out)
    assert [r["frame_index"] for r in rows] == list(range(10))
    assert mpath.read_bytes().endswith(b"\n") and not stray.exists()
    assert (rows[0]["width"], rows[0]["height"]) == (90, 160)
    assert "4 written, 6 skipped" in res.stdout
    # A third run has nothing to do and does not decode.
    s3 = extract_recording(CLIP, out, options=ExtractOptions(max_frames=10, max_size=160))
    assert (s3.frames_written, s3.frames_skipped) == (0, 10)
    assert len(read_manifest(out)) == 10


def test_extract_kinect_mkv_pairs_by_time_and_keeps_depth_exact(tmp_path: Path) -> None:
    mkv = tmp_path / "walk.mkv"
    depths = write_kinect_mkv(mkv, COLOR_MS, DEPTH_MS)
    before = _sha(mkv)
    out = tmp_path / "frames"
    s = extract_recording(mkv, out)
    assert s.frames_written == 20 and s.sync is not None
    rows = read_manifest(out)
    for r in rows:
        j = int(np.argmin(np.abs(np.array(DEPTH_MS) - r["t_color_ms"])))
        assert r["t_depth_ms"] == DEPTH_MS[j]
        assert r["pair_error_ms"] == pytest.approx(DEPTH_MS[j] - r["t_color_ms"], abs=1e-3)
        d = cv2.imread(str(out / r["depth_path"]), cv2.IMREAD_UNCHANGED)
        assert d.dtype == np.uint16
        np.testing.assert_array_equal(d, depths[j])
    assert s.sync.matched == 20 and s.sync.reused == 10 and s.sync.error_max_ms <= 27
    assert _sha(mkv) == before


def test_extract_registers_depth_with_calibration(tmp_path: Path) -> None:
    dcam = {"fx": 40.0, "fy": 40.0, "cx": 15.5, "cy": 11.5, "width": 32, "height": 24}
    ccam = {"fx": 80.0, "fy": 80.0, "cx": 31.5, "cy": 23.5, "width": 64, "height": 48}
    mkv = tmp_path / "cal.mkv"
    write_kinect_mkv(
        mkv,
        COLOR_MS[:4],
        DEPTH_MS[:2],
        depth_size=(32, 24),
        calibration=k4a_calibration(dcam, ccam, np.eye(3), np.zeros(3)),
    )
    out = tmp_path / "frames"
    s = extract_recording(mkv, out)
    assert s.registered
    r = read_manifest(out)[0]
    d = cv2.imread(str(out / r["depth_path"]), cv2.IMREAD_UNCHANGED)
    assert d.shape == (48, 64)  # depth now lives in the colour image
    assert r["intrinsics"]["depth_aligned_to_color"] is True
    assert r["intrinsics"]["color"]["fx"] == pytest.approx(80.0)
    assert (d > 0).mean() > 0.9
    # Without calibration, mismatched sizes are refused (next test); with --no-register raw depth is kept.
    out2 = tmp_path / "raw"
    extract_recording(mkv, out2, options=ExtractOptions(register=False))
    r2 = read_manifest(out2)[0]
    assert cv2.imread(str(out2 / r2["depth_path"]), cv2.IMREAD_UNCHANGED).shape == (24, 32)
    assert r2["intrinsics"]["depth_aligned_to_color"] is False and "depth_to_color" in r2["intrinsics"]


def test_extract_bag_and_png_sequence_via_cli(tmp_path: Path) -> None:
    bag = tmp_path / "rs.bag"
    mm = write_realsense_bag(bag, COLOR_MS[:8], DEPTH_MS[:4])
    video = tmp_path / "lab.avi"
    write_color_video(video, 8)
    pngs = write_depth_pngs(tmp_path / "lab_depth", 8)
    csv = tmp_path / "t.csv"
    csv.write_text("frame,t_ms\n" + "".join(f"{i},{i * 1000 / 30 + 2}\n" for i in range(8)))
    out = tmp_path / "frames"
    res = _run(str(bag), "--out", str(out))
    assert res.exit_code == 0, res.output
    res = _run(str(video), "--out", str(out), "--depth", str(tmp_path / "lab_depth"), "--timestamps", str(csv))
    assert res.exit_code == 0, res.output
    rows = read_manifest(out)
    by = {(r["recording"], r["frame_index"]): r for r in rows}
    assert len([r for r in rows if r["recording"] == "rs"]) == 8
    r = by[("rs", 3)]
    np.testing.assert_array_equal(
        cv2.imread(str(out / r["depth_path"]), cv2.IMREAD_UNCHANGED),
        mm[int(np.argmin(np.abs(np.array(DEPTH_MS[:4]) - r["t_color_ms"])))],
    )
    r = by[("lab", 5)]
    assert r["t_depth_ms"] == pytest.approx(5 * 1000 / 30 + 2, abs=1e-3)
    np.testing.assert_array_equal(cv2.imread(str(out / r["depth_path"]), cv2.IMREAD_UNCHANGED), pngs[5])


def _bad_input(tmp_path: Path, case: str) -> tuple[list[str], Path]:
    if case == "zero":
        p = tmp_path / "zero.mp4"
        p.write_bytes(b"")
        return [str(p)], p
    if case == "text":
        p = tmp_path / "readme.mp4"
        p.write_text("not a video at all\n" * 10)
        return [str(p)], p
    if case == "truncated":
        p = tmp_path / "half.mp4"
        data = CLIP.read_bytes()
        p.write_bytes(data[: len(data) // 2])
        return [str(p)], p
    if case == "depth8":
        p = tmp_path / "c.avi"
        write_color_video(p, 4)
        write_depth_pngs(tmp_path / "d8", 4, bits=8)
        (tmp_path / "t.csv").write_text("frame,t_ms\n0,0\n1,33\n2,67\n3,100\n")
        return [str(p), "--depth", str(tmp_path / "d8"), "--timestamps", str(tmp_path / "t.csv")], tmp_path / "d8"
    # mismatched sizes without calibration
    p = tmp_path / "mismatch.mkv"
    write_kinect_mkv(p, COLOR_MS[:4], DEPTH_MS[:2], depth_size=(32, 24))
    return [str(p)], p


@pytest.mark.parametrize("case", ["zero", "text", "truncated", "depth8", "mismatch"])
def test_bad_input_one_line_error_nonzero_exit_no_rows(tmp_path: Path, case: str) -> None:
    args, named = _bad_input(tmp_path, case)
    out = tmp_path / "frames"
    res = _run(*args, "--out", str(out))
    assert res.exit_code != 0
    err_lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(err_lines) == 1, res.stderr
    assert err_lines[0].startswith("error: ") and str(named) in err_lines[0]
    assert "Traceback" not in res.output
    assert read_manifest(out) == []


def test_batch_continues_after_bad_input_and_dedupes_stems(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_text("junk")
    sub = tmp_path / "b"
    sub.mkdir()
    twin = sub / CLIP.name
    twin.write_bytes(CLIP.read_bytes())
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("recording,subject\npose2sim_cam01,P1\npose2sim_cam01_2,P2\n")
    out = tmp_path / "frames"
    res = _run(str(CLIP), str(bad), str(twin), "--out", str(out), "--max-frames", "2", "--subjects-csv", str(subjects))
    assert res.exit_code == 2
    assert [ln for ln in res.stderr.splitlines() if ln.strip()] == [
        f"error: {bad}: not a readable video (Invalid data found when processing input)"
    ]
    rows = read_manifest(out)
    assert {(r["recording"], r["subject"]) for r in rows} == {("pose2sim_cam01", "P1"), ("pose2sim_cam01_2", "P2")}
    assert len(rows) == 4
    assert all((out / r["color_path"]).is_file() for r in rows)
    json.dumps(rows)


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    res = _run(str(CLIP), "--out", str(blocker / "frames"))
    assert res.exit_code == 2
    line = res.stderr.strip()
    assert line.startswith("error: ") and str(blocker / "frames") in line and "not writable" in line


def test_time_window_selects_by_timestamp(tmp_path: Path) -> None:
    s = extract_recording(CLIP, tmp_path / "f", options=ExtractOptions(start_s=0.5, end_s=1.0, stride=2))
    rows = read_manifest(tmp_path / "f")
    assert [r["frame_index"] for r in rows] == [16, 18, 20, 22, 24, 26, 28]
    assert all(500 <= r["t_color_ms"] < 1000 for r in rows) and s.frames_written == 7
