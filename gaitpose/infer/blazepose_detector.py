"""MediaPipe's BlazePose person detector (converted to ONNX) and the ROI type it shares with the landmark model.

Why a detector beside gaitpose's own localiser: the landmark network wants its crop centred on
the hips and rotated so the body stands upright (MediaPipe's ROI rule); the localiser's box has
no orientation. When a person is acquired, this detector, run inside the tracker's box, gives
the hip centre, body radius and rotation exactly as MediaPipe's ``pose_detection_to_roi`` does.
Decoding follows MediaPipe's ``pose_detection_cpu.pbtxt`` (SSD anchors, sigmoid scores,
weighted non-maximum suppression). numpy/cv2 and ONNX Runtime only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitpose.errors import InputError
from gaitpose.geometry import affine_points, box_to_center_size, crop, invert_affine
from gaitpose.infer.pose import _meta_from_session
from gaitpose.infer.session import make_session
from gaitpose.io.planar import ImageLike

__all__ = ["BlazePoseDetector", "Roi", "ssd_anchors"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float32), -80.0, 80.0)))


@dataclass
class Roi:
    """A square region of interest in full-image pixels, rotated by ``angle`` degrees (0 = upright)."""

    center: np.ndarray  # (2,)
    side: float
    angle: float = 0.0


def ssd_anchors(input_size: int = 224, strides: Sequence[int] = (8, 16, 32, 32, 32)) -> np.ndarray:
    """(N, 2) anchor centres (normalised) of MediaPipe's pose detector (fixed-size SSD anchors).

    Layers with the same stride share one grid; each layer adds two anchors per cell (aspect
    ratio 1 and the interpolated scale), all of the same fixed size, so only the centres matter.
    """
    centres = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        n_cell = 2 * (j - i)
        fm = int(np.ceil(input_size / strides[i]))
        ys, xs = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, n_cell, axis=0))
        i = j
    return np.concatenate(centres).astype(np.float32)


class BlazePoseDetector:
    """MediaPipe's pose detector (converted): finds the rotated ROI of a person inside a region.

    Used when the landmark model acquires a person: the detector's first two keypoints (hip
    centre and a point on the circle that encloses the body) give the ROI's centre, size and
    rotation exactly as MediaPipe's ``pose_detection_to_roi`` does (size 2 x 1.25 x radius,
    rotated so the body stands upright). Decoding follows ``pose_detection_cpu.pbtxt``.
    """

    def __init__(self, model_path: str | os.PathLike[str], threads: int | None = None,
                 spinning: bool | None = None, min_score: float = 0.5) -> None:
        self.path = Path(model_path)
        self.session = make_session(self.path, threads, spinning)
        meta = _meta_from_session(self.path, self.session)
        if meta.kind != "blazepose_detector":
            raise InputError(self.path, f"expected a BlazePose detector, got kind '{meta.kind}'")
        self.input_name = self.session.get_inputs()[0].name
        self.size = int(meta.input_size[0])
        self.anchors = ssd_anchors(self.size)
        self.min_score = float(min_score)

    def detect_roi(self, image: ImageLike, box_xywh: np.ndarray, padding: float = 1.25) -> Roi | None:
        """The ROI (full-image pixels) of the person who fills the box best (of those scoring >= min_score), or None."""
        center, size = box_to_center_size(box_xywh, 1.0, padding)
        patch, m = crop(image, center, size, (self.size, self.size))
        x = patch.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)
        reg, cls = self.session.run(None, {self.input_name: x[None]})
        scores = _sigmoid(np.clip(cls.reshape(-1), -100.0, 100.0))
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return None
        reg = reg.reshape(-1, 12)[keep]
        anchors = self.anchors[keep]
        s = scores[keep]
        boxes = reg[:, :4] / self.size
        boxes[:, :2] += anchors
        kps = reg[:, 4:8].reshape(-1, 2, 2) / self.size + anchors[:, None, :]
        # The person of the box, not the most confident one in it (a bystander may score higher):
        # the detection that overlaps the box best, then weighted NMS around it (MediaPipe: IoU
        # 0.3, weighted by score).
        x0, y0, bw, bh = (float(v) for v in box_xywh)
        corners = affine_points(np.array([[x0, y0], [x0 + bw, y0 + bh]], np.float32), m) / self.size
        query = np.array([(corners[0, 0] + corners[1, 0]) / 2, (corners[0, 1] + corners[1, 1]) / 2,
                          corners[1, 0] - corners[0, 0], corners[1, 1] - corners[0, 1]], np.float32)
        best = int(np.argmax(_iou_cxcywh(query, boxes) + 1e-3 * s))
        iou = _iou_cxcywh(boxes[best], boxes)
        w = s * (iou >= 0.3)
        pts = (kps * w[:, None, None]).sum(axis=0) / w.sum() * self.size  # (2, 2) in crop pixels
        pts = affine_points(pts, invert_affine(m))
        d = pts[1] - pts[0]
        radius = float(np.hypot(d[0], d[1]))
        if radius < 1.0:
            return None
        angle = float(np.degrees(np.arctan2(d[0], -d[1])))
        return Roi(pts[0].astype(np.float32), 2.0 * 1.25 * radius, angle)


def _iou_cxcywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = iw * ih
    union = a[2] * a[3] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
