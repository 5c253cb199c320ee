"""Recording readers on real files: the test clips and RGB-D recordings written here in real formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gaitpose.errors import InputError
from gaitpose.io import open_recording, read_video_info
from gaitpose.io.video import parse_k4a_calibration
from tests._rgbd_writers import (
    color_pattern,
    k4a_calibration,
    write_color_video,
    write_depth_pngs,
    write_kinect_mkv,
    write_realsense_bag,
)

DATA = Path(__file__).parent / "data"
COLOR_MS = [round(i * 1000 / 30) for i in range(20)]
DEPTH_MS = [round(i * 1000 / 15) + 7 for i in range(10)]


def test_plain_video_reader_timestamps_and_frames() -> None:
    rec = open_recording(DATA / "pose2sim_cam01.mp4")
    assert rec.size == (270, 480) and rec.num_frames == 50 and abs(rec.fps - 30) < 1e-6
    assert not rec.has_depth
    frames = list(rec.color_frames())
    assert len(frames) == 50
    assert frames[0].rgb.shape == (480, 270, 3) and frames[0].rgb.dtype == np.uint8
    t = np.array([f.t_ms for f in frames])
    np.testing.assert_allclose(t, np.arange(50) * 1000 / 30, atol=0.1)
    np.testing.assert_allclose(t, rec.color_timestamps(), atol=1e-6)
    info = read_video_info(DATA / "sports2d_walk.mp4")
    assert (info.width, info.height, info.num_frames, info.has_depth) == (640, 360, 180, False)


def test_kinect_mkv_depth_roundtrip_exact(tmp_path: Path) -> None:
    path = tmp_path / "k.mkv"
    written = write_kinect_mkv(path, COLOR_MS, DEPTH_MS)
    rec = open_recording(path)
    assert rec.has_depth and rec.size == (64, 48) and rec.depth_size == (64, 48)
    assert rec.start_offset_ns == 123_000_000
    np.testing.assert_allclose(rec.depth_timestamps(), DEPTH_MS)
    np.testing.assert_allclose(rec.color_timestamps(), COLOR_MS)
    depths = list(rec.depth_frames())
    assert [d.t_ms for d in depths] == DEPTH_MS
    for d, ref in zip(depths, written, strict=True):
        assert d.depth.dtype == np.uint16
        np.testing.assert_array_equal(d.depth, ref)  # exact, incl. 0 and 65535-i
    colors = list(rec.color_frames())
    assert [c.t_ms for c in colors] == COLOR_MS
    # MJPEG is lossy: the per-frame brightness code survives within a few levels.
    assert abs(float(colors[5].rgb[:, :, 0].mean()) - float(color_pattern(5, 64, 48)[:, :, 0].mean())) < 4


def test_k4a_calibration_matches_sdk_values() -> None:
    """Factory-normalised parameters of a real device and the SDK's pixel values for NFOV / 1080p."""
    depth = [0.5122697949409485, 0.49451231956481934, 0.4921168386936188, 0.4921667277812958]
    color = [0.4967627227306366, 0.5108628273010254, 0.470907062292099, 0.6274453997612]
    calib = {
        "CalibrationInformation": {
            "Cameras": [
                {
                    "Intrinsics": {"ModelParameters": depth + [0] * 10},
                    "Purpose": "CALIBRATION_CameraPurposeDepth",
                    "Rt": {"Rotation": [1, 0, 0, 0, 1, 0, 0, 0, 1], "Translation": [0, 0, 0]},
                    "SensorWidth": 1024,
                    "SensorHeight": 1024,
                },
                {
                    "Intrinsics": {"ModelParameters": color + [0] * 10},
                    "Purpose": "CALIBRATION_CameraPurposePhotoVideo",
                    "Rt": {"Rotation": [1, 0, 0, 0, 1, 0, 0, 0, 1], "Translation": [-0.032, -0.002, 0.004]},
                    "SensorWidth": 4096,
                    "SensorHeight": 3072,
                },
            ]
        }
    }
    intr = parse_k4a_calibration(calib, (1920, 1080), (640, 576))
    d, c = intr["depth"], intr["color"]
    assert d["cx"] == pytest.approx(332.064270, abs=1e-3) and d["cy"] == pytest.approx(325.880615, abs=1e-3)
    assert d["fx"] == pytest.approx(503.927643, abs=1e-3) and d["fy"] == pytest.approx(503.978729, abs=1e-3)
    assert c["cx"] == pytest.approx(953.284424, abs=1e-3) and c["cy"] == pytest.approx(555.142456, abs=1e-3)
    assert c["fx"] == pytest.approx(904.141541, abs=1e-3) and c["fy"] == pytest.approx(903.521362, abs=1e-3)
    np.testing.assert_allclose(intr["depth_to_color"]["translation_m"], [-0.032, -0.002, 0.004])


def test_kinect_mkv_calibration_attachment(tmp_path: Path) -> None:
    dcam = {"fx": 40.0, "fy": 41.0, "cx": 15.5, "cy": 11.5, "width": 32, "height": 24}
    ccam = {"fx": 80.0, "fy": 80.0, "cx": 31.5, "cy": 23.5, "width": 64, "height": 48}
    rot = np.array([[0.99, -0.01, 0.0], [0.01, 0.99, 0.0], [0.0, 0.0, 1.0]])
    calib = k4a_calibration(dcam, ccam, rot, np.array([0.05, 0.0, 0.01]))
    path = tmp_path / "cal.mkv"
    write_kinect_mkv(path, COLOR_MS[:4], DEPTH_MS[:2], depth_size=(32, 24), calibration=calib)
    intr = open_recording(path).intrinsics
    for key, ref in (("depth", dcam), ("color", ccam)):
        for k in ("fx", "fy", "cx", "cy", "width", "height"):
            assert intr[key][k] == pytest.approx(ref[k], abs=1e-6), (key, k)
    np.testing.assert_allclose(intr["depth_to_color"]["rotation"], rot)
    np.testing.assert_allclose(intr["depth_to_color"]["translation_m"], [0.05, 0.0, 0.01])


def test_realsense_bag_reader(tmp_path: Path) -> None:
    path = tmp_path / "rs.bag"
    mm = write_realsense_bag(path, COLOR_MS[:8], DEPTH_MS[:4], depth_size=(32, 24))
    rec = open_recording(path)
    assert rec.size == (64, 48) and rec.depth_size == (32, 24)
    assert rec.depth_scale_mm == pytest.approx(0.1)
    np.testing.assert_allclose(rec.color_timestamps(), COLOR_MS[:8], atol=1e-6)
    np.testing.assert_allclose(rec.depth_timestamps(), DEPTH_MS[:4], atol=1e-6)
    depths = list(rec.depth_frames())
    for d, ref in zip(depths, mm, strict=True):
        np.testing.assert_array_equal(d.depth, ref)  # raw units converted to exact millimetres
    colors = list(rec.color_frames())
    np.testing.assert_array_equal(colors[3].rgb, color_pattern(3, 64, 48))  # bgr8 -> RGB, lossless
    assert rec.intrinsics["depth"]["fx"] == 50.0 and rec.intrinsics["color"]["width"] == 64


def test_video_plus_png_depth_and_csv(tmp_path: Path) -> None:
    video = tmp_path / "c.avi"
    write_color_video(video, 12)
    pngs = write_depth_pngs(tmp_path / "depth", 12)  # names depth_0 .. depth_11: natural order matters
    csv = tmp_path / "t.csv"
    times = [i * 33.0 + 3.5 for i in range(12)]
    csv.write_text("frame,t_ms\n" + "".join(f"{i},{t}\n" for i, t in enumerate(times)))
    rec = open_recording(video, depth=tmp_path / "depth", timestamps=csv)
    np.testing.assert_allclose(rec.depth_timestamps(), times)
    for d, ref in zip(rec.depth_frames(), pngs, strict=True):
        np.testing.assert_array_equal(d.depth, ref)
    # npz stack carrying its own times needs no CSV
    np.savez(tmp_path / "d.npz", depth=np.stack(pngs), t_ms=np.array(times))
    rec2 = open_recording(video, depth=tmp_path / "d.npz")
    np.testing.assert_array_equal(next(iter(rec2.depth_frames())).depth, pngs[0])
    # two-column CSV overrides colour times too
    csv2 = tmp_path / "t2.csv"
    csv2.write_text("frame,t_color_ms,t_depth_ms\n" + "".join(f"{i},{i * 40},{t}\n" for i, t in enumerate(times)))
    rec3 = open_recording(video, depth=tmp_path / "depth", timestamps=csv2)
    assert [f.t_ms for f in rec3.color_frames()][:3] == [0, 40, 80]


@pytest.mark.parametrize(
    "case",
    ["zero", "text", "truncated_mp4", "truncated_mkv", "depth8_png", "depth8_mkv", "depth8_bag", "missing", "no_csv"],
)
def test_bad_inputs_raise_one_line_input_error(tmp_path: Path, case: str) -> None:
    kw: dict[str, object] = {}
    if case == "zero":
        path = tmp_path / "empty.mp4"
        path.write_bytes(b"")
    elif case == "text":
        path = tmp_path / "notes.mp4"
        path.write_text("this is not a video\n" * 20)
    elif case == "truncated_mp4":
        data = (DATA / "pose2sim_cam01.mp4").read_bytes()
        path = tmp_path / "half.mp4"
        path.write_bytes(data[: len(data) // 2])
    elif case == "truncated_mkv":
        full = tmp_path / "full.mkv"
        write_kinect_mkv(full, [round(i * 1000 / 30) for i in range(90)], [round(i * 1000 / 15) for i in range(45)])
        data = full.read_bytes()
        path = tmp_path / "cut.mkv"
        path.write_bytes(data[: len(data) // 2])
    elif case == "depth8_png":
        path = tmp_path / "c.avi"
        write_color_video(path, 3)
        write_depth_pngs(tmp_path / "d8", 3, bits=8)
        (tmp_path / "t.csv").write_text("frame,t_ms\n0,0\n1,33\n2,66\n")
        kw = {"depth": tmp_path / "d8", "timestamps": tmp_path / "t.csv"}
    elif case == "depth8_mkv":
        path = tmp_path / "d8.mkv"
        write_kinect_mkv(path, COLOR_MS[:4], DEPTH_MS[:2], depth_pix_fmt="gray")
    elif case == "depth8_bag":
        path = tmp_path / "d8.bag"
        write_realsense_bag(path, COLOR_MS[:4], DEPTH_MS[:2], depth_encoding="mono8")
    elif case == "missing":
        path = tmp_path / "nope.mp4"
    else:  # no_csv
        path = tmp_path / "c.avi"
        write_color_video(path, 3)
        write_depth_pngs(tmp_path / "d", 3)
        kw = {"depth": tmp_path / "d"}
    with pytest.raises(InputError) as ei:
        rec = open_recording(path, **kw)  # type: ignore[arg-type]
        for _ in rec.color_frames():
            pass
        if rec.has_depth:
            for _ in rec.depth_frames():
                pass
    msg = str(ei.value)
    assert "\n" not in msg
    assert str(tmp_path) in msg, msg  # names the offending file
    if case.startswith("depth8"):
        assert "8-bit" in msg or "16-bit" in msg
    if case.startswith("truncated"):
        assert "truncat" in msg or "moov" in msg or "readable" in msg


def test_intrinsics_sidecar_json(tmp_path: Path) -> None:
    video = tmp_path / "c.avi"
    write_color_video(video, 2)
    write_depth_pngs(tmp_path / "d", 2)
    intr = {"color": {"fx": 1, "fy": 1, "cx": 0, "cy": 0, "width": 64, "height": 48}}
    (tmp_path / "d" / "intrinsics.json").write_text(json.dumps(intr))
    (tmp_path / "t.csv").write_text("stream,frame,t_ms\ndepth,0,0\ndepth,1,30\ncolor,1,31\n")
    rec = open_recording(video, depth=tmp_path / "d", timestamps=tmp_path / "t.csv")
    assert rec.intrinsics == intr
    assert rec.color_timestamps()[1] == 31
