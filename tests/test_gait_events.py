"""Walking segments, direction, Zeni events and leg-swap correction on a walker with known truth."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from gaitpose.gait.analysis import analyze_gait as _analyze_gait
from gaitpose.gait.events import detect_events, walking_direction, walking_segments
from gaitpose.gait.filters import clean_trajectories
from gaitpose.gait.swap import LEG_CHAIN, fix_left_right_swaps
from gaitpose.gait.synthetic import synthetic_walk
from gaitpose.skeleton import INDEX

# The synthetic walker's heel strike is Zeni's maximum by construction (gaitpose.gait.synthetic), so these
# tests check Zeni's timing itself; the heel-strike refinement is checked on motion capture (test_gait_files.py).
analyze_gait = partial(_analyze_gait, refine_heel_strike=False)

SWAP_FRAMES = [38, 39, 40, 104, 105]  # around left heel strikes, where the legs are far apart


def _damage(kpts: np.ndarray, scores: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel noise, short dropouts (<= 0.1 s) and single-frame glitches, as a detector produces."""
    rng = np.random.default_rng(seed)
    k = kpts + rng.normal(0.0, 0.7, kpts.shape)
    s = scores.copy()
    for frame, name in ((30, "left_heel"), (64, "right_toe"), (95, "right_heel"), (120, "left_ankle")):
        s[frame : frame + 3, INDEX[name]] = 0.05
    k[[50, 80, 140], INDEX["left_heel"]] += [[50.0, -40.0], [-45.0, 30.0], [60.0, 0.0]]
    k[110, INDEX["right_toe"]] += [-55.0, 20.0]
    return k, s


def _swap_legs(kpts: np.ndarray, frames: list[int]) -> np.ndarray:
    k = kpts.copy()
    left = [INDEX["left_" + j] for j in LEG_CHAIN]
    right = [INDEX["right_" + j] for j in LEG_CHAIN]
    for f in frames:
        k[f, left], k[f, right] = kpts[f, right], kpts[f, left]
    return k


def _match(detected: list[float], truth: np.ndarray, tol: float) -> None:
    """Every true event has one detection within ``tol`` frames, and there are no extra detections."""
    detected = np.asarray(detected)
    assert len(detected) == len(truth), (detected, truth)
    for t in truth:
        assert np.abs(detected - t).min() <= tol, (t, detected)


def _inner(truth: np.ndarray, detected: list[float], n_frames: int = 180, edge: float = 5.0) -> np.ndarray:
    """True events away from the clip ends, plus edge ones that were detected (allowed, not required)."""
    near = [t for t in truth if (t < edge or t > n_frames - 1 - edge) and any(abs(d - t) <= 1 for d in detected)]
    return np.sort(np.array([t for t in truth if edge <= t <= n_frames - 1 - edge] + near))


@pytest.mark.parametrize("direction", [1, -1])
def test_events_and_cadence_exact_on_damaged_walker(direction: int) -> None:
    w = synthetic_walk(n_frames=180, direction=direction)
    k, s = _damage(w.kpts, w.scores)
    r = analyze_gait(k, s, w.fps)
    assert r.walking_found and r.direction == direction
    assert r.segments and r.segments[0][0] <= 3 and r.segments[-1][1] >= 177
    for foot in ("left", "right"):
        hs = [e.time_s * w.fps for e in r.events if e.foot == foot and e.event == "heel_strike"]
        to = [e.time_s * w.fps for e in r.events if e.foot == foot and e.event == "toe_off"]
        # events within 1 frame; an extremum in the last/first 5 frames cannot be confirmed as one
        _match(hs, _inner(w.heel_strikes[foot], hs), 1.0)
        _match(to, _inner(w.toe_offs[foot], to), 1.0)
        frames = [e.frame for e in r.events if e.foot == foot and e.event == "heel_strike"]
        assert frames == [round(t) for t in hs] or np.abs(np.array(frames) - np.array(hs)).max() <= 0.5
    true_cadence = 60.0 / (w.period_s / 2)
    assert r.metrics["cadence_steps_per_min"] == pytest.approx(true_cadence, rel=0.005)
    assert r.metrics["stride_time_s"]["mean"] == pytest.approx(w.period_s, rel=0.005)
    assert r.metrics["n_strides"] >= 8 and r.metrics["n_steps"] >= 9


def test_direction_and_segments_for_a_walk_then_standing() -> None:
    walk = synthetic_walk(n_frames=120, direction=-1)
    stand = synthetic_walk(n_frames=90, standing=True, x0=float(walk.kpts[-1, INDEX["left_hip"], 0]) + 1.0)
    k = np.concatenate([walk.kpts, stand.kpts])
    k, _ = clean_trajectories(k, np.full(k.shape[:2], 0.9), 30.0)
    segs = walking_segments(k, 30.0)
    assert len(segs) == 1
    a, b = segs[0]
    assert a <= 3 and 115 <= b <= 135  # ends where the pelvis stops (within the 0.5 s smoothing)
    assert walking_direction(k, 30.0, segments=segs).tolist() == [-1]
    per_frame = walking_direction(k, 30.0)
    assert (per_frame[10:100] == -1).all()
    events = detect_events(k, 30.0, segs)
    assert events and all(a <= e.frame < b for e in events)
    assert walking_segments(stand.kpts, 30.0) == []


def test_injected_leg_swaps_are_detected_and_fixed() -> None:
    w = synthetic_walk(n_frames=180)
    rng = np.random.default_rng(1)
    noisy = w.kpts + rng.normal(0.0, 1.0, w.kpts.shape)
    fixed, frames = fix_left_right_swaps(_swap_legs(noisy, SWAP_FRAMES), w.scores)
    assert frames.tolist() == SWAP_FRAMES
    np.testing.assert_array_equal(fixed, noisy)
    _, none = fix_left_right_swaps(noisy, w.scores)  # crossings of the legs are not swaps
    assert none.size == 0
    # end to end: the swaps do not create fake events
    r = analyze_gait(_swap_legs(w.kpts, SWAP_FRAMES), w.scores, w.fps)
    assert r.swapped_frames.tolist() == SWAP_FRAMES
    assert any("swapped" in m for m in r.warnings)
    hs = [e.time_s * w.fps for e in r.events if e.foot == "left" and e.event == "heel_strike"]
    _match(hs, w.heel_strikes["left"], 1.0)
    # labelled markers (fix_swaps=False, as `gaitpose gait` reads a C3D): the data are taken as they are
    kept = analyze_gait(_swap_legs(w.kpts, SWAP_FRAMES), w.scores, w.fps, fix_swaps=False)
    assert kept.swapped_frames.size == 0 and not any("swapped" in m for m in kept.warnings)


def test_swap_run_between_two_leg_crossings_is_found() -> None:
    """The hard case: the detector swaps identities where the legs cross and keeps them swapped for
    half a stride. Positions are continuous at both ends; only the velocities tell."""
    w = synthetic_walk(n_frames=180)
    dx = w.kpts[:, INDEX["left_ankle"], 0] - w.kpts[:, INDEX["right_ankle"], 0]
    cross = np.flatnonzero(np.diff(np.sign(dx)) != 0)
    frames = list(range(cross[3] + 1, cross[4] + 1))
    assert len(frames) > 10
    noisy = w.kpts + np.random.default_rng(2).normal(0.0, 1.5, w.kpts.shape)
    fixed, found = fix_left_right_swaps(_swap_legs(noisy, frames), w.scores)
    assert found.tolist() == frames
    np.testing.assert_array_equal(fixed, noisy)


def test_standing_still_is_not_walking() -> None:
    w = synthetic_walk(n_frames=150, standing=True)
    r = analyze_gait(w.kpts, w.scores, w.fps, height_cm=170.0)
    assert not r.walking_found and r.metrics["walking_found"] is False
    assert r.events == [] and r.segments == []
    assert any("no walking" in m for m in r.warnings)
    assert r.metrics["cadence_steps_per_min"] is None
    assert all(c["n"] == 0 for c in r.cycles.values())


def test_malformed_input_is_a_clear_error() -> None:
    w = synthetic_walk(n_frames=40)
    with pytest.raises(ValueError, match="shape"):
        analyze_gait(w.kpts[:, :17], w.scores, w.fps)
    with pytest.raises(ValueError, match="fps"):
        analyze_gait(w.kpts, w.scores, 0.0)


def test_bilateral_events_ignore_leg_labels_swapped_between_crossings() -> None:
    """Labels swapped from one leg crossing to the next (half a stride, a heel strike inside) and not
    repaired: per-foot Zeni then reports the wrong foot and a broken alternation, the bilateral
    detector still times and assigns every step correctly."""
    w = synthetic_walk(n_frames=180)
    dx = w.kpts[:, INDEX["left_ankle"], 0] - w.kpts[:, INDEX["right_ankle"], 0]
    cross = np.flatnonzero(np.diff(np.sign(dx)) != 0)
    frames = list(range(cross[3] + 1, cross[4] + 1))
    k = _swap_legs(w.kpts, frames)
    segs = [(0, 180)]

    def heel_strikes(events: list, foot: str) -> list[float]:
        return [e.time_s * w.fps for e in events if e.foot == foot and e.event == "heel_strike"]

    bilateral = detect_events(k, w.fps, segs)
    for foot in ("left", "right"):
        hs = heel_strikes(bilateral, foot)
        _match(hs, _inner(w.heel_strikes[foot], hs), 1.0)
        to = [e.time_s * w.fps for e in bilateral if e.foot == foot and e.event == "toe_off"]
        _match(to, _inner(w.toe_offs[foot], to), 1.0)
    per_foot = detect_events(k, w.fps, segs, method="per_foot")
    wrong = 0
    for foot in ("left", "right"):
        hs = heel_strikes(per_foot, foot)
        truth = _inner(w.heel_strikes[foot], hs)
        wrong += len(hs) != len(truth) or any(np.abs(np.asarray(hs) - t).min() > 1.0 for t in truth)
    assert wrong, "the swapped stretch should defeat per-foot Zeni (else this test proves nothing)"
    with pytest.raises(ValueError, match="unknown event method"):
        detect_events(k, w.fps, segs, method="magic")  # type: ignore[arg-type]
