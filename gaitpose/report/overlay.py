"""Overlay video: skeleton on every frame plus heel-strike / toe-off marks, H.264 through PyAV.

Why a video: a clinician checks the numbers by looking at the walk; events drawn where and when
the algorithm put them make wrong detections (a swapped foot, a missed strike) obvious.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gaitpose.skeleton import INDEX, KEYPOINTS, SKELETON

log = logging.getLogger(__name__)

LEFT = (66, 135, 245)  # RGB
RIGHT = (245, 130, 48)
MID = (220, 220, 220)
EVENT_COLOURS = {"heel_strike": (40, 220, 60), "toe_off": (230, 40, 200)}
EVENT_SHORT = {"heel_strike": "HS", "toe_off": "TO"}
EVENT_POINT = {"heel_strike": "heel", "toe_off": "toe"}
EVENT_SHOW_FRAMES = 8  # how long an event mark stays on screen


def _side_colour(name: str) -> tuple[int, int, int]:
    if name.startswith("left_"):
        return LEFT
    if name.startswith("right_"):
        return RIGHT
    return MID


def draw_pose(
    rgb: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    *,
    min_score: float = 0.3,
    box: np.ndarray | None = None,
) -> np.ndarray:
    """Draw one skeleton (left blue, right orange) onto a copy of an RGB frame."""
    img = np.ascontiguousarray(rgb).copy()
    scale = max(1, round(max(img.shape[:2]) / 640))
    ok = (scores >= min_score) & np.isfinite(keypoints).all(axis=1)
    if box is not None and np.isfinite(box).all():
        x, y, w, h = (int(np.rint(v)) for v in box)
        cv2.rectangle(img, (x, y), (x + w, y + h), (200, 200, 200), 1)
    for a, b in SKELETON:
        if ok[a] and ok[b]:
            pa = tuple(int(np.rint(v)) for v in keypoints[a])
            pb = tuple(int(np.rint(v)) for v in keypoints[b])
            name = KEYPOINTS[a] if KEYPOINTS[a] != "nose" else KEYPOINTS[b]
            cv2.line(img, pa, pb, _side_colour(name), 2 * scale, cv2.LINE_AA)
    for i, name in enumerate(KEYPOINTS):
        if ok[i]:
            p = tuple(int(np.rint(v)) for v in keypoints[i])
            cv2.circle(img, p, 3 * scale, _side_colour(name), -1, cv2.LINE_AA)
    return img


def _event_point(kpts: np.ndarray, foot: str, event: str) -> np.ndarray | None:
    for name in (f"{foot}_{EVENT_POINT[event]}", f"{foot}_ankle"):
        p = kpts[INDEX[name]]
        if np.isfinite(p).all():
            return p
    return None


def _open_writer(path: Path, fps: float, wh: tuple[int, int]) -> tuple[Any, Any]:
    import av

    container = av.open(str(path), mode="w")
    rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
    for codec in ("libx264", "h264", "libopenh264", "mpeg4"):
        if codec not in av.codecs_available:
            continue
        try:
            stream = container.add_stream(codec, rate=rate)
        except Exception:  # encoder listed but not usable in this FFmpeg build
            continue
        stream.width, stream.height = wh
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "veryfast", "crf": "23", "movflags": "+faststart"}
        return container, stream
    container.close()
    raise RuntimeError("no H.264 (or MPEG-4) encoder in this PyAV build")


def write_overlay(
    frames: Iterable[np.ndarray],
    keypoints: np.ndarray,
    scores: np.ndarray,
    events: Sequence[Any],
    fps: float,
    out_path: str | os.PathLike[str],
    *,
    boxes: np.ndarray | None = None,
    min_score: float = 0.3,
) -> int:
    """Encode the overlay video; ``events`` are objects with foot/event/frame (GaitEvent). Returns frames written."""
    out_path = Path(out_path)
    by_frame: dict[int, list[Any]] = {}
    for ev in events:
        for f in range(int(ev.frame), int(ev.frame) + EVENT_SHOW_FRAMES):
            by_frame.setdefault(f, []).append(ev)
    container = stream = None
    n = 0
    try:
        for t, rgb in enumerate(frames):
            if container is None:
                h, w = rgb.shape[:2]
                container, stream = _open_writer(out_path, fps, (w + w % 2, h + h % 2))
            img = rgb
            if t < len(keypoints):
                img = draw_pose(rgb, keypoints[t], scores[t], min_score=min_score,
                                box=None if boxes is None else boxes[t])
                for ev in by_frame.get(t, ()):
                    p = _event_point(keypoints[int(ev.frame)], ev.foot, ev.event)
                    if p is None:
                        continue
                    c = EVENT_COLOURS.get(ev.event, (255, 255, 0))
                    px, py = int(np.rint(p[0])), int(np.rint(p[1]))
                    cv2.circle(img, (px, py), 9, c, 2, cv2.LINE_AA)
                    label = f"{ev.foot[0].upper()} {EVENT_SHORT.get(ev.event, ev.event)}"
                    cv2.putText(img, label, (px + 10, py - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, c, 2, cv2.LINE_AA)
            cv2.putText(img, f"frame {t}  {t / fps if fps else 0:.2f} s", (8, 20), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5, (255, 255, 255), 1, cv2.LINE_AA)
            if img.shape[1] % 2 or img.shape[0] % 2:
                img = cv2.copyMakeBorder(img, 0, img.shape[0] % 2, 0, img.shape[1] % 2, cv2.BORDER_CONSTANT)
            import av

            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
            n += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    finally:
        if container is not None:
            container.close()
    return n
