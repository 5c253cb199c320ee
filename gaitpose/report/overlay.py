"""Overlay video: skeleton on every frame plus heel-strike / toe-off marks, H.264 through PyAV.

Why a video: a clinician checks the numbers by looking at the walk; events drawn where and when
the algorithm put them make wrong detections (a swapped foot, a missed strike) obvious.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gaitpose.io.planar import resize_image
from gaitpose.io.prefetch import prefetch
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
    copy: bool = True,
) -> np.ndarray:
    """Draw one skeleton (left blue, right orange) onto a copy of an RGB frame (in place with ``copy=False``)."""
    img = np.ascontiguousarray(rgb).copy() if copy else rgb
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


def overlay_frame_size(frame_wh: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """Even output size with the long side at most ``max_side`` (None/0: the frame's own size)."""
    w, h = int(frame_wh[0]), int(frame_wh[1])
    s = 1.0 if not max_side or max(w, h) <= max_side else max_side / max(w, h)
    ow, oh = max(2, round(w * s)), max(2, round(h * s))
    return ow + ow % 2, oh + oh % 2


def _to_out(xy: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Source pixel coordinates -> overlay pixels (pixel-centre convention, as gaitpose.geometry)."""
    return (np.asarray(xy, np.float64) + 0.5) * scale - 0.5


def scaled_frame(image: Any, wh: tuple[int, int]) -> np.ndarray:
    """An RGB array or planar frame (``gaitpose.io.planar.YuvImage``) resized to ``wh`` (contiguous, own copy).

    Bilinear for reductions down to half size (the usual 1080p -> 960 case, and about half the cost
    of area averaging), area averaging below that, where bilinear would alias.
    """
    h, w = image.shape[:2]
    if (w, h) == tuple(wh):
        return np.ascontiguousarray(image).copy() if isinstance(image, np.ndarray) else image.to_rgb()
    interp = cv2.INTER_LINEAR if min(wh[0] / w, wh[1] / h) >= 0.5 else cv2.INTER_AREA
    return resize_image(image, wh, interp)


def write_overlay(
    frames: Iterable[Any],
    keypoints: np.ndarray,
    scores: np.ndarray,
    events: Sequence[Any],
    fps: float,
    out_path: str | os.PathLike[str],
    *,
    boxes: np.ndarray | None = None,
    min_score: float = 0.3,
    max_side: int | None = 960,
    prefetch_frames: int = 4,
) -> int:
    """Encode the overlay video; returns frames written.

    ``frames`` are RGB arrays or planar frames; ``events`` are objects with foot/event/frame
    (GaitEvent). Frames are scaled so the long side is at most ``max_side`` pixels before
    drawing and encoding: H.264 encoding of a full-HD frame costs more than the whole pose
    pass, and a 960-pixel video is plenty to check a walk. Keypoints stay in source pixels.
    Frames are pulled from ``frames`` (decoded) and scaled on a background thread, ``prefetch_frames``
    ahead, while this thread draws and encodes.
    """
    out_path = Path(out_path)
    by_frame: dict[int, list[Any]] = {}
    for ev in events:
        for f in range(int(ev.frame), int(ev.frame) + EVENT_SHOW_FRAMES):
            by_frame.setdefault(f, []).append(ev)
    it = iter(frames)
    first = next(it, None)
    if first is None:
        return 0
    h, w = first.shape[:2]
    wh = overlay_frame_size((w, h), max_side)
    scale = np.array([wh[0] / w, wh[1] / h])
    scaled = prefetch(itertools.chain([first], it), depth=prefetch_frames, prepare=lambda im: scaled_frame(im, wh))
    container = stream = None
    n = 0
    try:
        for t, img in enumerate(scaled):
            if container is None:
                container, stream = _open_writer(out_path, fps, wh)
            if t < len(keypoints):
                box = None
                if boxes is not None:
                    x, y, bw, bh = boxes[t]
                    box = np.array([*_to_out(np.array([x, y]), scale), bw * scale[0], bh * scale[1]])
                img = draw_pose(img, _to_out(keypoints[t], scale), scores[t], min_score=min_score, box=box, copy=False)
                for ev in by_frame.get(t, ()):
                    # The mark follows the foot (a toe-off mark left where the toe was would sit on the
                    # floor after the foot has gone); the event frame's point only when this frame has none.
                    p = _event_point(keypoints[t], ev.foot, ev.event)
                    if p is None:
                        p = _event_point(keypoints[int(ev.frame)], ev.foot, ev.event)
                    if p is None:
                        continue
                    c = EVENT_COLOURS.get(ev.event, (255, 255, 0))
                    px, py = (int(v) for v in np.rint(_to_out(p, scale)))
                    cv2.circle(img, (px, py), 9, c, 2, cv2.LINE_AA)
                    label = f"{ev.foot[0].upper()} {EVENT_SHORT.get(ev.event, ev.event)}"
                    cv2.putText(img, label, (px + 10, py - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, c, 2, cv2.LINE_AA)
            cv2.putText(img, f"frame {t}  {t / fps if fps else 0:.2f} s", (8, 20), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5, (255, 255, 255), 1, cv2.LINE_AA)
            import av

            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
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


def render_overlay(
    video: str | os.PathLike[str],
    keypoints: np.ndarray,
    scores: np.ndarray,
    events: Sequence[Any],
    fps: float,
    out_path: str | os.PathLike[str],
    *,
    boxes: np.ndarray | None = None,
    frames: Iterable[Any] | None = None,
    max_side: int | None = 960,
    prefetch_frames: int = 4,
    decode_threads: int | None = None,
) -> int:
    """Encode the overlay video of an analysed ``video`` into ``out_path`` atomically; returns frames written.

    ``frames``: the video's images again when the caller has them decoding already (default: decoded
    here from ``video``). ``AnalysisResult.write_overlay`` calls this, inside ``analyze_video`` with
    ``overlay=True`` and from the service worker after a job's results are published, so users get
    their numbers before the slowest output is encoded.
    """
    from gaitpose.fsutil import atomic_path
    from gaitpose.infer.track import default_decode_threads

    rec = None
    if frames is None:
        from gaitpose.io import open_recording

        rec = open_recording(video)
        threads = default_decode_threads() if decode_threads is None else decode_threads
        frames = (f.image for f in rec.color_images(threads))
    try:
        with atomic_path(out_path) as tmp:
            n = write_overlay(frames, keypoints, scores, events, fps, tmp, boxes=boxes, max_side=max_side or None,
                              prefetch_frames=prefetch_frames)
    finally:
        if rec is not None:
            rec.close()
    return n
