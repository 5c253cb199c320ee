"""Box and affine-crop geometry shared by labelling, training and inference (numpy + cv2 only).

A crop is described by a centre (cx, cy) and a size (w, h) in *pixels* of the source image,
already padded and fixed to the network's aspect ratio. There is no ``pixel_std = 200`` unit:
pixels in, pixels out.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


def box_to_center_size(
    box_xywh: np.ndarray | list[float], aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Turn an (x, y, w, h) box into a crop centre and a padded size with width/height = aspect_ratio.

    The box is grown along one axis to reach the aspect ratio (never squashed), then both
    sides are multiplied by ``padding`` so limbs at the box edge stay inside the crop.
    """
    x, y, w, h = (float(v) for v in box_xywh)
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    w = max(w, 1.0)
    h = max(h, 1.0)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    size = np.array([w * padding, h * padding], dtype=np.float32)
    return center, size


def keypoints_to_box(keypoints: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray | None:
    """Tight (x, y, w, h) box around the valid keypoints, or None when fewer than two are valid."""
    pts = np.asarray(keypoints, dtype=np.float32)[:, :2]
    mask = np.ones(len(pts), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    pts = pts[mask]
    if len(pts) < 2:
        return None
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return np.array([x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0)], dtype=np.float32)


def box_center(box_xywh: np.ndarray) -> np.ndarray:
    """Centre (cx, cy) of an (x, y, w, h) box."""
    return np.array([box_xywh[0] + box_xywh[2] / 2.0, box_xywh[1] + box_xywh[3] / 2.0], dtype=np.float64)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x, y, w, h) boxes (0 when both are empty)."""
    ax0, ay0, aw, ah = (float(v) for v in a)
    bx0, by0, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    ih = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def expand_box(box_xywh: np.ndarray, factor: float, image_wh: tuple[int, int] | None = None) -> np.ndarray:
    """Grow a box about its centre; optionally clip it to the image."""
    x, y, w, h = (float(v) for v in box_xywh)
    cx, cy = x + w / 2, y + h / 2
    w, h = w * factor, h * factor
    x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    if image_wh is not None:
        x0, y0 = max(0.0, x0), max(0.0, y0)
        x1, y1 = min(float(image_wh[0]), x1), min(float(image_wh[1]), y1)
    return np.array([x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0)], dtype=np.float32)


def get_affine_transform(
    center: np.ndarray,
    size: np.ndarray,
    rotation_deg: float,
    output_wh: tuple[int, int],
    shift: tuple[float, float] = (0.0, 0.0),
    inverse: bool = False,
) -> np.ndarray:
    """2x3 matrix mapping the rotated source rectangle (centre, size) onto an output of output_wh.

    With ``inverse=True`` the matrix maps output pixels back to source pixels. Three point
    correspondences (centre, a point up the rotated y axis, a point along the rotated x axis)
    define the transform exactly, so forward and inverse are consistent to float precision.
    """
    center = np.asarray(center, dtype=np.float64)
    size = np.asarray(size, dtype=np.float64)
    out_w, out_h = float(output_wh[0]), float(output_wh[1])
    rot = np.deg2rad(rotation_deg)
    cs, sn = np.cos(rot), np.sin(rot)

    def rotate(v: np.ndarray) -> np.ndarray:
        return np.array([v[0] * cs - v[1] * sn, v[0] * sn + v[1] * cs])

    src_center = center + size * np.asarray(shift, dtype=np.float64)
    src_up = rotate(np.array([0.0, -size[1] * 0.5]))
    src_right = rotate(np.array([size[0] * 0.5, 0.0]))
    src = np.stack([src_center, src_center + src_up, src_center + src_right]).astype(np.float32)
    dst_center = np.array([out_w * 0.5, out_h * 0.5])
    dst = np.stack(
        [dst_center, dst_center + np.array([0.0, -out_h * 0.5]), dst_center + np.array([out_w * 0.5, 0.0])]
    ).astype(np.float32)
    if inverse:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def affine_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (..., 2+) points; extra columns (scores) are kept."""
    pts = np.asarray(points, dtype=np.float32)
    xy = pts[..., :2] @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2].astype(np.float32)
    if pts.shape[-1] > 2:
        return np.concatenate([xy, pts[..., 2:]], axis=-1)
    return xy


def crop(
    image: Any,
    center: np.ndarray,
    size: np.ndarray,
    output_wh: tuple[int, int],
    rotation_deg: float = 0.0,
    border_value: float | tuple[float, ...] = 0,
    interpolation: int = cv2.INTER_LINEAR,
    border_mode: int = cv2.BORDER_CONSTANT,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp the (rotated) rectangle of ``image`` into an output_wh crop; returns (crop, matrix).

    ``border_mode``: OpenCV's rule outside the image (``cv2.BORDER_REPLICATE`` is MediaPipe's).

    ``image`` is an array or anything with a ``warp(matrix, output_wh, interpolation=,
    border_value=)`` method (a planar video frame, :class:`gaitpose.io.planar.YuvImage`).
    """
    matrix = get_affine_transform(center, size, rotation_deg, output_wh)
    out = warp_image(image, matrix, output_wh, border_value=border_value, interpolation=interpolation,
                     border_mode=border_mode)
    return out, matrix


def warp_image(
    image: Any,
    matrix: np.ndarray,
    output_wh: tuple[int, int],
    border_value: float | tuple[float, ...] = 0,
    interpolation: int = cv2.INTER_LINEAR,
    border_mode: int = cv2.BORDER_CONSTANT,
) -> np.ndarray:
    """``cv2.warpAffine`` of an RGB array, or the planar frame's own ``warp`` (see :func:`crop`)."""
    if not isinstance(image, np.ndarray):
        return image.warp(matrix, output_wh, interpolation=interpolation, border_value=border_value,
                          border_mode=border_mode)
    return cv2.warpAffine(
        image,
        matrix,
        (int(output_wh[0]), int(output_wh[1])),
        flags=interpolation,
        borderMode=border_mode,
        borderValue=border_value,
    )


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def oks_area(box_xywh: np.ndarray) -> float:
    """Object scale used by OKS: the box area, as COCO uses for keypoint annotations."""
    return float(box_xywh[2] * box_xywh[3])
