"""Spatio-temporal metrics against the synthetic walker's truth: time, phases, lengths in m and relative."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest

from gaitpose.gait.analysis import analyze_gait as _analyze_gait
from gaitpose.gait.metrics import compute_metrics, pixel_height, symmetry_index
from gaitpose.gait.synthetic import synthetic_walk
from gaitpose.skeleton import INDEX

# The synthetic walker's heel strike is Zeni's maximum by construction (gaitpose.gait.synthetic), so these
# tests check Zeni's timing itself; the heel-strike refinement is checked on motion capture (test_gait_files.py).
analyze_gait = partial(_analyze_gait, refine_heel_strike=False)

HEIGHT_CM = 170.0


def _heel_x(w, side: str, frame: float) -> float:
    x = w.kpts[:, INDEX[f"{side}_heel"], 0]
    return float(np.interp(frame, np.arange(len(x)), x))


def _true_lengths_px(w) -> tuple[float, float, float]:
    """(mean step length, stride length, walking speed) of the walker, in px and px/s."""
    steps = []
    for side, other in (("left", "right"), ("right", "left")):
        hs = w.heel_strikes[side]
        for f in hs[(hs > 3) & (hs < len(w.kpts) - 4)]:
            steps.append((_heel_x(w, side, f) - _heel_x(w, other, f)) * w.direction)
    speed = 0.75 * w.height_px / w.period_s  # synthetic_walk's default speed
    return float(np.mean(steps)), speed * w.period_s, speed


@pytest.mark.parametrize("direction", [1, -1])
def test_lengths_in_metres_from_subject_height(direction: int) -> None:
    w = synthetic_walk(direction=direction)
    r = analyze_gait(w.kpts, w.scores, w.fps, height_cm=HEIGHT_CM)
    m = r.metrics
    assert r.units == "m" and m["units"] == "m" and m["length_source"] == "height"
    m_per_px = HEIGHT_CM / 100.0 / w.height_px
    assert m["scale_m_per_px"] == pytest.approx(m_per_px, rel=0.02)
    step, stride, speed = _true_lengths_px(w)
    assert m["step_length"]["mean"] == pytest.approx(step * m_per_px, rel=0.03)
    assert m["stride_length"]["mean"] == pytest.approx(stride * m_per_px, rel=0.03)
    assert m["walking_speed"] == pytest.approx(speed * m_per_px, rel=0.03)
    assert not any("relative" in msg for msg in r.warnings)


def test_pixel_height_uses_the_eye_to_floor_ratio() -> None:
    w = synthetic_walk(height_px=300.0)
    ext, ratio = pixel_height(w.kpts)
    assert ratio == pytest.approx(0.936)
    assert ext / ratio == pytest.approx(300.0, rel=0.02)
    k = w.kpts.copy()
    k[:, [INDEX["left_eye"], INDEX["right_eye"]]] = np.nan  # eyes hidden: the nose is used
    assert pixel_height(k)[1] == pytest.approx(0.91)


def test_lengths_in_metres_from_depth() -> None:
    w = synthetic_walk(n_frames=90)
    z_mm, fx = 3000, 600.0
    width = int(np.nanmax(w.kpts[..., 0])) + 40
    plane = np.full((480, width), z_mm, dtype=np.uint16)
    plane[::7, ::5] = 0  # scattered holes, ignored by the robust depth
    intr = {"fx": fx, "fy": fx, "cx": width / 2, "cy": 240.0}
    r = analyze_gait(w.kpts, w.scores, w.fps, depth_frames=[plane] * len(w.kpts), intrinsics=intr)
    assert r.kpts3d is not None and r.units == "m" and r.metrics["length_source"] == "depth"
    m_per_px = z_mm / 1000.0 / fx
    step, stride, speed = _true_lengths_px(w)
    m = r.metrics
    assert m["stride_length"]["mean"] == pytest.approx(stride * m_per_px, rel=0.01)
    assert m["step_length"]["mean"] == pytest.approx(step * m_per_px, rel=0.03)
    assert m["walking_speed"] == pytest.approx(speed * m_per_px, rel=0.01)
    # the heel hitting the background (a flying edge pixel) for two frames is rejected in time
    frames = [plane] * len(w.kpts)
    hs = round(w.heel_strikes["left"][1])
    for f in (hs, hs + 1):
        u, v = np.round(w.kpts[f, INDEX["left_heel"]]).astype(int)
        bad = plane.copy()
        bad[v - 3 : v + 4, u - 3 : u + 4] = 6500
        frames[f] = bad
    r3 = analyze_gait(w.kpts, w.scores, w.fps, depth_frames=frames, intrinsics=intr)
    assert r3.kpts3d[hs, INDEX["left_heel"], 2] == pytest.approx(3.0, abs=0.01)
    assert r3.metrics["stride_length"]["mean"] == pytest.approx(stride * m_per_px, rel=0.01)
    # depth without intrinsics is ignored with a warning
    r2 = analyze_gait(w.kpts, w.scores, w.fps, depth_frames=[plane] * len(w.kpts))
    assert r2.kpts3d is None and any("intrinsics" in msg for msg in r2.warnings)


def test_relative_units_without_scale_and_json() -> None:
    w = synthetic_walk()
    r = analyze_gait(w.kpts, w.scores, w.fps)
    m = r.metrics
    assert r.units == "relative" and m["length_source"] == "leg_length"
    assert any("relative" in msg for msg in r.warnings)
    leg = (0.245 + 0.246) * w.height_px
    _, stride, speed = _true_lengths_px(w)
    assert m["stride_length"]["mean"] == pytest.approx(stride / leg, rel=0.03)
    assert m["walking_speed"] == pytest.approx(speed / leg, rel=0.03)
    text = json.dumps(r.to_dict(include_series=True), allow_nan=False)
    back = json.loads(text)
    assert back["metrics"]["n_strides"] == m["n_strides"]
    assert len(back["cycles"]["hip_left"]["mean"]) == 101
    for key in ("cadence_steps_per_min", "step_time_s", "stride_time_s", "stance_pct", "swing_pct",
                "double_support_pct", "symmetry", "n_strides", "n_steps", "walking_found", "units",
                "step_length", "stride_length", "walking_speed", "angles"):
        assert key in m, key


def test_phases_match_truth() -> None:
    w = synthetic_walk()
    r = analyze_gait(w.kpts, w.scores, w.fps)
    hs_l, to_l, hs_r, to_r = w.heel_strikes["left"], w.toe_offs["left"], w.heel_strikes["right"], w.toe_offs["right"]
    P = w.period_s * w.fps
    stance = 100 * (to_l[0] - hs_l[0]) / P
    ds = 100 * ((to_r[to_r > hs_l[1]][0] - hs_l[1]) + (to_l[to_l > hs_r[1]][0] - hs_r[1])) / P
    m = r.metrics
    assert m["stance_pct"]["left"] == pytest.approx(stance, abs=1.5)
    assert m["stance_pct"]["right"] == pytest.approx(stance, abs=1.5)
    assert m["swing_pct"]["left"] == pytest.approx(100 - stance, abs=1.5)
    assert m["double_support_pct"] == pytest.approx(ds, abs=2.0)
    assert m["step_time_s"]["left"] == pytest.approx(w.period_s / 2, abs=1.0 / w.fps)
    assert m["symmetry"] < 3.0


def test_symmetry_index_and_compute_metrics_without_events() -> None:
    assert symmetry_index(1.0, 1.2) == pytest.approx(100 * 0.2 / 1.1)
    assert symmetry_index(None, 1.0) is None
    w = synthetic_walk(n_frames=60)
    m = compute_metrics([], w.kpts, w.fps, height_cm=HEIGHT_CM)
    assert m["cadence_steps_per_min"] is None and m["n_strides"] == 0 and m["step_time_s"]["left"] is None
