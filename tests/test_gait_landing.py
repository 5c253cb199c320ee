"""The landing-aware heel-strike rule (``refine_heel_strikes(method="landing")``, the default).

The rule: move the mid-point (Zeni / foot-velocity algorithm) towards the FVA time by how flat the
foot lands (the slower / faster descent speed of heel and toe at the FVA peak). Checked here for its
mechanics on synthetic feet (flat landing -> the FVA time, heel-first -> the mid-point unchanged) and
on the design trial, treadmill_a (heel-first walking: identical to the mid-point rule). Its accuracy
against reference events is the benchmark's (``python -m benchmarks.gait_validation --heel-strike
landing``), on trials that were not used to choose it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gaitpose.gait.events import GaitEvent, refine_heel_strikes
from gaitpose.gait.filters import butter_lowpass
from gaitpose.skeleton import INDEX, NUM_KEYPOINTS

FPS = 30.0
CONTACT_S = 1.0
FLOOR_PX = 400.0


def _foot(heel_h, toe_h, n: int = 60) -> np.ndarray:
    """Left heel and toe at heights (px above the floor, image y grows down), low-passed as analyze_gait does."""
    t = np.arange(n) / FPS
    k = np.full((n, NUM_KEYPOINTS, 2), np.nan)
    k[:, INDEX["left_heel"]] = np.stack([np.full(n, 100.0), FLOOR_PX - heel_h(t)], axis=1)
    k[:, INDEX["left_toe"]] = np.stack([np.full(n, 130.0), FLOOR_PX - toe_h(t)], axis=1)
    return butter_lowpass(k, FPS, 6.0)


def _drop(t: np.ndarray, height: float = 30.0, dur: float = 0.25) -> np.ndarray:
    """Descent that reaches the floor at CONTACT_S still moving (a quarter sine), then rests on it."""
    return height * np.sin(np.pi / 2 * np.clip((CONTACT_S - t) / dur, 0.0, 1.0))


def _heel_first_heel(t: np.ndarray) -> np.ndarray:
    """Heel down at contact, then raised 3 px as the foot rolls over it (heel rocker)."""
    return _drop(t) + 3.0 * (1 - np.cos(np.pi * np.clip((t - CONTACT_S) / 0.1, 0.0, 1.0))) / 2


def _heel_first_toe(t: np.ndarray) -> np.ndarray:
    """Toe held 40 px up until the heel lands, then lowered to the floor over 0.12 s."""
    lowering = 40.0 * np.cos(np.pi / 2 * np.clip((t - CONTACT_S) / 0.12, 0.0, 1.0))
    return np.where(t < CONTACT_S, 40.0 + 0.3 * _drop(t), lowering) + 5.0


def _refine(k: np.ndarray, zeni_s: float, method: str | None) -> float:
    ev = [GaitEvent("left", "heel_strike", round(zeni_s * FPS), zeni_s)]
    if method is None:
        out = refine_heel_strikes(ev, k, FPS)
    else:
        out = refine_heel_strikes(ev, k, FPS, method=method)  # type: ignore[arg-type]
    assert len(out) == 1 and out[0].event == "heel_strike"
    return out[0].time_s


def test_flat_landing_moves_to_the_foot_velocity_time() -> None:
    k = _foot(_drop, lambda t: _drop(t) + 5.0)  # heel and toe come down together
    zeni = CONTACT_S - 0.1
    mid = _refine(k, zeni, "midpoint")
    landing = _refine(k, zeni, "landing")
    fva = 2 * mid - zeni  # the mid-point rule's FVA time
    assert fva > zeni + 0.02  # the FVA peak was found, after Zeni
    assert landing == pytest.approx(fva, abs=1e-3)  # weight 1: flat landing
    assert landing - mid > 0.01
    assert _refine(k, zeni, None) == landing  # the default rule


def test_heel_first_landing_keeps_the_midpoint() -> None:
    k = _foot(_heel_first_heel, _heel_first_toe)
    zeni = CONTACT_S - 0.03
    mid = _refine(k, zeni, "midpoint")
    assert _refine(k, zeni, "landing") == mid  # weight 0: the heel is down when the forefoot drops
    assert abs(mid - CONTACT_S) < 0.035


def test_landing_without_toes_keeps_the_midpoint() -> None:
    k = _foot(_drop, lambda t: _drop(t) + 5.0)
    k[:, INDEX["left_toe"]] = np.nan  # toes unseen: foot centre falls back to the heel, no weight
    zeni = CONTACT_S - 0.1
    assert _refine(k, zeni, "landing") == _refine(k, zeni, "midpoint")


def test_unknown_heel_strike_method_is_refused() -> None:
    k = _foot(_drop, _drop)
    with pytest.raises(ValueError, match="heel-strike method"):
        refine_heel_strikes([GaitEvent("left", "heel_strike", 27, 0.9)], k, FPS, method="jerk")  # type: ignore[arg-type]


def test_design_trial_heel_first_landings_unchanged() -> None:
    """treadmill_a (the design trial, heel-first walking): every heel strike exactly as the mid-point rule."""
    pytest.importorskip("ezc3d")
    from gaitpose.gait.analysis import analyze_gait
    from gaitpose.gait.readers import read_trajectories, resample

    tr = resample(read_trajectories(Path(__file__).parent / "data" / "c3d" / "treadmill_a.c3d"), FPS)
    r = analyze_gait(tr.kpts, tr.scores, tr.fps, refine_heel_strike=False)
    mid = refine_heel_strikes(r.events, r.kpts, tr.fps, method="midpoint")
    land = refine_heel_strikes(r.events, r.kpts, tr.fps, method="landing")
    hs = [e.time_s for e in mid if e.event == "heel_strike"]
    assert len(hs) >= 8
    assert [e.time_s for e in land if e.event == "heel_strike"] == hs


def _walker(n: int = 150, leg: float = 200.0) -> np.ndarray:
    """Smooth synthetic side-view legs (hips, ankles, heels, toes) at 30 fps, leg length ``leg`` px."""
    t = np.arange(n) / FPS
    k = np.full((n, NUM_KEYPOINTS, 2), np.nan)
    for side, ph in (("left", 0.0), ("right", np.pi)):
        hip = np.stack([300 + 60 * t, 200 + 3 * np.sin(4 * np.pi * t)], axis=1)
        swing = np.sin(2 * np.pi * t + ph)
        ankle = hip + np.stack([0.4 * leg * swing, np.sqrt(1 - (0.4 * swing) ** 2) * leg], axis=1)
        lift = 10 * np.clip(swing, 0, None)
        k[:, INDEX[f"{side}_hip"]] = hip
        k[:, INDEX[f"{side}_ankle"]] = ankle
        k[:, INDEX[f"{side}_knee"]] = (hip + ankle) / 2 + np.array([8.0, 0.0])  # slightly bent, leg ~200 px
        k[:, INDEX[f"{side}_heel"]] = ankle + np.stack([-15 + 0 * t, 20 - lift], axis=1)
        k[:, INDEX[f"{side}_toe"]] = ankle + np.stack([40 + 0 * t, 25 - 0.5 * lift], axis=1)
    return k


def test_keypoint_noise_reads_white_noise_in_leg_lengths() -> None:
    from gaitpose.gait.events import LANDING_MAX_NOISE, keypoint_noise

    k = _walker()
    assert keypoint_noise(k) < LANDING_MAX_NOISE  # smooth motion alone reads as steady
    rng = np.random.default_rng(3)
    for sigma in (0.005, 0.01, 0.02):
        noisy = k + rng.normal(0.0, sigma * 200.0, k.shape)
        assert keypoint_noise(noisy) == pytest.approx(sigma, rel=0.25)
    blank = np.full_like(k, np.nan)
    assert np.isnan(keypoint_noise(blank))


def test_steady_marker_trial_gets_the_landing_rule_and_video_like_noise_the_midpoint() -> None:
    """analyze_gait's automatic choice, with the measured noise in the metrics (treadmill_a, design trial)."""
    pytest.importorskip("ezc3d")
    from gaitpose.gait.analysis import analyze_gait
    from gaitpose.gait.events import LANDING_MAX_NOISE
    from gaitpose.gait.readers import read_trajectories, resample
    from gaitpose.gait.swap import leg_length_px

    tr = resample(read_trajectories(Path(__file__).parent / "data" / "c3d" / "treadmill_a.c3d"), FPS)
    clean = analyze_gait(tr.kpts, tr.scores, tr.fps)
    info = clean.metrics["heel_strike_rule"]
    assert info["rule"] == "landing" and info["chosen"] == "auto"
    assert info["keypoint_noise_leg"] < LANDING_MAX_NOISE
    noisy_k = tr.kpts + np.random.default_rng(0).normal(0.0, 0.01 * leg_length_px(tr.kpts), tr.kpts.shape)
    noisy = analyze_gait(noisy_k, tr.scores, tr.fps)
    assert noisy.metrics["heel_strike_rule"]["rule"] == "midpoint"
    assert noisy.metrics["heel_strike_rule"]["keypoint_noise_leg"] == pytest.approx(0.01, rel=0.3)
    forced = analyze_gait(noisy_k, tr.scores, tr.fps, heel_strike_rule="landing")
    assert forced.metrics["heel_strike_rule"] == {**forced.metrics["heel_strike_rule"], "rule": "landing",
                                                 "chosen": "given"}
    with pytest.raises(ValueError, match="heel_strike_rule"):
        analyze_gait(tr.kpts, tr.scores, tr.fps, heel_strike_rule="jerk")


def test_heel_speed_rule_times_the_heel_coming_to_rest() -> None:
    """``method="heel_speed"`` (Bruening & Ridge's scaled Ghoussayni threshold) on a synthetic heel:
    moving with the pelvis at Zeni's time, then slowing linearly to rest over 0.15 s; the crossing of
    0.78 x walking speed is 0.22 x 0.15 s = 33 ms after Zeni."""
    n, v, zeni = 90, 300.0, 1.0  # 300 px/s
    t = np.arange(n) / FPS
    k = np.full((n, NUM_KEYPOINTS, 2), np.nan)
    for hip in ("left_hip", "right_hip"):
        k[:, INDEX[hip]] = np.stack([v * t, np.full(n, 100.0)], axis=1)
    rest = zeni + 0.15
    vx = np.where(t <= zeni, v, np.where(t < rest, v * (rest - t) / 0.15, 0.0))
    x = np.concatenate([[0.0], np.cumsum((vx[1:] + vx[:-1]) / 2) / FPS])
    k[:, INDEX["left_heel"]] = np.stack([x, np.full(n, 400.0)], axis=1)
    k[:, INDEX["left_toe"]] = np.stack([x + 40, np.full(n, 400.0) + 20 * np.clip(rest + 0.1 - t, 0, None)], axis=1)
    got = _refine(k, zeni, "heel_speed")
    assert got == pytest.approx(zeni + 0.22 * 0.15, abs=0.008)
    still = k.copy()
    for hip in ("left_hip", "right_hip"):
        still[:, INDEX[hip], 0] = 0.0  # no walking speed (treadmill): the landing rule's time instead
    assert _refine(still, zeni, "heel_speed") == _refine(still, zeni, "landing")
