"""Key frames from the crops kept during the frame loop: no second decode, same subject, bounded memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gaitpose.gait.synthetic import synthetic_walk
from gaitpose.geometry import affine_points
from gaitpose.io.planar import YuvImage
from gaitpose.report.stillcache import SubjectFrames


def test_crop_follows_the_box_stays_inside_the_frame_and_is_bounded() -> None:
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[100:300, 200:260] = (200, 30, 30)  # the "subject"
    kept = SubjectFrames(max_frames=2, side=160)
    box = np.array([200.0, 100.0, 60.0, 200.0])
    kept(0, YuvImage.from_rgb(rgb), box)  # planar frames, as the frame loop hands them over
    kept(1, rgb, np.array([560.0, 380.0, 60.0, 90.0]))  # near the corner: the square is shifted inside
    kept(2, rgb, box)  # over the bound: not kept
    kept(3, rgb, np.full(4, np.nan))
    assert len(kept) == 2 and 2 not in kept and kept.get(3) is None
    crop0, m0 = kept.get(0)
    assert crop0.shape == (160, 160, 3)
    cx, cy = affine_points(np.array([[230.0, 200.0]]), m0)[0]  # box centre -> crop centre
    assert abs(cx - 80) < 1 and abs(cy - 80) < 1
    assert crop0[70:90, 75:85, 0].mean() > 150  # the subject's colour is there
    _, m1 = kept.get(1)
    corner = affine_points(np.array([[640.0, 480.0]]), m1)[0]  # the frame's far corner is the crop's corner
    assert np.allclose(corner, 160, atol=1.5), corner


def test_stills_come_from_kept_crops_without_opening_the_video(tmp_path: Path) -> None:
    from gaitpose.gait.analysis import analyze_gait
    from gaitpose.report.keyframes import heel_strike_stills, pick_heel_strikes

    w = synthetic_walk(n_frames=120)
    r = analyze_gait(w.kpts, w.scores, w.fps)
    chosen = pick_heel_strikes(r.events, r.kpts, 1)
    assert chosen
    kept = SubjectFrames()
    frame = np.full((480, 640, 3), 90, np.uint8)
    for t in range(len(w.kpts)):
        pts = r.kpts[t][np.isfinite(r.kpts[t]).all(axis=1)]
        if len(pts):
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            kept(t, frame, np.array([x0, y0, x1 - x0, y1 - y0]))
    stills = heel_strike_stills(tmp_path / "no_such_video.mp4", r.kpts, w.scores, r.events, frames=kept)
    assert len(stills) == len(chosen)
    assert all(s["src"].startswith("data:image/jpeg;base64,") for s in stills)
    assert [s["foot"] for s in stills] == [e.foot for e in sorted(chosen, key=lambda e: e.frame)]


def test_lazy_crop_of_a_real_planar_frame_matches_a_direct_crop() -> None:
    """The loop keeps a strided copy of the planes; the still built from it later is the same picture
    as a crop of the whole RGB frame (the old, 3-4x dearer way), up to resampling."""
    from gaitpose.geometry import crop
    from gaitpose.io import open_recording

    clip = Path(__file__).resolve().parent / "data" / "sports2d_walk.mp4"
    with open_recording(clip) as rec:
        frame = next(iter(rec.color_images(1)))
    image = frame.image
    assert isinstance(image, YuvImage)
    h, w = image.shape[:2]
    box = np.array([w * 0.4, h * 0.2, w * 0.12, h * 0.6])
    kept = SubjectFrames(side=160)
    kept(0, image, box)
    got, matrix = kept.get(0)
    size = 1.7 * max(box[2], box[3])
    assert size / 160 > 1  # the strided path (step > 1) is what runs
    centre = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])
    frame_wh = np.array([w, h], float)
    centre = np.where(size <= frame_wh, np.clip(centre, size / 2, frame_wh - size / 2), centre)
    ref, ref_matrix = crop(frame.rgb, centre, np.array([size, size]), (160, 160))
    np.testing.assert_allclose(matrix, ref_matrix, atol=1e-6)
    # same picture up to aliasing (both sample without a prefilter): compare at the scale a still is seen
    import cv2

    def soft(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a.astype(np.float32), (7, 7), 2)[10:-10, 10:-10]

    d0 = np.abs(soft(got) - soft(ref)).mean()
    shifted = cv2.warpAffine(got, np.float32([[1, 0, 0.5], [0, 1, 0]]), (160, 160))
    assert d0 < 2.5 and d0 < np.abs(soft(shifted) - soft(ref)).mean(), d0  # aligned to under half a pixel
