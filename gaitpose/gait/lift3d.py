"""Lift 2D keypoints to 3D camera coordinates with an aligned depth image (RealSense-style).

With depth, lengths come in metres without any anthropometric guess. A keypoint's depth is the
median of the valid (non-zero) depths in a small window around it: depth sensors leave holes
(zeros) exactly at edges and on dark or shiny surfaces, and the keypoint itself sits on a limb
edge, so a single pixel is unreliable. The depth image must be aligned to the colour image the
keypoints come from, and ``intrinsics`` are that image's pinhole parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["backproject", "robust_depth"]


def robust_depth(depth_mm: np.ndarray, u: float, v: float, window: int = 5) -> float:
    """Median of the non-zero depths in a ``window`` x ``window`` patch centred on pixel (u, v); mm or nan."""
    if not (np.isfinite(u) and np.isfinite(v)):
        return float("nan")
    h, w = depth_mm.shape[:2]
    cu, cv = round(u), round(v)
    r = max(0, window // 2)
    u0, u1 = max(0, cu - r), min(w, cu + r + 1)
    v0, v1 = max(0, cv - r), min(h, cv + r + 1)
    if u0 >= u1 or v0 >= v1:
        return float("nan")
    patch = np.asarray(depth_mm[v0:v1, u0:u1], dtype=np.float64)
    patch = patch[np.isfinite(patch) & (patch > 0)]
    return float(np.median(patch)) if patch.size else float("nan")


def backproject(
    kpts: np.ndarray,
    depth_frames: np.ndarray | Sequence[np.ndarray | None],
    intrinsics: Mapping[str, float],
    *,
    window: int = 5,
    depth_scale_m: float = 0.001,
) -> np.ndarray:
    """Pixel keypoints (T, K, 2) + depth frames (T, H, W) -> camera-frame points (T, K, 3) in metres.

    X = (u - cx) * Z / fx, Y = (v - cy) * Z / fy, Z = depth * ``depth_scale_m`` (depth in mm by
    default). A ``None`` depth frame, a missing keypoint or a hole gives NaN.
    """
    k = np.asarray(kpts, dtype=np.float64)
    if k.ndim != 3 or k.shape[-1] != 2:
        raise ValueError(f"backproject: kpts must be (T, K, 2), got {k.shape}")
    if len(depth_frames) != k.shape[0]:
        raise ValueError(f"backproject: {len(depth_frames)} depth frames for {k.shape[0]} keypoint frames")
    try:
        fx, fy, cx, cy = (float(intrinsics[n]) for n in ("fx", "fy", "cx", "cy"))
    except KeyError as exc:
        raise ValueError(f"backproject: intrinsics lack {exc.args[0]!r} (need fx, fy, cx, cy)") from None
    out = np.full((*k.shape[:2], 3), np.nan)
    for t in range(k.shape[0]):
        dep = depth_frames[t]
        if dep is None:
            continue
        dep = np.asarray(dep)
        for j in range(k.shape[1]):
            u, v = k[t, j]
            z = robust_depth(dep, u, v, window) * depth_scale_m
            if np.isfinite(z):
                out[t, j] = ((u - cx) * z / fx, (v - cy) * z / fy, z)
    return out
