"""Per-crop ONNX Runtime latency of several pose models, measured side by side on the same real crops.

Why interleaved: this machine is shared, so load drifts over seconds. Running model A for a
minute and then model B would fold that drift into the A/B ratio; cycling through the models
crop by crop (rotating the order every round) exposes each model to the same load, so the
*ratios* stay meaningful even when the absolute milliseconds are noisy.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError
from gaitpose.geometry import box_to_center_size, crop, expand_box, keypoints_to_box
from gaitpose.infer.session import make_session as _make_session
from gaitpose.modelmeta import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)


@dataclass
class CropSource:
    """RGB frames of a real video with one person box each (x, y, w, h), to cut crops from."""

    frames: list[np.ndarray]
    boxes: list[np.ndarray]
    box_source: str  # how the boxes were found, for the report


def read_frames(video: str | os.PathLike[str], indices: Sequence[int] | None = None,
                start: int = 0, stop: int | None = None) -> tuple[list[np.ndarray], float]:
    """Decode RGB frames (all, a [start, stop) range, or the given indices) with the project's reader."""
    from gaitpose.io.video import VideoRecording

    rec = VideoRecording(video, decode_depth_track=False)
    wanted = None if indices is None else set(int(i) for i in indices)
    frames = []
    for f in rec.color_frames():
        if stop is not None and f.index >= stop:
            break
        if f.index < start:
            continue
        if wanted is None or f.index in wanted:
            frames.append(f.rgb)
    if not frames:
        raise InputError(video, "no frames decoded in the requested range")
    return frames, rec.fps


def person_boxes(frames: Sequence[np.ndarray]) -> tuple[list[np.ndarray], str]:
    """One person box per frame from MediaPipe on the full frame; the whole frame where it finds nobody.

    Latency does not depend on the pixels, but the crops should still look like what the models
    see in use (a person, padded), not noise.
    """
    try:
        from data_tools.teachers.mediapipe_teacher import MediaPipeTeacher
    except ImportError:
        return [np.array([0, 0, f.shape[1], f.shape[0]], np.float32) for f in frames], "whole frame"
    boxes = []
    with MediaPipeTeacher() as teacher:
        for f in frames:
            out = teacher(f)
            box = keypoints_to_box(out.keypoints, out.scores > 0.3) if out.found else None
            boxes.append(np.array([0, 0, f.shape[1], f.shape[0]], np.float32) if box is None
                         else expand_box(box, 1.1, (f.shape[1], f.shape[0])))
    return boxes, "MediaPipe on the full frame"


def crop_source(video: str | os.PathLike[str], count: int = 8) -> CropSource:
    """``count`` frames spread over the video, each with a person box."""
    from gaitpose.io.video import VideoRecording

    n = VideoRecording(video, decode_depth_track=False).num_frames
    idx = np.unique(np.linspace(0, max(n - 1, 0), num=count).round().astype(int))
    frames, _ = read_frames(video, indices=idx.tolist())
    boxes, how = person_boxes(frames)
    return CropSource(frames, boxes, how)


def make_crops(src: CropSource, input_hw: tuple[int, int], in_channels: int = 3) -> np.ndarray:
    """(N, C, H, W) float32 crops normalised with ImageNet mean/std (what every model here expects)."""
    h, w = int(input_hw[0]), int(input_hw[1])
    mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(3, 1, 1)
    std = np.asarray(IMAGENET_STD, np.float32).reshape(3, 1, 1)
    out = []
    for frame, box in zip(src.frames, src.boxes, strict=True):
        center, size = box_to_center_size(box, w / h, 1.25)
        patch, _ = crop(frame, center, size, (w, h))
        x = (patch.astype(np.float32).transpose(2, 0, 1) / 255.0 - mean) / std
        if in_channels > 3:
            x = np.concatenate([x, np.zeros((in_channels - 3, h, w), np.float32)])
        out.append(x)
    return np.stack(out).astype(np.float32)


def make_session(path: str | os.PathLike[str], threads: int) -> Any:
    """A CPU session configured as the runtime configures it (the one factory, ORT warnings off)."""
    return _make_session(path, threads, quiet=True)


def _input_geometry(sess: Any) -> tuple[str, int, tuple[int, int]]:
    inp = sess.get_inputs()[0]
    shape = inp.shape
    c, h, w = (int(d) if isinstance(d, int) else None for d in shape[1:4])
    if c is None or h is None or w is None:
        raise InputError(None, f"model input {inp.name} has a dynamic spatial shape {shape}; benchmark needs fixed")
    return inp.name, c, (h, w)


@dataclass
class LatencyStat:
    model: str
    threads: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    runs: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_latency(
    models: dict[str, str | os.PathLike[str]],
    src: CropSource,
    threads: Sequence[int] = (1, 2),
    warmup: int = 10,
    reps: int = 60,
) -> list[LatencyStat]:
    """Batch-1 latency of each model per thread count, models interleaved crop by crop.

    Every model sees the same crops in the same order; each round starts with a different model
    so none is always first after a context switch.
    """
    stats: list[LatencyStat] = []
    names = list(models)
    for t in threads:
        sessions, feeds = {}, {}
        for name in names:
            sess = make_session(models[name], t)
            in_name, c, hw = _input_geometry(sess)
            crops = make_crops(src, hw, c)
            sessions[name] = sess
            feeds[name] = (in_name, [crops[i : i + 1] for i in range(len(crops))])
        for name in names:
            in_name, batches = feeds[name]
            for i in range(warmup):
                sessions[name].run(None, {in_name: batches[i % len(batches)]})
        times: dict[str, list[float]] = {n: [] for n in names}
        for r in range(reps):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                in_name, batches = feeds[name]
                x = batches[r % len(batches)]
                t0 = time.perf_counter()
                sessions[name].run(None, {in_name: x})
                times[name].append((time.perf_counter() - t0) * 1000.0)
        for name in names:
            a = np.asarray(times[name])
            stats.append(LatencyStat(name, int(t), float(np.median(a)), float(np.percentile(a, 90)),
                                     float(a.mean()), float(a.min()), len(a)))
            log.info("%s threads=%d median %.2f ms p90 %.2f ms", name, t, stats[-1].median_ms, stats[-1].p90_ms)
        del sessions
    return stats


def file_size(path: str | os.PathLike[str]) -> int:
    return Path(path).stat().st_size
