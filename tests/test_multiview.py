"""The multi-camera check's calibration reader and triangulation (benchmarks.multiview_check).

On the real Qualisys calibration of the Pose2Sim demo lab (committed, BSD-3): the cameras sit where
the file says, 1.7-2.1 m up, and all look at the lab's origin (the walkway) from in front; a point
projected into the four views and triangulated back from any three (with their lens distortion) is
the same point; a wrong pixel in one view shows up as that view's leave-one-out error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.multiview_check import leave_one_out, project, read_qca, triangulate

CALIB = Path(__file__).parent / "data" / "pose2sim_Calib.qca.txt"


def test_cameras_are_where_the_file_says_and_see_the_walkway() -> None:
    cams = read_qca(CALIB)
    assert sorted(cams) == ["cam01", "cam02", "cam03", "cam04"]
    for cam in cams.values():
        assert cam.size == (1088, 1920)
        centre = -cam.R.T @ cam.t
        assert 1.5 < centre[2] < 2.5 and 2.0 < np.linalg.norm(centre[:2]) < 4.5
        assert (cam.R @ np.zeros(3) + cam.t)[2] > 2.0  # the origin is in front of the camera ...
        u, v = project(cam, np.zeros(3))
        assert 0 <= u < cam.size[0] and 0 <= v < cam.size[1]  # ... and inside its picture


def test_triangulation_round_trip_and_a_wrong_view_is_singled_out() -> None:
    cams = [read_qca(CALIB)[f"cam0{i}"] for i in (1, 2, 3, 4)]
    rng = np.random.default_rng(0)
    X = rng.uniform([-0.5, -0.5, 0.0], [0.5, 0.5, 1.8], size=(5, 3))
    pts = [np.array([[project(c, x) for x in X]]) for c in cams]  # (1 frame, 5 points, 2) per view
    for j, x in enumerate(X):
        np.testing.assert_allclose(triangulate(cams[1:], [p[0, j] for p in pts[1:]]), x, atol=1e-6)
    pts[2][0, 3] += (40.0, 0.0)  # view 3 puts point 3 forty pixels off
    scores = [np.ones((1, 5)) for _ in cams]
    boxes = [np.array([[0.0, 0.0, 500.0, 1000.0]]) for _ in cams]
    err = leave_one_out(cams, pts, scores, boxes, 0.5) * 1000.0  # px on a 1000-px subject
    assert abs(err[2, 0, 3] - 40.0) < 2.0 and np.nanmax(np.delete(err[:, 0, :], 3, axis=1)) < 1e-3
