"""Key frames for the report: a still of the subject with the skeleton at heel strikes.

Why: a clinician trusts a step length or a knee angle once they have seen the foot where the
algorithm put the heel strike. The stills are cropped around the subject and embedded as JPEG
data URIs so report.html stays one self-contained file. Only the frames up to the last chosen
heel strike are decoded (the earliest strikes of each foot are chosen for that reason).
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from gaitpose.geometry import affine_points
from gaitpose.report.overlay import EVENT_COLOURS, draw_pose

log = logging.getLogger(__name__)


def pick_heel_strikes(events: Sequence[Any], keypoints: np.ndarray, per_foot: int = 2) -> list[Any]:
    """The earliest ``per_foot`` heel strikes of each foot whose frame has a pose, in time order."""
    chosen: list[Any] = []
    count = {"left": 0, "right": 0}
    for e in sorted(events, key=lambda e: int(e.frame)):
        if e.event != "heel_strike" or count.get(e.foot, per_foot) >= per_foot:
            continue
        f = int(e.frame)
        if 0 <= f < len(keypoints) and np.isfinite(keypoints[f]).all(axis=1).sum() >= 8:
            chosen.append(e)
            count[e.foot] += 1
    return chosen


def _crop_box(kp: np.ndarray, wh: tuple[int, int], pad: float = 0.25) -> tuple[int, int, int, int]:
    ok = np.isfinite(kp).all(axis=1)
    x0, y0 = kp[ok].min(axis=0)
    x1, y1 = kp[ok].max(axis=0)
    h = (y1 - y0) * (1 + 2 * pad)
    w = max(x1 - x0, 0.6 * h)  # a walker's box is tall; keep some room in front and behind
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = max(0, int(cx - w / 2)), max(0, int(cy - h / 2))
    right, bottom = min(wh[0], int(cx + w / 2)), min(wh[1], int(cy + h / 2))
    return left, top, max(right, left + 2), max(bottom, top + 2)


def _still(rgb: np.ndarray, kp: np.ndarray, scores: np.ndarray, foot: str, height: int, quality: int) -> str:
    img = draw_pose(rgb, kp, scores)
    from gaitpose.skeleton import INDEX

    heel = kp[INDEX[f"{foot}_heel"]]
    if np.isfinite(heel).all():
        r = max(6, round(max(img.shape[:2]) / 80))
        cv2.circle(img, (int(heel[0]), int(heel[1])), r, EVENT_COLOURS["heel_strike"], 2, cv2.LINE_AA)
    x0, y0, x1, y1 = _crop_box(kp, (img.shape[1], img.shape[0]))
    crop = img[y0:y1, x0:x1]
    scale = height / crop.shape[0]
    crop = cv2.resize(crop, (max(2, round(crop.shape[1] * scale)), height),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def heel_strike_stills(
    video: str | os.PathLike[str],
    keypoints: np.ndarray,
    scores: np.ndarray,
    events: Sequence[Any],
    *,
    per_foot: int = 1,
    height: int = 300,
    quality: int = 80,
    frames: Any = None,
) -> list[dict[str, str]]:
    """Stills at the earliest heel strikes of each foot: [{"caption", "src" (JPEG data URI), ...}].

    One per foot by default: the frames up to the last still are decoded again (on the 1768x994
    VP9 Sports2D demo, about 1.3 s for the first left and right strikes against 1.7 s for two each,
    measured on a loaded 2-core machine), and ``analyze`` runs this on a second thread while it plots.

    ``keypoints`` (T, 21, 2) and ``scores`` (T, 21) in source pixels, as drawn on the overlay.
    A video that cannot be read again gives no stills (logged), never an error: the report is
    still worth writing without them. ``frames``: subject crops kept during the frame loop
    (:class:`gaitpose.report.stillcache.SubjectFrames`); strikes found there are not decoded again.
    """
    chosen = pick_heel_strikes(events, keypoints, per_foot)
    if not chosen:
        return []
    want = {int(e.frame): e for e in chosen}
    out: list[dict[str, str]] = []
    for idx in sorted(want):
        kept = frames.get(idx) if frames is not None else None
        if kept is not None:
            e, (rgb, matrix) = want.pop(idx), kept
            src = _still(rgb, affine_points(keypoints[idx], matrix), scores[idx], e.foot, height, quality)
            out.append({"caption": f"{e.foot.capitalize()} heel strike, {float(e.time_s):.2f} s (frame {idx})",
                        "src": src, "foot": e.foot})
    if not want:
        return out
    last = max(want)
    try:
        from gaitpose.io import open_recording

        with open_recording(video) as rec:
            for i, f in enumerate(rec.color_images(1)):
                idx = int(getattr(f, "index", i))
                if idx in want:
                    e = want[idx]
                    src = _still(np.ascontiguousarray(f.rgb), keypoints[idx], scores[idx], e.foot, height, quality)
                    out.append({"caption": f"{e.foot.capitalize()} heel strike, {float(e.time_s):.2f} s "
                                           f"(frame {idx})", "src": src, "foot": e.foot})
                if idx >= last:
                    break
    except Exception as exc:  # the stills are a convenience; the numbers are already written
        log.warning("key frames skipped: %s", exc)
    return out


__all__ = ["heel_strike_stills", "pick_heel_strikes"]
