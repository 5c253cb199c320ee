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


def _local_log_blur(maps: np.ndarray, px: np.ndarray, py: np.ndarray, kernel: int) -> np.ndarray:
    """Log of the Gaussian-blurred maps (zero border, OpenCV's kernel) at the 3 x 3 cells around each
    argmax (px, py), neighbours off the map clamped to its edge: (M, 3, 3) float64.

    DARK needs the blurred map only there, so only those 9 cells are blurred (a few hundred
    multiply-adds per map instead of a whole-map blur: the whole-map version cost about as much as a
    quarter of the student's network time per crop). Same values as blurring the whole map with
    ``cv2.GaussianBlur(..., BORDER_CONSTANT)`` and edge-padding its log.
    """
    if kernel > 1 and kernel % 2 == 0:
        raise ValueError(f"blur kernel must be odd, got {kernel}")
    r = max(0, int(kernel) // 2)
    g = cv2.getGaussianKernel(2 * r + 1, 0).ravel().astype(np.float64)  # the kernel GaussianBlur uses
    m_cnt, h, w = maps.shape
    padded = maps
    if r:  # zero border (np.pad is several times slower for these small maps)
        padded = np.zeros((m_cnt, h + 2 * r, w + 2 * r), maps.dtype)
        padded[:, r : r + h, r : r + w] = maps
    offs = np.arange(-1, 2)
    ys = np.clip(py[:, None] + offs, 0, h - 1)[:, :, None] + np.arange(2 * r + 1)  # (M, 3, K) padded rows
    xs = np.clip(px[:, None] + offs, 0, w - 1)[:, :, None] + np.arange(2 * r + 1)  # (M, 3, K) padded cols
    m = np.arange(m_cnt)[:, None, None, None, None]
    vals = padded[m, ys[:, :, None, :, None], xs[:, None, :, None, :]].astype(np.float64)  # (M, 3, 3, K, K)
    blurred = (vals @ g) @ g  # separable: along x, then along y
    return np.log(np.maximum(blurred, 1e-10))


DECODE_METHODS: tuple[str, ...] = ("dark", "argmax", "quarter", "soft")
"""Heatmap decoders ``decode_heatmaps`` offers: DARK (default), plain argmax, argmax plus a quarter-cell
shift towards the higher neighbour (SimpleBaseline), and a local soft-argmax (``benchmarks.student_precision``
compares them by feet PCK and angle error)."""


def decode_heatmaps(
    heatmaps: np.ndarray, stride: float, blur_kernel: int = 5, method: str = "dark", window: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Decode (K, H, W) or (N, K, H, W) heatmaps into input-crop coordinates and confidences.

    Argmax followed by DARK refinement (Zhang et al. 2020): the log of a (blurred) Gaussian is a
    quadratic, so one Newton step from the argmax lands on the sub-pixel peak. Returns
    (coords (..., K, 2) in input pixels, scores (..., K) = the heatmap maximum).

    All maps are processed at once (the blur evaluated only at the 3x3 cells around each argmax,
    vectorised Newton step): this runs for every frame on the serving path. DARK's rescaling of the
    blurred map to the original peak height is a constant in log space and cancels in the
    derivatives, so it is not needed here.

    ``method`` picks another refinement of the argmax (scores are the same for all): "argmax" (none,
    cell centres only), "quarter" (a quarter cell towards the higher neighbour on each axis) or
    "soft" (the centroid of the positive heatmap values in a ``window`` x ``window`` square around
    the argmax, a local integral regression). They exist so the choice of decoder is measured, not
    assumed; serving, training and evaluation all use the default.
    """
    if method not in DECODE_METHODS:
        raise ValueError(f"unknown heatmap decoder {method!r}; expected one of {', '.join(DECODE_METHODS)}")
    hm = np.asarray(heatmaps, dtype=np.float32)
    batched = hm.ndim == 4
    if not batched:
        hm = hm[None]
    n, k, h, w = hm.shape
    flat = hm.reshape(n * k, h * w)
    idx = np.argmax(flat, axis=1) if flat.size else np.zeros(n * k, dtype=np.int64)
    py, px = np.divmod(idx, w) if w else (idx, idx)
    scores = flat[np.arange(n * k), idx] if flat.size else np.zeros(n * k, np.float32)
    x, y = px.astype(np.float64), py.astype(np.float64)
    if method in ("quarter", "soft") and n * k:
        x, y = _refine_local(hm.reshape(n * k, h, w), px, py, method, window)
    elif method == "dark" and h >= 3 and w >= 3 and n * k:
        logm = _local_log_blur(hm.reshape(n * k, h, w), px, py, blur_kernel)  # (M, 3, 3) around the argmax

        def at(dy: int, dx: int) -> np.ndarray:
            return logm[:, 1 + dy, 1 + dx]

        c = at(0, 0)
        dx = 0.5 * (at(0, 1) - at(0, -1))
        dy = 0.5 * (at(1, 0) - at(-1, 0))
        dxx = at(0, 1) - 2 * c + at(0, -1)
        dyy = at(1, 0) - 2 * c + at(-1, 0)
        dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
        det = dxx * dyy - dxy * dxy
        ok = (scores > 0) & (np.abs(det) > 1e-12) & (dxx < 0) & (dyy < 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ox = np.where(ok, -(dyy * dx - dxy * dy) / det, 0.0)
            oy = np.where(ok, -(dxx * dy - dxy * dx) / det, 0.0)
        ok &= (np.abs(ox) <= 1.0) & (np.abs(oy) <= 1.0)
        x = np.where(ok, x + ox, x)
        y = np.where(ok, y + oy, y)
    coords = np.stack([x, y], axis=-1).astype(np.float32).reshape(n, k, 2)
    scores = np.asarray(scores, dtype=np.float32).reshape(n, k)
    coords = heatmap_to_input(coords, stride)
    if not batched:
        return coords[0], scores[0]
    return coords, scores


def _refine_local(
    maps: np.ndarray, px: np.ndarray, py: np.ndarray, method: str, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Quarter-offset or local soft-argmax refinement of argmax cells (px, py) of (M, H, W) maps."""
    m_idx = np.arange(len(maps))
    h, w = maps.shape[1:]
    if method == "quarter":
        def val(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
            return maps[m_idx, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]

        sx = np.sign(val(py, px + 1) - val(py, px - 1)) * ((px > 0) & (px < w - 1))
        sy = np.sign(val(py + 1, px) - val(py - 1, px)) * ((py > 0) & (py < h - 1))
        return px + 0.25 * sx, py + 0.25 * sy
    r = max(1, int(window) // 2)
    offs = np.arange(-r, r + 1)
    yy = py[:, None, None] + offs[None, :, None]  # (M, 2r+1, 1)
    xx = px[:, None, None] + offs[None, None, :]  # (M, 1, 2r+1)
    inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    vals = maps[m_idx[:, None, None], np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)].astype(np.float64)
    wts = np.where(inside, np.maximum(vals, 0.0), 0.0)
    total = wts.sum(axis=(1, 2))
    ok = total > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        cx = np.where(ok, (wts * xx).sum(axis=(1, 2)) / total, px)
        cy = np.where(ok, (wts * yy).sum(axis=(1, 2)) / total, py)
    return cx, cy


def flip_back(heatmaps: np.ndarray, flip_index: np.ndarray = FLIP_INDEX) -> np.ndarray:
    """Undo a horizontal image flip on predicted heatmaps: mirror the maps and swap left/right."""
    hm = np.asarray(heatmaps)
    return hm[..., flip_index, :, ::-1].copy()


def flip_keypoints(keypoints: np.ndarray, width: float, flip_index: np.ndarray = FLIP_INDEX) -> np.ndarray:
    """Mirror keypoints (..., K, 2+) in an image of ``width`` pixels and swap left/right."""
    kp = np.array(keypoints, dtype=np.float32, copy=True)
    kp[..., 0] = (width - 1) - kp[..., 0]
    return kp[..., flip_index, :]
