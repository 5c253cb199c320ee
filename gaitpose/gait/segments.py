"""Walking direction and walking segments, from the pelvis's travel (or the feet, on a treadmill).

The gait events (:mod:`gaitpose.gait.events`) are found inside these segments: standing,
turning and sitting produce no segment and so no events. Speeds are in leg lengths per second,
so nothing needs calibration or a known distance to the camera. Image x grows to the right, so
direction +1 means walking left-to-right in the image.
"""

from __future__ import annotations

import itertools

import numpy as np

from gaitpose.gait.dsp import maximum_filter1d, minimum_filter1d, uniform_filter1d
from gaitpose.gait.filters import fill_gaps, finite_runs
from gaitpose.gait.swap import leg_length_px
from gaitpose.skeleton import INDEX

__all__ = [
    "facing_direction",
    "pelvis",
    "segment_direction",
    "treadmill_segments",
    "walking_direction",
    "walking_segments",
]

def pelvis(kpts: np.ndarray) -> np.ndarray:
    """Mid-hip (T, 2); falls back to the single visible hip (they overlap in a side view)."""
    k = np.asarray(kpts, dtype=np.float64)
    hips = k[:, [INDEX["left_hip"], INDEX["right_hip"]]]
    out = np.full((k.shape[0], 2), np.nan)
    ok = np.isfinite(hips).all(-1)
    n = ok.sum(axis=1)
    has = n > 0
    out[has] = (np.where(ok[..., None], hips, 0.0).sum(axis=1)[has]) / n[has, None]
    return out


def _smoothed_velocity_x(kpts: np.ndarray, fps: float, window_s: float = 0.5) -> np.ndarray:
    """Pelvis horizontal velocity (px/s), averaged over ``window_s`` to remove the in-stride sway."""
    px = fill_gaps(pelvis(kpts)[:, 0], max(1, round(0.5 * fps)))
    v = np.full_like(px, np.nan)
    for s, e in finite_runs(np.isfinite(px)):
        if e - s >= 2:
            v[s:e] = np.gradient(px[s:e]) * fps
            w = max(1, round(window_s * fps) | 1)
            v[s:e] = uniform_filter1d(v[s:e], size=min(w, e - s), mode="nearest")
    return v


def walking_direction(
    kpts: np.ndarray, fps: float = 30.0, segments: list[tuple[int, int]] | None = None
) -> np.ndarray:
    """Walking direction: +1 (left-to-right in the image), -1, or 0 (unknown / standing).

    Without ``segments``: one value per frame (T,), the sign of the smoothed pelvis horizontal
    velocity, 0 where the pelvis is missing. With ``segments``: one value per segment, the sign
    of the pelvis's net displacement over it.
    """
    if segments is not None:
        return np.array([segment_direction(kpts, s) for s in segments], dtype=np.int64)
    v = _smoothed_velocity_x(kpts, fps)
    out = np.zeros(v.shape, dtype=np.int64)
    ok = np.isfinite(v)
    out[ok] = np.sign(v[ok]).astype(np.int64)
    return out


def segment_direction(kpts: np.ndarray, segment: tuple[int, int]) -> int:
    """Sign of the pelvis's net horizontal displacement over ``segment`` (start, end exclusive)."""
    px = pelvis(kpts)[segment[0] : segment[1], 0]
    px = px[np.isfinite(px)]
    if px.size < 2:
        return 0
    q = max(1, px.size // 10)
    return int(np.sign(np.median(px[-q:]) - np.median(px[:q])))


def walking_segments(
    kpts: np.ndarray,
    fps: float,
    *,
    min_speed_leg_per_s: float = 0.15,
    min_duration_s: float = 1.0,
) -> list[tuple[int, int]]:
    """Frame ranges ``(start, end)`` (end exclusive) where the subject walks steadily.

    Walking = smoothed pelvis horizontal speed of at least ``min_speed_leg_per_s`` leg lengths
    per second (0.15 leg/s is ~0.13 m/s, far below even pathological gait and far above the sway
    of someone standing) without changing direction, for at least ``min_duration_s`` (about one
    stride). Speed is relative to body size so it needs neither calibration nor a known distance
    to the camera.
    """
    k = np.asarray(kpts, dtype=np.float64)
    leg = leg_length_px(k)
    if not np.isfinite(leg) or leg <= 0 or k.shape[0] < 3:
        return []
    v = _smoothed_velocity_x(k, fps)
    moving = np.isfinite(v) & (np.abs(v) >= min_speed_leg_per_s * leg)
    sign = np.sign(np.nan_to_num(v))
    min_len = max(3, round(min_duration_s * fps))
    out = []
    for s, e in finite_runs(moving):
        # split where the direction flips (a turn at speed too short to dip below the threshold)
        cuts = [s, *(s + 1 + np.flatnonzero(np.diff(sign[s:e]) != 0)).tolist(), e]
        for a, b in itertools.pairwise(cuts):
            if b - a >= min_len:
                out.append((int(a), int(b)))
    return out


def facing_direction(kpts: np.ndarray, segment: tuple[int, int]) -> int:
    """Which way the subject faces over ``segment``: sign of the median heel-to-toe x of both feet.

    The feet point forwards whether or not the body travels, so this gives the walking direction
    on a treadmill, where the pelvis stays put. 0 when no foot is seen.
    """
    a, b = segment
    k = np.asarray(kpts, dtype=np.float64)[a:b]
    dx = np.concatenate([k[:, INDEX[f"{s}_toe"], 0] - k[:, INDEX[f"{s}_heel"], 0] for s in ("left", "right")])
    dx = dx[np.isfinite(dx)]
    return int(np.sign(np.median(dx))) if dx.size >= 3 else 0


def treadmill_segments(
    kpts: np.ndarray,
    fps: float,
    *,
    max_speed_leg_per_s: float = 0.15,
    min_feet_range_leg: float = 0.3,
    window_s: float = 1.5,
    min_duration_s: float = 2.0,
) -> list[tuple[int, int]]:
    """Frame ranges where the feet cycle while the pelvis stays: walking on a treadmill.

    Feet cycling: over every ``window_s`` (about one stride) the distance between the ankles
    along x spans at least ``min_feet_range_leg`` leg lengths (a step is ~0.7 leg lengths at slow
    walking; someone standing or shifting weight stays far below) and changes sign at least twice
    (the feet pass each other). Pelvis staying: smoothed horizontal speed under
    ``max_speed_leg_per_s`` (the threshold :func:`walking_segments` uses for walking). Runs
    shorter than ``min_duration_s`` (less than about two strides) are dropped.
    """
    k = np.asarray(kpts, dtype=np.float64)
    leg = leg_length_px(k)
    T = k.shape[0]
    if not np.isfinite(leg) or leg <= 0 or T < 3:
        return []
    v = _smoothed_velocity_x(k, fps)
    still = np.isfinite(v) & (np.abs(v) < max_speed_leg_per_s * leg)
    r = fill_gaps(k[:, INDEX["left_ankle"], 0] - k[:, INDEX["right_ankle"], 0], max(1, round(0.12 * fps)))
    ok = np.isfinite(r)
    w = max(3, round(window_s * fps))
    cycling = np.zeros(T, dtype=bool)
    for s, e in finite_runs(ok):
        if e - s < w:
            continue
        seg = r[s:e]
        span = maximum_filter1d(seg, w, mode="nearest") - minimum_filter1d(seg, w, mode="nearest")
        centred = seg - np.median(seg)
        cross = np.zeros(e - s)
        cross[1:] = np.diff(np.sign(centred)) != 0
        n_cross = uniform_filter1d(cross, w, mode="nearest") * w
        cycling[s:e] = (span >= min_feet_range_leg * leg) & (n_cross >= 1.5)
    out = []
    for s, e in finite_runs(cycling & still):
        if e - s >= max(3, round(min_duration_s * fps)):
            out.append((int(s), int(e)))
    return out
