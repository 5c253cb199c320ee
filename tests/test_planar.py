"""Planar (YUV 4:2:0) frames: colour maths, crops and thumbnails agree with the RGB path."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from gaitpose.geometry import crop
from gaitpose.infer.localizer import Letterbox
from gaitpose.io import open_recording
from gaitpose.io.base import ColorFrame, PlanarColorFrame
from gaitpose.io.planar import YuvImage, yuv_to_rgb_matrix

DATA = Path(__file__).parent / "data"
CLIP = DATA / "sports2d_walk.mp4"


def _apply(m: np.ndarray, yuv: tuple[float, float, float]) -> np.ndarray:
    return m @ np.array([*yuv, 1.0])


def test_matrix_maps_limited_and_full_range_extremes() -> None:
    for cs in (2, 1, 9):  # BT.601 (unspecified), BT.709, BT.2020
        m = yuv_to_rgb_matrix(cs, 1)
        np.testing.assert_allclose(_apply(m, (16, 128, 128)), 0.0, atol=1e-9)
        np.testing.assert_allclose(_apply(m, (235, 128, 128)), 255.0, atol=1e-9)
        full = yuv_to_rgb_matrix(cs, 2)
        np.testing.assert_allclose(_apply(full, (255, 128, 128)), 255.0, atol=1e-9)
    # Pure red in BT.601 limited range is (Y, Cb, Cr) = (81, 90, 240).
    np.testing.assert_allclose(_apply(yuv_to_rgb_matrix(2, 1), (81, 90, 240)), [255, 0, 0], atol=1.5)
    # BT.709 red: (63, 102, 240).
    np.testing.assert_allclose(_apply(yuv_to_rgb_matrix(1, 1), (63, 102, 240)), [255, 0, 0], atol=1.5)


def test_bad_chroma_planes_are_rejected() -> None:
    y = np.zeros((10, 10), np.uint8)
    with pytest.raises(ValueError, match="4:2:0"):
        YuvImage(y, np.zeros((5, 4), np.uint8), np.zeros((5, 4), np.uint8))


def _first_frame(path: Path, index: int = 20) -> av.VideoFrame:
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == index:
                # Reformat to its own format: a frame that owns its buffers after the container closes.
                return f.reformat(format=f.format.name)
    raise AssertionError("clip too short")


@pytest.mark.parametrize("clip", ["sports2d_walk.mp4", "pose2sim_cam01.mp4"])
def test_planar_crop_thumbnail_and_full_frame_match_ffmpeg_rgb(clip: str) -> None:
    frame = _first_frame(DATA / clip)
    rgb = frame.to_ndarray(format="rgb24")  # FFmpeg's own conversion
    img = YuvImage.from_av_frame(frame)
    h, w = rgb.shape[:2]
    assert img.shape == (h, w, 3)

    full = img.to_rgb()
    assert np.abs(full.astype(int) - rgb).mean() < 2.0

    # A rotated crop that runs off the frame: content matches, the outside is black like cv2's.
    center, size = np.array([w * 0.8, h * 0.5]), np.array([w * 0.6, h * 0.9])
    ref, m = crop(rgb, center, size, (96, 128), rotation_deg=15.0)
    got, m2 = crop(img, center, size, (96, 128), rotation_deg=15.0)
    np.testing.assert_array_equal(m, m2)
    assert got.dtype == np.uint8 and got.shape == ref.shape
    assert np.abs(got.astype(int) - ref).mean() < 2.0
    outside = cv2.erode((ref.max(axis=2) == 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert outside.any() and got[outside].max() == 0

    lb = Letterbox.fit((w, h), (160, 96))
    ref_t, got_t = lb.apply(rgb), lb.apply(img)
    assert got_t.shape == ref_t.shape
    assert np.abs(got_t.astype(int) - ref_t).mean() < 2.0


def test_from_rgb_round_trip_and_odd_sizes() -> None:
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.integers(30, 220, (33, 47, 3)).astype(np.uint8), (7, 7), 3)
    img = YuvImage.from_rgb(smooth)
    assert img.u.shape == (17, 24)
    assert np.abs(img.to_rgb().astype(int) - smooth).mean() < 3.0
    # np.asarray() converts the whole frame, for code that wants plain arrays.
    assert np.asarray(img).shape == (33, 47, 3)


def test_video_reader_yields_planar_frames_with_the_same_times() -> None:
    with open_recording(CLIP) as rec:
        plain = list(rec.color_frames())
        planar = list(rec.color_images(decode_threads=1))
    assert len(planar) == len(plain) == 180
    assert all(isinstance(f, PlanarColorFrame) for f in planar)
    assert [f.t_ms for f in planar] == [f.t_ms for f in plain]
    assert [f.index for f in planar] == list(range(180))
    for i in (0, 90, 179):
        assert np.abs(planar[i].rgb.astype(int) - plain[i].rgb).mean() < 2.0
        assert plain[i].image is plain[i].rgb


def test_non_420_video_falls_back_to_rgb_frames(tmp_path: Path) -> None:
    path = tmp_path / "rgb444.mkv"
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "bgr0"
        for i in range(3):
            img = np.full((48, 64, 3), 40 * i, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    with open_recording(path) as rec:
        frames = list(rec.color_images())
    assert len(frames) == 3
    assert all(isinstance(f, ColorFrame) for f in frames)
    assert frames[2].rgb[0, 0].tolist() == [80, 80, 80]


def test_planar_frame_replace_keeps_the_image() -> None:
    img = YuvImage.from_rgb(np.zeros((4, 4, 3), np.uint8))
    f = dataclasses.replace(PlanarColorFrame(0, 0.0, img), t_ms=5.0)
    assert f.image is img and f.t_ms == 5.0


def test_area_resize_is_area_up_to_a_grey_level_and_exact_for_small_factors() -> None:
    """The fast downscale (bilinear to output x 2^k, then 2x area steps) stays within about a grey
    level of OpenCV's INTER_AREA on a real frame, and is INTER_AREA itself at factors up to 2."""
    from gaitpose.io.planar import area_resize, resize_image

    with open_recording(CLIP) as rec:
        frame = next(iter(rec.color_images(1)))
    rgb = frame.rgb
    small = area_resize(rgb, (96, 54))  # factor 6.7
    ref = cv2.resize(rgb, (96, 54), interpolation=cv2.INTER_AREA)
    assert small.shape == ref.shape and np.abs(small.astype(int) - ref).mean() < 1.0
    big = cv2.resize(rgb, (400, 225), interpolation=cv2.INTER_AREA)  # factor 1.6: area itself
    np.testing.assert_array_equal(area_resize(rgb, (400, 225)), big)
    planar = resize_image(frame.image, (96, 54))  # planes go the same way
    assert np.abs(planar.astype(int) - ref).mean() < 3
