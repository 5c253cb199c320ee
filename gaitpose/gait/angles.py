"""Sagittal joint angles and their normalisation to the gait cycle.

Conventions (those of clinical gait reports, e.g. Perry / Vicon Plug-in Gait sagittal plots):
- hip flexion: angle of the thigh (hip->knee) from the trunk line extended downwards
  (mid-shoulder->mid-hip); positive when the thigh is in front of the trunk. Where the pelvis's own
  orientation is known (motion capture with ASIS and PSIS markers, ``pelvis_forward``), from the
  pelvis's downward axis instead (perpendicular to the PSIS->ASIS line), which is the clinical
  definition (thigh relative to pelvis, as Plug-in Gait and the reference curves use);
- knee flexion: 180 deg minus the thigh/shank angle, so 0 = straight, positive = flexed,
  negative = hyperextended;
- ankle dorsiflexion: foot (heel->toe) against the shank (knee->ankle), 0 at a right angle,
  positive when the toes come up towards the shin (dorsiflexion), negative in plantarflexion.

Angles are signed with the walking direction (image x mirrored for right-to-left walking, image
y flipped to point up), so the same movement gives the same value whichever way the subject
walks. They are 2D projections: valid for a side view, increasingly wrong as the subject walks
towards or away from the camera.
"""

from __future__ import annotations

import itertools

import numpy as np

from gaitpose.skeleton import INDEX

__all__ = ["JOINTS", "PLAUSIBLE_RANGES_DEG", "normalize_cycles", "sagittal_angles", "signed_angle_deg"]

JOINTS: tuple[str, ...] = ("hip_left", "hip_right", "knee_left", "knee_right", "ankle_left", "ankle_right")

PLAUSIBLE_RANGES_DEG: dict[str, tuple[float, float]] = {"hip": (-30.0, 120.0), "knee": (-10.0, 135.0),
                                                        "ankle": (-50.0, 20.0)}
"""Physiological limits of the angles above, in degrees (negative: extension, hyperextension,
plantarflexion): the adult ranges of motion of the AAOS (Greene & Heckman, The Clinical Measurement
of Joint Motion, American Academy of Orthopaedic Surgeons 1994): hip flexion 120, extension 30;
knee flexion 135 with up to 10 of hyperextension (Norkin & White, Measurement of Joint Motion, 5th
ed. 2016); ankle dorsiflexion 20, plantarflexion 50. An angle outside them is a keypoint error."""


def signed_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Counter-clockwise angle from vectors ``a`` to ``b`` (..., 2) in degrees, in (-180, 180]."""
    cross = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    dot = (a * b).sum(-1)
    return np.degrees(np.arctan2(cross, dot))


def _mid(k: np.ndarray, a: str, b: str) -> np.ndarray:
    pa, pb = k[:, INDEX[a]], k[:, INDEX[b]]
    return np.where(np.isfinite(pa) & np.isfinite(pb), (pa + pb) / 2, np.where(np.isfinite(pa), pa, pb))


def sagittal_angles(kpts: np.ndarray, direction: int | np.ndarray,
                    pelvis_forward: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-frame hip/knee/ankle sagittal angles in degrees; NaN where a point or the direction is missing.

    ``direction`` is +1 (walking left-to-right in the image), -1, or a per-frame array of those
    (0 = unknown gives NaN for that frame). ``pelvis_forward`` (T, 2), in the keypoints' image
    coordinates: the mid-PSIS -> mid-ASIS vector; when given, hip flexion is measured from the
    pelvis (NaN where it is missing) instead of the trunk line. Why: the trunk leans and bends
    independently of the pelvis, and clinical hip flexion (the reference curves) is thigh to pelvis;
    the trunk line is what video offers, the pelvis markers what a motion-capture trial offers.
    """
    k = np.asarray(kpts, dtype=np.float64)
    T = k.shape[0]
    d = np.broadcast_to(np.asarray(direction, dtype=np.float64), (T,)).copy()
    d[d == 0] = np.nan
    # body frame: x forward (walking direction), y up
    b = np.stack([k[..., 0] * d[:, None], -k[..., 1]], axis=-1)
    hip_mid = _mid(b, "left_hip", "right_hip")
    sh_mid = _mid(b, "left_shoulder", "right_shoulder")
    proximal_down = hip_mid - sh_mid  # the hip angle's reference: trunk line, or pelvis below
    if pelvis_forward is not None:
        pf = np.asarray(pelvis_forward, dtype=np.float64)
        fwd = np.stack([pf[:, 0] * d, -pf[:, 1]], axis=-1)  # body frame, like the keypoints
        proximal_down = np.stack([fwd[:, 1], -fwd[:, 0]], axis=-1)  # forward turned 90 deg clockwise: down
    out: dict[str, np.ndarray] = {}
    for side in ("left", "right"):
        hip, knee, ankle = (b[:, INDEX[f"{side}_{j}"]] for j in ("hip", "knee", "ankle"))
        heel, toe = b[:, INDEX[f"{side}_heel"]], b[:, INDEX[f"{side}_toe"]]
        thigh = knee - hip
        shank = ankle - knee
        foot = toe - heel
        out[f"hip_{side}"] = signed_angle_deg(proximal_down, thigh)
        out[f"knee_{side}"] = -signed_angle_deg(thigh, shank)
        out[f"ankle_{side}"] = signed_angle_deg(shank, foot) - 90.0
    for name, v in out.items():
        v[~np.isfinite(v)] = np.nan
        out[name] = v
    return {name: out[name] for name in JOINTS}


def normalize_cycles(
    signal: np.ndarray,
    heel_strike_frames: np.ndarray | list[float],
    n_points: int = 101,
    *,
    max_nan_frac: float = 0.2,
    max_cycle_ratio: float = 1.6,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Time-normalise a signal to 0-100 % of the gait cycle; returns (mean, std, n_cycles).

    Each cycle runs from one heel strike to the next of the same foot (frames may be
    fractional). Cycles with more than ``max_nan_frac`` missing samples, or lasting more than
    ``max_cycle_ratio`` times the median cycle (a missed heel strike or a pause), are skipped,
    since averaging them would blur the curve. Missing samples inside a kept cycle are linearly
    interpolated. With no usable cycle the mean and std are all NaN and n_cycles is 0.
    """
    y = np.asarray(signal, dtype=np.float64)
    hs = np.sort(np.asarray(heel_strike_frames, dtype=np.float64))
    t = np.arange(y.size, dtype=np.float64)
    curves = []
    if hs.size >= 2:
        durations = np.diff(hs)
        med = float(np.median(durations))
        for a, b in itertools.pairwise(hs):
            if b - a <= 1 or b - a > max_cycle_ratio * med:
                continue
            lo, hi = int(np.floor(a)), min(int(np.ceil(b)), y.size - 1)
            if lo < 0 or hi <= lo:
                continue
            seg_t, seg_y = t[lo : hi + 1], y[lo : hi + 1]
            ok = np.isfinite(seg_y)
            if ok.sum() < 2 or (1 - ok.mean()) > max_nan_frac:
                continue
            grid = np.linspace(a, b, n_points)
            curves.append(np.interp(grid, seg_t[ok], seg_y[ok]))
    if not curves:
        return np.full(n_points, np.nan), np.full(n_points, np.nan), 0
    c = np.stack(curves)
    return c.mean(axis=0), c.std(axis=0), len(curves)
