"""Back-projection with a synthetic depth frame: a plane at 2 m, known intrinsics, holes."""

from __future__ import annotations

import numpy as np
import pytest

from gaitpose.gait.lift3d import backproject, robust_depth

INTR = {"fx": 600.0, "fy": 610.0, "cx": 320.0, "cy": 240.0}


def _plane(z_mm: int = 2000, h: int = 480, w: int = 640) -> np.ndarray:
    return np.full((h, w), z_mm, dtype=np.uint16)


def test_robust_depth_ignores_holes_and_outliers() -> None:
    d = _plane()
    d[100:103, 200:203] = 0  # a 3x3 hole right on the keypoint
    assert robust_depth(d, 201, 101) == pytest.approx(2000.0)
    d[98, 198] = 500  # a flying pixel in the window
    assert robust_depth(d, 201.4, 100.6) == pytest.approx(2000.0)
    d[300:320, 300:320] = 0
    assert np.isnan(robust_depth(d, 310, 310))  # nothing valid in the window
    assert np.isnan(robust_depth(d, np.nan, 10))
    assert np.isnan(robust_depth(d, -50, 10))  # off the image
    assert robust_depth(d, 0, 0) == pytest.approx(2000.0)  # window clipped at the border


def test_backproject_plane_gives_exact_metres() -> None:
    kp = np.array([[[320.0, 240.0], [620.0, 240.0], [320.0, 545.0 - 65.0], [20.0, 40.0], [np.nan, np.nan]]])
    kpts = np.repeat(kp, 3, axis=0)
    d = _plane()
    d[239:242, 619:622] = 0  # a 3x3 hole under keypoint 1: the rest of its 5x5 window still says 2 m
    frames = [d, None, _plane(1500)]
    out = backproject(kpts, frames, INTR)
    assert out.shape == (3, 5, 3)
    np.testing.assert_allclose(out[0, 0], [0.0, 0.0, 2.0])
    np.testing.assert_allclose(out[0, 1], [300 * 2.0 / 600, 0.0, 2.0])
    np.testing.assert_allclose(out[0, 2], [0.0, 240 * 2.0 / 610, 2.0])
    np.testing.assert_allclose(out[0, 3], [-300 * 2.0 / 600, -200 * 2.0 / 610, 2.0])
    assert np.isnan(out[0, 4]).all()  # missing keypoint
    assert np.isnan(out[1]).all()  # no depth frame
    np.testing.assert_allclose(out[2, 1], [300 * 1.5 / 600, 0.0, 1.5])
    # as a (T, H, W) array too
    arr = backproject(kpts[:1], np.stack([_plane()]), INTR)
    np.testing.assert_allclose(arr[0, 1], [1.0, 0.0, 2.0])


def test_backproject_rejects_inconsistent_input() -> None:
    kpts = np.zeros((2, 21, 2))
    with pytest.raises(ValueError, match="depth frames"):
        backproject(kpts, [_plane()], INTR)
    with pytest.raises(ValueError, match="fy"):
        backproject(kpts, [_plane(), _plane()], {"fx": 1.0, "cx": 0.0, "cy": 0.0})
