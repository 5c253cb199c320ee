"""Real input crops for parity checks, INT8 calibration and quick accuracy checks.

Crops are produced by ``OnnxPoseEstimator.preprocess`` of the model under test, so calibration
and parity see exactly the tensors the serving path will feed the network (same affine crop,
same normalisation, same depth channel handling).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gaitpose.errors import InputError
from gaitpose.labels import PoseRecord, load_records

log = logging.getLogger(__name__)


@dataclass
class CropSet:
    """Preprocessed crops plus, when they came from a label file, the labels in crop pixels."""

    crops: np.ndarray  # (N, C, H, W) float32
    keypoints: np.ndarray | None = None  # (N, K, 2) crop pixels
    weights: np.ndarray | None = None  # (N, K) teacher confidence, 0 = missing
    boxes: np.ndarray | None = None  # (N, 4) x, y, w, h of the person box in the source image


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(path, "image file is missing or unreadable")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_depth(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None:
        raise InputError(path, "depth file is missing or unreadable")
    return depth.astype(np.float32)


def pick_records(records: list[PoseRecord], limit: int | None, seed: int = 0) -> list[PoseRecord]:
    """A reproducible, evenly spread subset (calibration wants variety, not the first N frames)."""
    if limit is None or limit >= len(records):
        return list(records)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(records), size=limit, replace=False))
    return [records[i] for i in idx]


def label_crops(
    label_path: str | os.PathLike[str], estimator, limit: int | None = None, seed: int = 0
) -> CropSet:
    """Crops of the labelled persons in a gaitpose COCO file, with labels mapped into crop pixels."""
    from gaitpose.geometry import affine_points

    records = load_records(label_path)
    if not records:
        raise InputError(label_path, "label file has no usable annotations")
    records = pick_records(records, limit, seed)
    crops, kps, weights, boxes = [], [], [], []
    for rec in records:
        image = read_rgb(rec.image_path)
        depth = _read_depth(rec.depth_path) if estimator.meta.in_channels == 4 else None
        x, matrix = estimator.preprocess(image, rec.bbox, depth)
        crops.append(x)
        kps.append(affine_points(rec.keypoints, matrix))
        weights.append(rec.scores)
        boxes.append(rec.bbox)
    return CropSet(np.stack(crops), np.stack(kps).astype(np.float32), np.stack(weights), np.stack(boxes))


def video_frames(video_path: str | os.PathLike[str], count: int) -> list[np.ndarray]:
    """``count`` RGB frames spread evenly over a video (PyAV decode)."""
    import av

    path = Path(video_path)
    if not path.exists():
        raise InputError(path, "video file does not exist")
    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError) as exc:
        raise InputError(path, f"not a readable video ({exc})") from None
    if not frames:
        raise InputError(path, "video has no frames")
    idx = np.unique(np.linspace(0, len(frames) - 1, num=min(count, len(frames))).round().astype(int))
    return [frames[i] for i in idx]


def video_crops(video_path: str | os.PathLike[str], estimator, count: int = 16) -> CropSet:
    """Crops of whole video frames (no labels needed): real image statistics for parity/calibration.

    The box is the full frame, so the crop is the frame letterboxed to the model's aspect ratio,
    which is what a person box covering most of a portrait clip looks like.
    """
    crops, boxes = [], []
    for frame in video_frames(video_path, count):
        h, w = frame.shape[:2]
        box = np.array([0, 0, w, h], dtype=np.float32)
        x, _ = estimator.preprocess(frame, box)
        crops.append(x)
        boxes.append(box)
    return CropSet(np.stack(crops), boxes=np.stack(boxes))


def real_crops(source: str | os.PathLike[str], estimator, limit: int = 16, seed: int = 0) -> CropSet:
    """Crops from a label file (``.json``) or from frames of a video (anything else)."""
    if Path(source).suffix.lower() == ".json":
        return label_crops(source, estimator, limit=limit, seed=seed)
    return video_crops(source, estimator, count=limit)
