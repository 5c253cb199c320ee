"""Timestamp pairing and depth-to-colour registration on known geometry."""

from __future__ import annotations

import numpy as np
import pytest

from gaitpose.io.sync import NearestPairer, default_tolerance_ms, pair_nearest, register_depth


def test_pairs_30fps_colour_with_15fps_depth_by_time() -> None:
    ct = np.arange(30) * 1000 / 30  # 0, 33.3, 66.7 ...
    dt = np.arange(15) * 1000 / 15 + 5.0  # 5, 71.7, 138.3 ... (5 ms late)
    idx, _err, rep = pair_nearest(ct, dt)
    assert rep.tolerance_ms == pytest.approx(1000 / 15 / 2, abs=1e-3)
    expected = np.array([int(np.argmin(np.abs(dt - t))) for t in ct])
    np.testing.assert_array_equal(idx, expected)
    # every depth frame serves two colour frames: 15 reuses, none dropped or unused
    assert (rep.matched, rep.dropped, rep.reused, rep.unused_depth) == (30, 0, 15, 0)
    assert rep.error_max_ms == pytest.approx(1000 / 30 - 5.0, abs=1e-6)
    assert rep.error_median_ms < rep.error_p95_ms <= rep.error_max_ms


def test_never_pairs_by_index_when_frames_are_dropped() -> None:
    ct = np.arange(10) * 100.0
    dt = np.array([0.0, 100.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0])  # 200, 300 dropped by the camera
    idx, err, rep = pair_nearest(ct, dt, tolerance_ms=30)
    assert list(idx) == [0, 1, -1, -1, 2, 3, 4, 5, 6, 7]
    assert np.isnan(err[2]) and np.isnan(err[3])
    assert (rep.matched, rep.dropped, rep.reused, rep.unused_depth) == (8, 2, 0, 0)


def test_clock_offset_is_applied_to_depth() -> None:
    ct = np.arange(20) * 1000 / 30
    dt = ct - 250.0 + 1.0  # depth clock runs 250 ms behind, plus 1 ms jitter
    _, _err0, rep0 = pair_nearest(ct, dt, tolerance_ms=5)
    assert rep0.matched < 5  # without the offset nearly nothing pairs
    idx, err, rep = pair_nearest(ct, dt, tolerance_ms=5, clock_offset_ms=250.0)
    np.testing.assert_array_equal(idx, np.arange(20))
    np.testing.assert_allclose(err, 1.0)
    assert rep.error_median_ms == pytest.approx(1.0) and rep.clock_offset_ms == 250.0


def test_streaming_pairer_matches_batch_and_default_tolerance() -> None:
    assert default_tolerance_ms(1000 / 30, 1000 / 15) == pytest.approx(33.333, abs=1e-3)
    ct = np.sort(np.random.default_rng(0).uniform(0, 2000, 50))
    dt = np.arange(0, 2000, 66.0)
    idx, _, rep = pair_nearest(ct, dt, tolerance_ms=20)
    p = NearestPairer(dt, tolerance_ms=20)
    got = [p.match(float(t))[0] for t in ct]
    np.testing.assert_array_equal(idx, [-1 if g is None else g for g in got])
    assert p.report() == rep


def _unproject(u: np.ndarray, v: np.ndarray, z: np.ndarray, cam: dict) -> np.ndarray:
    return np.stack([(u - cam["cx"]) * z / cam["fx"], (v - cam["cy"]) * z / cam["fy"], z])


def test_registration_of_a_tilted_plane_with_foreground_occluder() -> None:
    dcam = {"fx": 200.0, "fy": 200.0, "cx": 79.5, "cy": 59.5, "width": 160, "height": 120}
    ccam = {"fx": 420.0, "fy": 420.0, "cx": 159.5, "cy": 119.5, "width": 320, "height": 240}
    ang = np.deg2rad(3.0)
    rot = np.array([[np.cos(ang), 0, np.sin(ang)], [0, 1, 0], [-np.sin(ang), 0, np.cos(ang)]])
    t = np.array([-0.05, 0.002, 0.003])
    # Plane in the depth frame: Z = 2.0 + 0.3 X (tilted); depth image from ray/plane intersection.
    v, u = np.mgrid[0:120, 0:160].astype(np.float64)
    rx, _ry = (u - dcam["cx"]) / dcam["fx"], (v - dcam["cy"]) / dcam["fy"]
    z = 2.0 / (1.0 - 0.3 * rx)
    z[50:70, 70:90] = 1.0  # a box 1 m away in front of the plane
    depth = np.rint(z * 1000).astype(np.uint16)
    depth[0:5, 0:5] = 0  # holes stay holes
    reg = register_depth(depth, dcam, ccam, rot, t)
    assert reg.shape == (240, 320) and reg.dtype == np.uint16
    # Each registered pixel must lie on the transformed scene: map back to the depth frame and check.
    vc, uc = np.nonzero(reg)
    assert vc.size > 0.3 * 240 * 320
    pc = _unproject(uc.astype(float), vc.astype(float), reg[vc, uc] / 1000.0, ccam)
    pd = rot.T @ (pc - t[:, None])
    on_plane = np.abs(pd[2] - (2.0 + 0.3 * pd[0])) < 0.02
    on_box = np.abs(pd[2] - 1.0) < 0.01
    assert np.mean(on_plane | on_box) > 0.99
    # The box occludes the plane: at the box centre's colour pixel the nearest depth wins.
    pbox = rot @ _unproject(np.array([80.0]), np.array([60.0]), np.array([1.0]), dcam) + t[:, None]
    ub = round(ccam["fx"] * pbox[0, 0] / pbox[2, 0] + ccam["cx"])
    vb = round(ccam["fy"] * pbox[1, 0] / pbox[2, 0] + ccam["cy"])
    assert abs(int(reg[vb, ub]) - round(pbox[2, 0] * 1000)) <= 2
    # Identity registration with equal cameras reproduces the depth exactly.
    same = register_depth(depth, dcam, dcam)
    np.testing.assert_array_equal(same, depth)
