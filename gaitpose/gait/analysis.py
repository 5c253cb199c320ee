"""The whole gait analysis: keypoint trajectories in, events, metrics, angles and cycles out.

Pipeline: mask low-confidence points -> fix left/right leg swaps (before any smoothing, which
would blend the two legs) -> Hampel + short-gap fill + zero-lag low-pass -> walking segments ->
Zeni events -> angles and cycle-normalised curves -> metrics (metres from depth or subject height,
else leg lengths). "No walking" is a result, not an error: the caller gets ``walking_found=False``
and a warning it can show.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from gaitpose.gait.angles import JOINTS, PLAUSIBLE_RANGES_DEG, normalize_cycles, sagittal_angles
from gaitpose.gait.events import (
    HEEL_STRIKE_CHOICES,
    GaitEvent,
    choose_heel_strike_rule,
    detect_events,
    keypoint_noise,
    refine_heel_strikes,
)
from gaitpose.gait.filters import _quiet_nan_warnings, clean_trajectories, fill_gaps, hampel
from gaitpose.gait.lift3d import backproject
from gaitpose.gait.metrics import compute_metrics
from gaitpose.gait.segments import facing_direction, segment_direction, treadmill_segments, walking_segments
from gaitpose.gait.swap import fix_left_right_swaps, swap_scores
from gaitpose.jsonutil import to_jsonable
from gaitpose.skeleton import NUM_KEYPOINTS

__all__ = ["GaitResult", "analyze_gait"]

log = logging.getLogger(__name__)


@dataclass
class GaitResult:
    """Everything the report needs. ``to_dict()`` gives a JSON-serialisable view (NaN -> None)."""

    kpts: np.ndarray  # (T, 21, 2) cleaned, NaN where unknown
    kpts3d: np.ndarray | None  # (T, 21, 3) metres, camera frame, or None
    events: list[GaitEvent]
    metrics: dict
    angles: dict[str, np.ndarray]  # joint_side -> (T,) degrees
    cycles: dict[str, dict]  # joint_side -> {"mean": [101], "std": [101], "n": int}
    segments: list[tuple[int, int]]  # (start, end exclusive) frames
    direction: int  # +1 left-to-right in the image, -1 right-to-left, 0 unknown (dominant over segments)
    swapped_frames: np.ndarray
    units: str  # "m" | "relative"
    warnings: list[str] = field(default_factory=list)
    segment_directions: list[int] = field(default_factory=list)
    fps: float = 0.0
    mode: str = "overground"  # "overground" | "treadmill"
    angles_rejected: dict = field(default_factory=dict)  # see reject_implausible_angles

    @property
    def walking_found(self) -> bool:
        return bool(self.metrics.get("walking_found", False))

    def to_dict(self, *, include_series: bool = False) -> dict:
        """JSON-ready summary; per-frame series (angles, keypoints) only with ``include_series``."""
        out = {
            "fps": self.fps,
            "walking_found": self.walking_found,
            "units": self.units,
            "direction": self.direction,
            "segments": [list(s) for s in self.segments],
            "segment_directions": list(self.segment_directions),
            "swapped_frames": [int(f) for f in self.swapped_frames],
            "events": [e.to_dict() for e in self.events],
            "metrics": self.metrics,
            "cycles": self.cycles,
            "warnings": list(self.warnings),
            "mode": self.mode,
            "angles_rejected": self.angles_rejected,
        }
        if include_series:
            out["angles"] = {k: v.tolist() for k, v in self.angles.items()}
            out["kpts"] = self.kpts.tolist()
        return to_jsonable(out)


def _per_frame_direction(T: int, segments: list[tuple[int, int]], seg_dirs: list[int]) -> np.ndarray:
    """Direction for every frame: its segment's, else the nearest segment's (angles need a sign)."""
    d = np.zeros(T, dtype=np.int64)
    if not segments:
        return d
    centres = np.array([(a + b) / 2 for a, b in segments])
    for t in range(T):
        d[t] = seg_dirs[int(np.argmin(np.abs(centres - t)))]
    for (a, b), s in zip(segments, seg_dirs, strict=False):
        d[a:b] = s
    return d


def _clean_3d(k3: np.ndarray, fps: float) -> np.ndarray:
    """Reject depth jumps in time (a keypoint on a limb edge that hits the background for a frame or
    two) with a Hampel filter, then bridge short gaps; the same rules as for the 2D trajectories."""
    window = max(2, round(0.1 * fps))
    k3 = hampel(k3, window, 3.0, min_dev=0.05, replace="nan")  # 5 cm floor: depth noise is ~1 cm at 2 m
    return fill_gaps(k3, max(1, round(0.12 * fps)))


def _alternation_breaks(events: list[GaitEvent], segments: list[tuple[int, int]]) -> int:
    """Number of consecutive heel strikes by the same foot within a walking segment."""
    n = 0
    for a, b in segments:
        feet = [e.foot for e in events if e.event == "heel_strike" and a <= e.frame < b]
        n += sum(1 for x, y in itertools.pairwise(feet) if x == y)
    return n


def _angle_summary(angles: dict[str, np.ndarray], cycles: dict[str, dict], segments: list[tuple[int, int]]) -> dict:
    """min/max/range/mean per joint: of the cycle-averaged curve when there is a complete cycle.

    That is how clinical reports quote peaks (e.g. peak knee flexion in swing) and averaging over
    cycles suppresses single-frame detector errors; otherwise the 2nd/98th percentiles (and mean)
    of the walking frames are used, for the same robustness.
    """
    out = {}
    mask = np.zeros(next(iter(angles.values())).shape[0], dtype=bool)
    for a, b in segments:
        mask[a:b] = True
    for name, v in angles.items():
        curve = np.array(cycles[name]["mean"], dtype=np.float64)
        n = int(cycles[name]["n"])
        if n > 0 and np.isfinite(curve).any():
            lo, hi, mean = float(np.nanmin(curve)), float(np.nanmax(curve)), float(np.nanmean(curve))
        else:
            w = v[mask & np.isfinite(v)]
            if w.size == 0:
                out[name] = {"min": None, "max": None, "range": None, "mean": None, "n_cycles": 0}
                continue
            lo, hi, mean = float(np.percentile(w, 2)), float(np.percentile(w, 98)), float(w.mean())
        out[name] = {"min": lo, "max": hi, "range": hi - lo, "mean": mean, "n_cycles": n}
    return out


ANGLE_RANGES_SOURCE = (
    "AAOS adult ranges of motion (Greene & Heckman 1994; Norkin & White 2016): hip flexion 120 / extension 30, "
    "knee flexion 135 / hyperextension 10, ankle dorsiflexion 20 / plantarflexion 50 deg"
)


def reject_implausible_angles(
    angles: dict[str, np.ndarray], ranges: dict[str, tuple[float, float]] | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """Set angles outside physiological ranges to NaN; returns (angles, counts).

    Why: an angle no joint can reach (ankle -195, knee -22) is a keypoint error (heel and toe
    swapped, a knee on the wrong leg), and averaging it into a cycle curve or a peak value gives
    a report a clinician could act on. The ranges are :data:`gaitpose.gait.angles.PLAUSIBLE_RANGES_DEG`
    (AAOS ranges of motion, see ``ANGLE_RANGES_SOURCE``), the same ones ``gaitpose evaluate`` uses
    for its implausible-angle share. Counts: samples per joint, frames with at least one angle
    dropped, and frames that had any angle.
    """
    r = dict(PLAUSIBLE_RANGES_DEG if ranges is None else ranges)
    out: dict[str, np.ndarray] = {}
    per: dict[str, int] = {}
    any_bad: np.ndarray | None = None
    any_angle: np.ndarray | None = None
    for name, v in angles.items():
        lo, hi = r[name.split("_")[0]]
        v = np.asarray(v, dtype=np.float64).copy()
        fin = np.isfinite(v)
        bad = fin & ((v < lo) | (v > hi))
        v[bad] = np.nan
        out[name] = v
        per[name] = int(bad.sum())
        any_bad = bad if any_bad is None else any_bad | bad
        any_angle = fin if any_angle is None else any_angle | fin
    counts = {
        "frames": int(any_bad.sum()) if any_bad is not None else 0,
        "frames_with_angles": int(any_angle.sum()) if any_angle is not None else 0,
        "samples": per,
        "ranges_deg": {k: list(v) for k, v in r.items()},
        "source": ANGLE_RANGES_SOURCE,
    }
    return out, counts


def analyze_gait(
    kpts: np.ndarray,
    scores: np.ndarray,
    fps: float,
    *,
    depth_frames: np.ndarray | Sequence[np.ndarray | None] | None = None,
    intrinsics: Mapping[str, float] | None = None,
    height_cm: float | None = None,
    min_score: float = 0.3,
    cutoff_hz: float = 6.0,
    mode: str = "auto",
    treadmill_speed: float | None = None,
    scale_m_per_px: float | None = None,
    refine_heel_strike: bool = True,
    heel_strike_rule: str = "auto",
    reject_implausible: bool = True,
    fix_swaps: bool = True,
    pelvis: np.ndarray | None = None,
    foot_offset_deg: Mapping[str, float] | None = None,
) -> GaitResult:
    """Analyse one person's keypoint trajectories (T, 21, 2) px with scores (T, 21) at ``fps``.

    Result: ``events`` (each with ``foot``, ``event``, ``time_s``), ``walking_found``,
    ``metrics["cadence_steps_per_min"]`` and the rest of :func:`compute_metrics`, angles and
    cycles, ``mode`` ("overground" | "treadmill") and ``angles_rejected`` (see
    :func:`reject_implausible_angles`).

    ``mode="auto"`` looks for overground walking (the pelvis travels) and, where there is none,
    for treadmill walking (the feet cycle while the pelvis stays; :func:`treadmill_segments`);
    "overground" / "treadmill" force one. ``treadmill_speed`` (m/s) gives a treadmill walk's
    speed and step lengths in metres. ``scale_m_per_px``: a known scale (motion capture).
    ``refine_heel_strike``: move Zeni heel strikes to the heel's contact
    (:func:`refine_heel_strikes`) by ``heel_strike_rule``: "landing", "midpoint", "heel_speed" or "auto" (landing
    for steady trajectories such as markers, mid-point for noisy ones such as video keypoints:
    :func:`choose_heel_strike_rule`; the choice and the measured noise are in
    ``metrics["heel_strike_rule"]``). ``fix_swaps``: correct frames where a detector swapped the
    legs' labels (off for labelled motion-capture markers, which do not swap that way and where two
    legs passing each other in the side view must not be "corrected"). ``reject_implausible``: drop
    angles outside physiological ranges (they are counted either way, ``metrics["angles_rejected"]``,
    whose ``dropped`` says which). ``pelvis`` (T, 2, 2): mid-ASIS and mid-PSIS in the keypoints'
    coordinates (motion capture, :attr:`gaitpose.gait.readers.Trajectories.pelvis`); hip flexion is
    then thigh to pelvis, as clinical hip angles are, instead of thigh to trunk line
    (``metrics["hip_angle_reference"]``). ``foot_offset_deg`` ({"left", "right"}: the heel->toe line's tilt
    with the foot flat, from a standing trial, :func:`gaitpose.gait.static.foot_offsets_deg`) is taken off
    the ankle angles (``metrics["ankle_foot_offset_deg"]``). Raises ``ValueError`` only for malformed arrays
    or options; a recording without walking returns a result with ``walking_found`` False, empty events and a warning.
    """
    if mode not in ("auto", "overground", "treadmill"):
        raise ValueError(f"mode must be auto, overground or treadmill, got {mode!r}")
    if heel_strike_rule not in HEEL_STRIKE_CHOICES:
        raise ValueError(f"heel_strike_rule must be one of {', '.join(HEEL_STRIKE_CHOICES)}, got {heel_strike_rule!r}")
    if treadmill_speed is not None and not (0 < treadmill_speed < 10):
        raise ValueError(f"treadmill speed must be in m/s between 0 and 10, got {treadmill_speed}")
    k = np.asarray(kpts, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if k.ndim != 3 or k.shape[1:] != (NUM_KEYPOINTS, 2):
        raise ValueError(f"keypoints must have shape (T, {NUM_KEYPOINTS}, 2), got {k.shape}")
    if s.shape != k.shape[:2]:
        raise ValueError(f"scores must have shape {k.shape[:2]}, got {s.shape}")
    if not fps or fps <= 0 or not np.isfinite(fps):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if pelvis is not None and np.shape(pelvis) != (k.shape[0], 2, 2):
        raise ValueError(f"pelvis must have shape ({k.shape[0]}, 2, 2), got {np.shape(pelvis)}")
    warnings: list[str] = []
    k = k.copy()
    k[~(s >= min_score)] = np.nan

    if fix_swaps:
        k, swapped = fix_left_right_swaps(k, s)
        s = swap_scores(s, swapped)
    else:
        swapped = np.zeros(0, dtype=np.int64)
    noise = keypoint_noise(k)
    rule = choose_heel_strike_rule(noise) if heel_strike_rule == "auto" else heel_strike_rule
    if swapped.size:
        warnings.append(f"left/right legs were swapped by the detector on {swapped.size} frame(s); corrected")
    clean, _valid = clean_trajectories(k, s, fps, min_score=min_score, cutoff_hz=cutoff_hz)

    segments = walking_segments(clean, fps) if mode != "treadmill" else []
    seg_dirs = [segment_direction(clean, seg) for seg in segments]
    walk_mode = "overground"
    if not segments and mode != "overground":
        segments = treadmill_segments(clean, fps)
        seg_dirs = [facing_direction(clean, seg) for seg in segments]
        if segments:
            walk_mode = "treadmill"
            warnings.append("treadmill walking: the feet cycle while the pelvis stays; events relative to the pelvis")
    if segments:
        lengths = np.array([b - a for a, b in segments], dtype=np.float64)
        dom = float(np.sum(lengths * np.array(seg_dirs)))
        direction = int(np.sign(dom))
    else:
        direction = 0
        warnings.append("no walking found: the pelvis never moved steadily for 1 s or more and the feet did not "
                        "cycle in place for 2 s or more (side view needed)")
    events = detect_events(clean, fps, segments, directions=seg_dirs) if segments else []
    if refine_heel_strike and events:
        events = refine_heel_strikes(events, clean, fps, method=rule)  # type: ignore[arg-type]
    if segments and not any(e.event == "heel_strike" for e in events):
        warnings.append("walking found but no heel strikes detected (feet hidden or too few steps)")
    n_break = _alternation_breaks(events, segments)
    if n_break:
        warnings.append(
            f"{n_break} heel strike(s) out of left/right alternation (a missed or extra event); "
            "the steps around them are left out of step metrics"
        )

    kpts3d = None
    if depth_frames is not None:
        if intrinsics is None:
            warnings.append("depth frames given without camera intrinsics; depth ignored")
        else:
            kpts3d = _clean_3d(backproject(clean, depth_frames, intrinsics), fps)
            if not np.isfinite(kpts3d).any():
                warnings.append("no valid depth at the keypoints; depth ignored")
                kpts3d = None
    metrics = compute_metrics(events, clean, fps, kpts3d=kpts3d, height_cm=height_cm, segments=segments,
                              directions=seg_dirs, scale_m_per_px=scale_m_per_px,
                              treadmill=walk_mode == "treadmill", treadmill_speed=treadmill_speed)
    metrics["mode"] = walk_mode
    metrics["heel_strike_rule"] = {
        "rule": rule if refine_heel_strike else "zeni",
        "chosen": "auto" if heel_strike_rule == "auto" else "given",
        "keypoint_noise_leg": None if not np.isfinite(noise) else round(noise, 5),
    }
    if walk_mode == "treadmill" and treadmill_speed is None and segments and metrics["units"] == "relative":
        warnings.append("treadmill: pass the belt speed (--treadmill-speed m/s) for speed and step length in metres")
    units = metrics["units"]
    if units == "relative" and segments:
        warnings.append(
            "no depth and no subject height: lengths and speed are in leg lengths (relative), not metres"
        )

    per_frame_dir = _per_frame_direction(k.shape[0], segments, seg_dirs)
    pelvis_forward = None
    if pelvis is not None:  # cleaned like the keypoints (same gap filling and low-pass), then PSIS -> ASIS
        pel = np.asarray(pelvis, dtype=np.float64)
        pel, _ = clean_trajectories(pel, np.isfinite(pel).all(-1).astype(np.float64), fps, cutoff_hz=cutoff_hz)
        pelvis_forward = pel[:, 0] - pel[:, 1]
    metrics["hip_angle_reference"] = "pelvis" if pelvis is not None else "trunk"
    with _quiet_nan_warnings():
        angles = sagittal_angles(clean, per_frame_dir, pelvis_forward=pelvis_forward)
    for side, off in (foot_offset_deg or {}).items():
        angles[f"ankle_{side}"] = angles[f"ankle_{side}"] - float(off)
    metrics["ankle_foot_offset_deg"] = dict(foot_offset_deg) if foot_offset_deg else None
    dropped, rejected = reject_implausible_angles(angles)
    rejected["dropped"] = bool(reject_implausible)
    if reject_implausible:
        angles = dropped
    if rejected["frames"]:
        r = rejected["ranges_deg"]
        warnings.append(
            f"{rejected['frames']} of {rejected['frames_with_angles']} frame(s) had a joint angle outside "
            f"physiological ranges (hip {r['hip'][0]:g}..{r['hip'][1]:g}, knee {r['knee'][0]:g}..{r['knee'][1]:g}, "
            f"ankle {r['ankle'][0]:g}..{r['ankle'][1]:g} deg; AAOS): "
            + ("those angles are left out" if reject_implausible else "kept (rejection off for this input)"))
    metrics["angles_rejected"] = rejected
    cycles: dict[str, dict] = {}
    for name in JOINTS:
        side = name.split("_")[1]
        hs = [e.time_s * fps for e in events if e.foot == side and e.event == "heel_strike"]
        mean, std, n = normalize_cycles(angles[name], hs)
        cycles[name] = to_jsonable({"mean": mean.tolist(), "std": std.tolist(), "n": int(n)})
    with _quiet_nan_warnings():
        metrics["angles"] = to_jsonable(_angle_summary(angles, cycles, segments)) if segments else {}
    if segments and min(c["n"] for c in cycles.values()) == 0:
        warnings.append("fewer than one complete gait cycle per leg: cycle curves are incomplete")
    for w in warnings:
        log.info("gait: %s", w)
    return GaitResult(
        kpts=clean,
        kpts3d=kpts3d,
        events=events,
        metrics=metrics,
        angles=angles,
        cycles=cycles,
        segments=segments,
        direction=direction,
        swapped_frames=swapped,
        units=units,
        warnings=warnings,
        segment_directions=seg_dirs,
        fps=float(fps),
        mode=walk_mode,
        angles_rejected=rejected,
    )
