"""Colour-depth pairing for the analysis: one depth map per analysed colour frame, in colour pixels."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["depth_for_frames"]


def depth_for_frames(rec: Any, times_s: np.ndarray, warnings: list[str]) -> tuple[list | None, dict | None]:
    """Depth frames paired to every colour frame (registered into the colour camera) and colour intrinsics.

    ``rec`` is an open recording with depth (``gaitpose.io.open_recording``); ``times_s`` the
    colour frames' times. Why a warning and not an error when depth cannot be used: the 2-D
    analysis is still valid, only lengths stay relative. Appends the reason to ``warnings`` and
    returns ``(None, None)`` then.
    """
    from gaitpose.io.sync import can_register, pair_nearest, register_depth

    intr = dict(getattr(rec, "intrinsics", {}) or {})
    color_cam = intr.get("color")
    if not color_cam:
        warnings.append("depth given but the recording has no colour intrinsics; lengths are not in metres")
        return None, None
    idx, _err, report = pair_nearest(times_s * 1000.0, rec.depth_timestamps())
    need = {int(j): [] for j in idx if j >= 0}
    for i, j in enumerate(idx):
        if j >= 0:
            need[int(j)].append(i)
    out: list[np.ndarray | None] = [None] * len(times_s)
    registered = can_register(intr)
    cw, ch = int(color_cam.get("width", 0)), int(color_cam.get("height", 0))
    if not registered and rec.depth_size != (cw, ch):
        warnings.append("depth is not registered to colour and no extrinsics are known; lengths are not in metres")
        return None, None
    for d in rec.depth_frames():
        if d.index not in need:
            continue
        depth = d.depth
        if registered and (depth.shape[1], depth.shape[0]) == (intr["depth"]["width"], intr["depth"]["height"]):
            e = intr["depth_to_color"]
            depth = register_depth(depth, intr["depth"], color_cam, e.get("rotation"), e.get("translation_m"))
        for i in need[d.index]:
            out[i] = depth
    if report.dropped:
        warnings.append(f"{report.dropped} of {report.n_color} colour frames had no depth frame within "
                        f"{report.tolerance_ms:.0f} ms")
    cam = {k: float(color_cam[k]) for k in ("fx", "fy", "cx", "cy")}
    return out, cam
