"""A synthetic side-view walker with exactly known events, angles and lengths.

Why: gait analytics must be checked against ground truth, and video with motion-capture truth
cannot ship with the tests. The walker is driven by joint angles (hip, knee, ankle) that are
smooth periodic functions of the gait phase, posed with forward kinematics on Winter's segment
proportions; the pelvis moves at constant speed and bobs so that the lowest foot point touches
the floor. Hip and shank angles peak exactly at phase 0 with zero slope, so heel strike (the
Zeni maximum) is at phase 0 by construction; toe-off (the Zeni minimum) is located numerically
on a fine grid. Also useful for demos of the analysis without a camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gaitpose.skeleton import INDEX, NUM_KEYPOINTS

__all__ = ["SyntheticWalk", "synthetic_walk"]

# Winter's proportions of stature H
_THIGH, _SHANK, _ANKLE_H, _HEEL_BACK, _FOOT = 0.245, 0.246, 0.039, 0.03, 0.152
_HIP_TO_SHOULDER, _HIP_TO_EYE, _HIP_TO_NOSE = 0.288, 0.406, 0.38


@dataclass
class SyntheticWalk:
    kpts: np.ndarray  # (T, 21, 2) image pixels
    scores: np.ndarray  # (T, 21)
    fps: float
    direction: int
    height_px: float
    heel_strikes: dict[str, np.ndarray] = field(default_factory=dict)  # frames (float)
    toe_offs: dict[str, np.ndarray] = field(default_factory=dict)
    angles: dict[str, np.ndarray] = field(default_factory=dict)  # true per-frame angles, degrees
    period_s: float = 1.1


def _warp(phi: np.ndarray, frac: float) -> np.ndarray:
    """Monotonic phase warp putting phase pi at ``frac`` of the cycle (asymmetric stance/swing)."""
    p = np.mod(phi, 2 * np.pi) / (2 * np.pi)
    return np.where(p < frac, np.pi * p / frac, np.pi + np.pi * (p - frac) / (1 - frac))


def _joint_angles(phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hip flexion, knee flexion, ankle dorsiflexion (deg) as functions of the phase (rad).

    All are functions of cos(warped phase), so they are stationary at heel strike (phase 0);
    the hip is most extended at 60 % of the cycle and the knee most flexed at 72 %, which puts
    toe off near 62 %, as in adult walking.
    """
    hip = 10.0 + 20.0 * np.cos(_warp(phi, 0.6))
    knee = 55.0 * ((1.0 - np.cos(_warp(phi, 0.72))) / 2.0) ** 2
    ankle = 5.0 - 10.0 * (1.0 - np.cos(_warp(phi, 0.6))) / 2.0
    return hip, knee, ankle


def _leg(phi: np.ndarray, H: float) -> dict[str, np.ndarray]:
    """Knee, ankle, heel, toe relative to the hip in a body frame (x forward, y up), (N, 2) each."""
    hip, knee, ankle = (np.radians(a) for a in _joint_angles(phi))
    thigh = np.stack([np.sin(hip), -np.cos(hip)], -1)
    psi = hip - knee  # shank angle from vertical, forward positive
    shank = np.stack([np.sin(psi), -np.cos(psi)], -1)
    foot = np.stack([np.cos(psi + ankle), np.sin(psi + ankle)], -1)  # shank rotated by 90 deg + dorsiflexion
    knee_p = _THIGH * H * thigh
    ankle_p = knee_p + _SHANK * H * shank
    heel_p = ankle_p + _ANKLE_H * H * shank - _HEEL_BACK * H * foot
    toe_p = heel_p + _FOOT * H * foot
    return {"knee": knee_p, "ankle": ankle_p, "heel": heel_p, "toe": toe_p}


def _inside(frames: np.ndarray, n_frames: int) -> np.ndarray:
    return frames[(frames >= 0) & (frames <= n_frames - 1)]


def synthetic_walk(
    n_frames: int = 180,
    fps: float = 30.0,
    *,
    direction: int = 1,
    period_s: float = 1.1,
    height_px: float = 340.0,
    speed_px_s: float | None = None,
    first_hs_s: float = 0.2,
    x0: float | None = None,
    floor_y: float = 420.0,
    standing: bool = False,
) -> SyntheticWalk:
    """Build a walker; ``standing=True`` gives someone swaying on the spot (no walking)."""
    H = float(height_px)
    t = np.arange(n_frames) / fps
    speed = (0.75 * H / period_s) if speed_px_s is None else speed_px_s
    if x0 is None:
        x0 = 50.0 if direction > 0 else 50.0 + speed * n_frames / fps
    legs = {}
    phase0 = {"left": first_hs_s, "right": first_hs_s + period_s / 2}
    for side, t0 in phase0.items():
        phi = 2 * np.pi * (t - t0) / period_s
        legs[side] = _leg(phi, H) if not standing else _leg(np.full_like(t, np.pi / 2) + 0.05 * np.sin(t), H)
    low = np.minimum.reduce([legs[s][p][:, 1] for s in legs for p in ("heel", "toe")])
    hip_up = -low  # hip height above the floor
    pel_x = x0 + (0.0 if standing else direction * speed) * t + (2.0 * np.sin(t) if standing else 0.0)
    k = np.full((n_frames, NUM_KEYPOINTS, 2), np.nan)

    def put(name: str, fwd: np.ndarray, up: np.ndarray) -> None:
        k[:, INDEX[name], 0] = pel_x + direction * fwd
        k[:, INDEX[name], 1] = floor_y - (hip_up + up)

    zero = np.zeros(n_frames)
    for side, off in (("left", -1.0), ("right", 1.0)):
        put(f"{side}_hip", zero + off, zero)
        for j, p in legs[side].items():
            put(f"{side}_{j}", p[:, 0] + off, p[:, 1])
        put(f"{side}_shoulder", zero + off, zero + _HIP_TO_SHOULDER * H)
        put(f"{side}_elbow", zero + 0.02 * H + off, zero + (_HIP_TO_SHOULDER - 0.186) * H)
        put(f"{side}_wrist", zero + 0.03 * H + off, zero + (_HIP_TO_SHOULDER - 0.332) * H)
        put(f"{side}_eye", zero + 0.06 * H + off, zero + _HIP_TO_EYE * H)
        put(f"{side}_ear", zero + 0.0 + off, zero + _HIP_TO_EYE * H)
    put("nose", zero + 0.08 * H, zero + _HIP_TO_NOSE * H)
    scores = np.full((n_frames, NUM_KEYPOINTS), 0.9)

    # ground truth: heel strikes at phase 0; toe offs = minimum of toe-minus-pelvis, on a fine grid
    hs, to, angles = {}, {}, {}
    fine = np.linspace(0.0, period_s, 20001)[:-1]
    toe_rel = _leg(2 * np.pi * fine / period_s, H)["toe"][:, 0]
    to_phase_s = float(fine[np.argmin(toe_rel)])
    for side, t0 in phase0.items():
        ks = np.arange(-2, int(n_frames / fps / period_s) + 3)
        hs[side] = _inside((t0 + ks * period_s) * fps, n_frames)
        to[side] = _inside((t0 + to_phase_s + ks * period_s) * fps, n_frames)
        hip, knee, ankle = _joint_angles(2 * np.pi * (t - t0) / period_s)
        angles[f"hip_{side}"], angles[f"knee_{side}"], angles[f"ankle_{side}"] = hip, knee, ankle
    if standing:
        hs, to = {"left": np.zeros(0), "right": np.zeros(0)}, {"left": np.zeros(0), "right": np.zeros(0)}
    return SyntheticWalk(k, scores, fps, direction, H, hs, to, angles, period_s)
