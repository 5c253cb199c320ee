"""Issue-4 check: does the student's gait agree with the teacher's when the same gait code reads both?

There is no motion-capture ground truth for the shipped videos, so the reference is the teacher
(MediaPipe on subject crops, as labelled) run through *the same* ``analyze_gait``: any difference
then comes from the keypoints, not from the event detector. Targets: cadence within 3 % and each
heel strike within 2 frames of the teacher's (matched to the nearest teacher heel strike of the
same foot).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.teacher_vs_analyze import KeypointTrack

log = logging.getLogger(__name__)

CADENCE_TARGET_PCT = 3.0
HEEL_STRIKE_TARGET_FRAMES = 2

# Walking segments of the known clips (frame ranges, end exclusive), from ../shared/data/README.md
# and tests/data: the woman's side-view walk.
KNOWN_SEGMENTS = {"sports2d_demo": (40, 200), "sports2d_walk": (10, 170)}


def default_segment(video: str | os.PathLike[str], num_frames: int) -> tuple[int, int]:
    """The walking segment of a known clip, else the whole video."""
    return KNOWN_SEGMENTS.get(Path(video).stem, (0, num_frames))


@dataclass
class GaitSummary:
    cadence_spm: float | None
    heel_strikes: list[dict[str, Any]]  # foot, frame, time_s
    n_events: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CadenceComparison:
    segment: tuple[int, int]
    student: GaitSummary
    teacher: GaitSummary
    cadence_diff_pct: float | None
    heel_strike_diffs: list[dict[str, Any]] = field(default_factory=list)  # foot, student_frame, teacher_frame, diff
    max_abs_frame_diff: int | None = None
    cadence_pass: bool = False
    heel_strike_pass: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["segment"] = list(self.segment)
        d["targets"] = {"cadence_pct": CADENCE_TARGET_PCT, "heel_strike_frames": HEEL_STRIKE_TARGET_FRAMES}
        return d


def slice_track(track: KeypointTrack, segment: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (T, 21, 2) with NaN where missing and scores (T, 21) for frames [start, stop) of the segment.

    Frames the track does not cover become missing, so both tracks are analysed on the same time axis.
    """
    start, stop = segment
    t = stop - start
    kp = np.full((t, track.keypoints.shape[1], 2), np.nan, np.float32)
    sc = np.zeros((t, track.keypoints.shape[1]), np.float32)
    for i, f in enumerate(track.frame_index):
        j = int(f) - start
        if 0 <= j < t:
            ok = (track.scores[i] > 0) & np.isfinite(track.keypoints[i]).all(-1)
            kp[j] = np.where(ok[:, None], track.keypoints[i], np.nan)
            sc[j] = np.where(ok, track.scores[i], 0.0)
    return kp, sc


def summarize_gait(kp: np.ndarray, sc: np.ndarray, fps: float, frame_offset: int) -> GaitSummary:
    """Cadence and heel strikes (frames on the video's axis) from ``analyze_gait``."""
    from gaitpose.gait.analysis import analyze_gait

    res = analyze_gait(kp, sc, fps)
    cad = res.metrics.get("cadence_steps_per_min")
    cad = None if cad is None or not np.isfinite(cad) else float(cad)
    hs = [{"foot": e.foot, "frame": int(e.frame) + frame_offset, "time_s": round(float(e.time_s), 4)}
          for e in res.events if e.event == "heel_strike"]
    return GaitSummary(cad, hs, len(res.events))


def match_heel_strikes(student: list[dict[str, Any]], teacher: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each student heel strike against the nearest teacher heel strike of the same foot."""
    out = []
    for s in student:
        cands = [t["frame"] for t in teacher if t["foot"] == s["foot"]]
        if not cands:
            out.append({"foot": s["foot"], "student_frame": s["frame"], "teacher_frame": None, "diff": None})
            continue
        t = min(cands, key=lambda f: abs(f - s["frame"]))
        out.append({"foot": s["foot"], "student_frame": s["frame"], "teacher_frame": t, "diff": s["frame"] - t})
    return out


def compare_tracks(student: KeypointTrack, teacher: KeypointTrack, segment: tuple[int, int],
                   fps: float | None = None) -> CadenceComparison:
    """Run the same gait code on both tracks over ``segment`` and compare cadence and heel strikes."""
    fps = float(fps or student.fps or teacher.fps or 30.0)
    s_kp, s_sc = slice_track(student, segment)
    t_kp, t_sc = slice_track(teacher, segment)
    s_sum = summarize_gait(s_kp, s_sc, fps, segment[0])
    t_sum = summarize_gait(t_kp, t_sc, fps, segment[0])
    diff = None
    if s_sum.cadence_spm is not None and t_sum.cadence_spm:
        diff = 100.0 * (s_sum.cadence_spm - t_sum.cadence_spm) / t_sum.cadence_spm
    matches = match_heel_strikes(s_sum.heel_strikes, t_sum.heel_strikes)
    diffs = [abs(m["diff"]) for m in matches if m["diff"] is not None]
    unmatched_teacher = _unmatched(t_sum.heel_strikes, matches)
    max_diff = max(diffs) if diffs else None
    notes = []
    if not s_sum.heel_strikes:
        notes.append("student: no heel strikes detected")
    if not t_sum.heel_strikes:
        notes.append("teacher: no heel strikes detected")
    if unmatched_teacher:
        notes.append(f"{unmatched_teacher} teacher heel strike(s) have no student heel strike within 2 frames")
    hs_pass = bool(diffs) and max_diff is not None and max_diff <= HEEL_STRIKE_TARGET_FRAMES \
        and len(diffs) == len(matches) and unmatched_teacher == 0
    return CadenceComparison(
        segment=segment, student=s_sum, teacher=t_sum, cadence_diff_pct=diff, heel_strike_diffs=matches,
        max_abs_frame_diff=max_diff, cadence_pass=diff is not None and abs(diff) <= CADENCE_TARGET_PCT,
        heel_strike_pass=hs_pass, note="; ".join(notes),
    )


def _unmatched(teacher: list[dict[str, Any]], matches: list[dict[str, Any]]) -> int:
    """Teacher heel strikes that no student heel strike of the same foot lies within the target of."""
    n = 0
    for t in teacher:
        near = [m for m in matches if m["foot"] == t["foot"] and m["diff"] is not None
                and abs(m["student_frame"] - t["frame"]) <= HEEL_STRIKE_TARGET_FRAMES]
        n += not near
    return n
