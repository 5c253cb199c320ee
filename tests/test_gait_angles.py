"""Sagittal angles on known geometry and on the synthetic walker; gait-cycle normalisation."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from gaitpose.gait.analysis import analyze_gait as _analyze_gait
from gaitpose.gait.angles import normalize_cycles, sagittal_angles
from gaitpose.gait.synthetic import synthetic_walk
from gaitpose.skeleton import INDEX, NUM_KEYPOINTS

# The synthetic walker's heel strike is Zeni's maximum by construction (gaitpose.gait.synthetic), so these
# tests check Zeni's timing itself; the heel-strike refinement is checked on motion capture (test_gait_files.py).
analyze_gait = partial(_analyze_gait, refine_heel_strike=False)


def _pose(points: dict[str, tuple[float, float]]) -> np.ndarray:
    k = np.full((1, NUM_KEYPOINTS, 2), np.nan)
    for name, xy in points.items():
        k[0, INDEX[name]] = xy
    return k


def _leg(knee: tuple[float, float], ankle: tuple[float, float], heel: tuple[float, float],
         toe: tuple[float, float]) -> np.ndarray:
    """A right leg (image coordinates, y down) under an upright trunk; hip at (100, 200)."""
    return _pose({
        "left_shoulder": (100, 50), "right_shoulder": (100, 50), "left_hip": (100, 200), "right_hip": (100, 200),
        "right_knee": knee, "right_ankle": ankle, "right_heel": heel, "right_toe": toe,
    })


def test_known_geometry() -> None:
    # straight vertical leg, foot at a right angle to the shank, pointing forward (+x)
    a = sagittal_angles(_leg((100, 300), (100, 400), (95, 410), (140, 410)), 1)
    assert a["hip_right"][0] == pytest.approx(0.0, abs=1e-9)
    assert a["knee_right"][0] == pytest.approx(0.0, abs=1e-9)
    assert a["ankle_right"][0] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(a["knee_left"][0])  # left leg missing -> NaN, no crash
    # thigh horizontal forward (hip 90), shank straight down (knee 90), toes raised 10 deg (dorsiflexion)
    up = np.tan(np.radians(10)) * 40
    a = sagittal_angles(_leg((200, 200), (200, 300), (195, 310), (235, 310 - up)), 1)
    assert a["hip_right"][0] == pytest.approx(90.0)
    assert a["knee_right"][0] == pytest.approx(90.0)
    assert a["ankle_right"][0] == pytest.approx(10.0)
    # thigh 30 deg behind the trunk (hip extension, negative), shank in line (knee 0),
    # foot rotated 20 deg toes-down from the right angle (plantarflexion, negative)
    psi = np.radians(-30.0)
    knee = (100 + 100 * np.sin(psi), 200 + 100 * np.cos(psi))
    ankle = (knee[0] + 100 * np.sin(psi), knee[1] + 100 * np.cos(psi))
    beta = psi + np.radians(-20.0)  # foot direction in the body frame (x forward, y up)
    toe = (ankle[0] + 40 * np.cos(beta), ankle[1] - 40 * np.sin(beta))
    a = sagittal_angles(_leg(knee, ankle, ankle, toe), 1)
    assert a["hip_right"][0] == pytest.approx(-30.0)
    assert a["knee_right"][0] == pytest.approx(0.0, abs=1e-9)
    assert a["ankle_right"][0] == pytest.approx(-20.0)
    # a knee bent backwards beyond straight (hyperextension) is negative
    a = sagittal_angles(_leg((100, 300), (110, 400), (105, 410), (150, 410)), 1)
    assert a["knee_right"][0] < 0


def test_mirrored_walk_gives_the_same_angles() -> None:
    k = _leg((200, 200), (190, 300), (185, 310), (225, 305))
    mirrored = k.copy()
    mirrored[..., 0] = 1000 - mirrored[..., 0]
    a, b = sagittal_angles(k, 1), sagittal_angles(mirrored, -1)
    for name in ("hip_right", "knee_right", "ankle_right"):
        assert a[name][0] == pytest.approx(b[name][0])
    assert np.isnan(sagittal_angles(k, 0)["knee_right"][0])  # unknown direction -> no sign -> NaN


@pytest.mark.parametrize("direction", [1, -1])
def test_walker_angles_and_cycles_match_truth(direction: int) -> None:
    w = synthetic_walk(direction=direction)
    a = sagittal_angles(w.kpts, direction)
    for name, truth in w.angles.items():
        np.testing.assert_allclose(a[name], truth, atol=1e-6, err_msg=name)
    r = analyze_gait(w.kpts, w.scores, w.fps)
    # cycle-normalised knee curve: 0 at heel strike, peak flexion 55 deg at 72 % of the cycle
    knee = np.array(r.cycles["knee_left"]["mean"], dtype=float)
    assert r.cycles["knee_left"]["n"] >= 4
    assert knee[0] == pytest.approx(0.0, abs=2.0)
    assert int(np.argmax(knee)) in range(68, 76)  # 72 % +- one frame (3 %) and the low-pass
    assert knee.max() == pytest.approx(55.0, abs=2.0)
    assert np.nanmax(r.cycles["knee_left"]["std"]) < 2.0
    assert r.metrics["angles"]["knee_right"]["range"] == pytest.approx(55.0, abs=2.0)
    assert r.metrics["angles"]["hip_left"]["max"] == pytest.approx(30.0, abs=1.5)


def test_normalize_cycles_of_a_known_periodic_signal() -> None:
    fps, period = 30.0, 1.1
    t = np.arange(200) / fps
    y = 10 * np.sin(2 * np.pi * (t - 0.3) / period) + 0.01 * np.cos(7 * t)
    hs = (0.3 + period * np.arange(6)) * fps
    y[100:103] = np.nan  # a short hole inside a cycle is interpolated
    mean, std, n = normalize_cycles(y, hs)
    assert n == 5 and mean.shape == (101,)
    np.testing.assert_allclose(mean, 10 * np.sin(2 * np.pi * np.linspace(0, 1, 101)), atol=0.3)
    assert std.max() < 0.3
    # a missed heel strike makes a double-length cycle: skipped, not averaged in
    mean2, _, n2 = normalize_cycles(y, np.delete(hs, 3))
    assert n2 == 3
    np.testing.assert_allclose(mean2, mean, atol=0.3)
    empty_mean, empty_std, n0 = normalize_cycles(y, hs[:1])
    assert n0 == 0 and np.isnan(empty_mean).all() and np.isnan(empty_std).all()


def test_hip_flexion_from_the_pelvis_instead_of_the_trunk() -> None:
    # thigh straight down under a leaning trunk; pelvis tilted 10 deg forward (ASIS below PSIS, image y down)
    k = _pose({"left_shoulder": (130, 50), "right_shoulder": (130, 50), "left_hip": (100, 200),
               "right_hip": (100, 200), "right_knee": (100, 300), "right_ankle": (100, 400),
               "right_heel": (95, 410), "right_toe": (140, 410)})
    tilt = np.radians(10.0)
    fwd = np.array([[np.cos(tilt), np.sin(tilt)]])
    assert sagittal_angles(k, 1)["hip_right"][0] == pytest.approx(11.3, abs=0.1)  # trunk leans forward: flexion
    a = sagittal_angles(k, 1, pelvis_forward=fwd)
    assert a["hip_right"][0] == pytest.approx(10.0, abs=1e-6)  # anterior tilt reads as hip flexion, as in Plug-in Gait
    assert a["knee_right"][0] == pytest.approx(0.0, abs=1e-9)  # other joints unchanged
    # walking right-to-left: the mirrored scene gives the same angle
    km = k.copy()
    km[..., 0] *= -1
    assert sagittal_angles(km, -1, pelvis_forward=fwd * [[-1, 1]])["hip_right"][0] == pytest.approx(10.0, abs=1e-6)
    # no pelvis in a frame: no hip angle there (never the trunk's, a different convention)
    assert np.isnan(sagittal_angles(k, 1, pelvis_forward=np.full((1, 2), np.nan))["hip_right"][0])
