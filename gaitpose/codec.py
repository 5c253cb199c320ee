"""Heatmap encoding and decoding (numpy + cv2 only), shared by training, evaluation and serving.

Coordinate convention: heatmap cell j covers input pixels [s*j, s*j + s - 1] for stride s, so
its centre is the input coordinate ``(j + 0.5) * s - 0.5``. With this convention mirroring a
heatmap is exactly mirroring the image, so flip testing needs no shift correction.
"""

from __future__ import annotations

import cv2
import numpy as np

from gaitpose.skeleton import FLIP_INDEX


def input_to_heatmap(xy: np.ndarray, stride: float) -> np.ndarray:
    """Map input-crop pixel coordinates to heatmap coordinates."""
    return (np.asarray(xy, dtype=np.float32) + 0.5) / stride - 0.5


def heatmap_to_input(xy: np.ndarray, stride: float) -> np.ndarray:
    """Map heatmap coordinates back to input-crop pixel coordinates."""
    return (np.asarray(xy, dtype=np.float32) + 0.5) * stride - 0.5


def encode_heatmaps(
    keypoints: np.ndarray,
    weights: np.ndarray,
    heatmap_wh: tuple[int, int],
    stride: float,
    sigma: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian heatmap targets for keypoints given in input-crop pixels.

    ``weights`` carries the teacher's confidence (0 for a missing joint). A joint whose
    Gaussian lies entirely off the map gets weight 0 so the loss does not push its map to zero
    for no reason. The Gaussian is centred at the sub-pixel location, so the decoder can recover
    it exactly. Returns (heatmaps K x H x W float32, target_weight K float32).
    """
    w_hm, h_hm = int(heatmap_wh[0]), int(heatmap_wh[1])
    k = len(keypoints)
    heatmaps = np.zeros((k, h_hm, w_hm), dtype=np.float32)
    target_weight = np.asarray(weights, dtype=np.float32).copy()
    hm_xy = input_to_heatmap(np.asarray(keypoints, dtype=np.float32)[:, :2], stride)
    xs = np.arange(w_hm, dtype=np.float32)
    ys = np.arange(h_hm, dtype=np.float32)
    radius = 3.0 * sigma
    for i in range(k):
        if target_weight[i] <= 0:
            target_weight[i] = 0.0
            continue
        mx, my = hm_xy[i]
        if mx + radius < 0 or my + radius < 0 or mx - radius > w_hm - 1 or my - radius > h_hm - 1:
            target_weight[i] = 0.0
            continue
        gx = np.exp(-((xs - mx) ** 2) / (2 * sigma**2))
        gy = np.exp(-((ys - my) ** 2) / (2 * sigma**2))
        heatmaps[i] = np.outer(gy, gx)
    return heatmaps, target_weight


def _blur_preserving_peak(heatmap: np.ndarray, kernel: int) -> np.ndarray:
    peak = float(heatmap.max())
    if kernel <= 1:
        return heatmap.copy()
    blurred = cv2.GaussianBlur(heatmap, (kernel, kernel), 0, borderType=cv2.BORDER_CONSTANT)
    bpeak = float(blurred.max())
    if bpeak > 0:
        blurred *= peak / bpeak
    return blurred


def decode_heatmaps(heatmaps: np.ndarray, stride: float, blur_kernel: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Decode (K, H, W) or (N, K, H, W) heatmaps into input-crop coordinates and confidences.

    Argmax followed by DARK refinement (Zhang et al. 2020): the log of a (blurred) Gaussian is a
    quadratic, so one Newton step from the argmax lands on the sub-pixel peak. Returns
    (coords (..., K, 2) in input pixels, scores (..., K) = the heatmap maximum).
    """
    hm = np.asarray(heatmaps, dtype=np.float32)
    batched = hm.ndim == 4
    if not batched:
        hm = hm[None]
    n, k, h, w = hm.shape
    coords = np.zeros((n, k, 2), dtype=np.float32)
    scores = np.zeros((n, k), dtype=np.float32)
    for b in range(n):
        for j in range(k):
            m = hm[b, j]
            idx = int(np.argmax(m))
            py, px = divmod(idx, w)
            scores[b, j] = m[py, px]
            x, y = float(px), float(py)
            if scores[b, j] > 0 and h >= 3 and w >= 3:
                logm = np.log(np.maximum(_blur_preserving_peak(m, blur_kernel), 1e-10))
                p = np.pad(logm, 2, mode="edge")
                cy, cx = py + 2, px + 2
                dx = 0.5 * (p[cy, cx + 1] - p[cy, cx - 1])
                dy = 0.5 * (p[cy + 1, cx] - p[cy - 1, cx])
                dxx = p[cy, cx + 1] - 2 * p[cy, cx] + p[cy, cx - 1]
                dyy = p[cy + 1, cx] - 2 * p[cy, cx] + p[cy - 1, cx]
                dxy = 0.25 * (p[cy + 1, cx + 1] - p[cy - 1, cx + 1] - p[cy + 1, cx - 1] + p[cy - 1, cx - 1])
                det = dxx * dyy - dxy * dxy
                if abs(det) > 1e-12 and dxx < 0 and dyy < 0:
                    ox = -(dyy * dx - dxy * dy) / det
                    oy = -(dxx * dy - dxy * dx) / det
                    if abs(ox) <= 1.0 and abs(oy) <= 1.0:
                        x += ox
                        y += oy
            coords[b, j] = (x, y)
    coords = heatmap_to_input(coords, stride)
    if not batched:
        return coords[0], scores[0]
    return coords, scores


def flip_back(heatmaps: np.ndarray, flip_index: np.ndarray = FLIP_INDEX) -> np.ndarray:
    """Undo a horizontal image flip on predicted heatmaps: mirror the maps and swap left/right."""
    hm = np.asarray(heatmaps)
    return hm[..., flip_index, :, ::-1].copy()


def flip_keypoints(keypoints: np.ndarray, width: float, flip_index: np.ndarray = FLIP_INDEX) -> np.ndarray:
    """Mirror keypoints (..., K, 2+) in an image of ``width`` pixels and swap left/right."""
    kp = np.array(keypoints, dtype=np.float32, copy=True)
    kp[..., 0] = (width - 1) - kp[..., 0]
    return kp[..., flip_index, :]
