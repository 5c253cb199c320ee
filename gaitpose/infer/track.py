"""The frame loop: subject tracker + pose network over every decoded frame -> a :class:`PoseTrack`.

Runtime only (numpy, ONNX Runtime through the estimator): no torch, no gait analytics, no files.
The estimator is anything with ``predict(image, boxes, flip_test=...)`` returning
:class:`gaitpose.infer.pose.PoseResult` per box, so the student, a BlazePose export or a test
double all run through the same loop; the localiser is anything with ``detect(image)``.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from gaitpose.geometry import expand_box, keypoints_to_box
from gaitpose.infer.tracker import Detection, SubjectTracker
from gaitpose.io.planar import ImageLike
from gaitpose.skeleton import NUM_KEYPOINTS

__all__ = ["Localizer", "PoseEstimator", "PoseTrack", "default_decode_threads", "track_video"]


class PoseEstimator(Protocol):
    """What the frame loop needs from a pose model (``OnnxPoseEstimator`` and its peers)."""

    def predict(self, image: ImageLike, boxes: Sequence[np.ndarray], flip_test: bool = False) -> list[Any]: ...


class Localizer(Protocol):
    """What the frame loop needs from a person localiser (``OnnxLocalizer``)."""

    def detect(self, image: ImageLike) -> list[Detection]: ...


def default_decode_threads() -> int | None:
    """Decoder threads for the frame loop: one on a machine with two cores or fewer, else FFmpeg's choice.

    Why one: on two cores the decoder owns one core and the models the other. With two decoder
    threads FFmpeg fights the models for the second core: measured on the five shared videos, the
    frame loop got 2-20 % faster on two of them and 2-26 % slower on the others.
    """
    return 1 if (os.cpu_count() or 1) <= 2 else None


@dataclass
class PoseTrack:
    """Per-frame output of the pose pass (NaN keypoints / box where the subject was not found)."""

    keypoints: np.ndarray  # (T, 21, 2)
    scores: np.ndarray  # (T, 21), 0 where not found
    boxes: np.ndarray  # (T, 4)
    times_s: np.ndarray  # (T,)
    accepted: np.ndarray  # (T,) bool: pose confident enough to count as the subject
    frame_size: tuple[int, int] = (0, 0)
    localizer_calls: int = 0
    pose_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.times_s)


def track_video(
    frames: Iterable[Any],
    estimator: PoseEstimator,
    localizer: Localizer,
    *,
    roi: np.ndarray | None = None,
    total_frames: int = 0,
    progress: Callable[[float], None] | None = None,
    progress_span: tuple[float, float] = (0.0, 1.0),
    lookback: int = 15,
    flip_test: bool = False,
    keep_frame: Callable[[int, ImageLike, np.ndarray], None] | None = None,
) -> PoseTrack:
    """Run tracker + SPPE over ``frames`` (ColorFrame / PlanarColorFrame-like objects with t_ms and image).

    Look-back: the localiser usually finds a patient who walks into view a few frames late (half
    of the body is still outside the frame), which would cost the first step. The last
    ``lookback`` frames without a pose are kept, and when the subject is acquired the track is
    run backwards through them from the acquired keypoints until the pose becomes weak.
    ``flip_test``: average each crop's heatmaps with its mirror image's (fewer left/right swaps,
    about twice the pose-network time). ``keep_frame(t, image, box)`` is called for every frame
    where the subject was found (look-back frames included), so a caller can keep what it needs of
    the image (the report's key frames) without decoding the video again.
    """
    kps: list[np.ndarray] = []
    scs: list[np.ndarray] = []
    bxs: list[np.ndarray] = []
    ts: list[float] = []
    acc: list[bool] = []
    tracker: SubjectTracker | None = None
    size = (0, 0)
    t0 = time.perf_counter()
    lo, hi = progress_span
    nan_kp = np.full((NUM_KEYPOINTS, 2), np.nan, np.float32)
    missed: deque[tuple[int, ImageLike]] = deque(maxlen=max(0, int(lookback)))
    backfilled = 0
    for f in frames:
        image = f.image  # planar frame or RGB array: cropped, never converted whole
        if tracker is None:
            size = (int(image.shape[1]), int(image.shape[0]))
            tracker = SubjectTracker(size, roi=roi)
        was_searching = tracker.searching()

        def detect(image: ImageLike = image) -> list[Detection]:
            return localizer.detect(image)

        box = tracker.next_box(detect)
        if box is None and roi is not None and not tracker.started:
            box = tracker.start_from_roi()
        res = None
        if box is not None:
            res = estimator.predict(image, [box], flip_test=flip_test)[0]
            if tracker.is_weak(res.scores):
                box2 = tracker.redetect(detect)
                if box2 is not None:
                    res2 = estimator.predict(image, [box2], flip_test=flip_test)[0]
                    if float(res2.scores.mean()) > float(res.scores.mean()):
                        res = res2
        if res is None:
            kps.append(nan_kp)
            scs.append(np.zeros(NUM_KEYPOINTS, np.float32))
            bxs.append(np.full(4, np.nan, np.float32))
            acc.append(False)
            tracker.update(None, None)
        else:
            kps.append(res.keypoints.astype(np.float32))
            scs.append(res.scores.astype(np.float32))
            bxs.append(res.box.astype(np.float32))
            acc.append(not tracker.is_weak(res.scores))
            tracker.update(res.keypoints, res.scores)
        if acc[-1]:
            if was_searching and missed:
                filled = _look_back(missed, res, estimator, tracker, kps, scs, bxs, acc, flip_test)
                if keep_frame is not None:
                    for i, img in list(missed)[len(missed) - filled:]:
                        keep_frame(i, img, bxs[i])
                backfilled += filled
            if keep_frame is not None:
                keep_frame(len(acc) - 1, image, bxs[-1])
            missed.clear()
        elif missed.maxlen:
            missed.append((len(acc) - 1, image))
        ts.append(float(f.t_ms) / 1000.0)
        if progress is not None and total_frames:
            progress(lo + (hi - lo) * min(1.0, len(ts) / total_frames))
    elapsed = time.perf_counter() - t0
    n = len(ts)
    return PoseTrack(
        keypoints=np.stack(kps) if n else np.zeros((0, NUM_KEYPOINTS, 2), np.float32),
        scores=np.stack(scs) if n else np.zeros((0, NUM_KEYPOINTS), np.float32),
        boxes=np.stack(bxs) if n else np.zeros((0, 4), np.float32),
        times_s=np.asarray(ts, np.float64),
        accepted=np.asarray(acc, bool),
        frame_size=size,
        localizer_calls=tracker.localizer_calls if tracker else 0,
        pose_seconds=elapsed,
        extra={"backfilled_frames": backfilled},
    )


def _look_back(
    missed: deque[tuple[int, ImageLike]],
    found: Any,
    estimator: PoseEstimator,
    tracker: SubjectTracker,
    kps: list[np.ndarray],
    scs: list[np.ndarray],
    bxs: list[np.ndarray],
    acc: list[bool],
    flip_test: bool = False,
) -> int:
    """Track backwards from a just-acquired pose through earlier frames that had none; returns frames filled."""
    filled = 0
    keypoints, scores = found.keypoints, found.scores
    for i, image in reversed(missed):
        kbox = keypoints_to_box(keypoints, scores >= tracker.kp_threshold)
        if kbox is None:
            break
        res = estimator.predict(image, [expand_box(kbox, tracker.pad)], flip_test=flip_test)[0]
        if tracker.is_weak(res.scores):
            break
        kps[i], scs[i] = res.keypoints.astype(np.float32), res.scores.astype(np.float32)
        bxs[i], acc[i] = res.box.astype(np.float32), True
        keypoints, scores = res.keypoints, res.scores
        filled += 1
    return filled
