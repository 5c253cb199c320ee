"""Crop -> network input normalisation, one implementation for training and serving.

The model sees ``(rgb / 255 - mean) / std`` per channel (and, for RGB-D models, depth in mm
standardised with missing readings kept at 0). Training (``gaitpose.train.dataset``) and the
runtime (``gaitpose.infer.pose``) call the same functions here, so a crop normalises to the
same bits in both. numpy and OpenCV (both sides have them; no torch).
"""

from __future__ import annotations

import cv2
import numpy as np

from gaitpose.modelmeta import ModelMeta

__all__ = ["normalise_depth", "normalise_rgb", "rgb_normaliser"]


def rgb_normaliser(meta: ModelMeta) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset), each (3, 1, 1): the normalisation folded into one multiply-add."""
    mean = np.asarray(meta.mean, dtype=np.float32)[:3].reshape(-1, 1, 1)
    std = np.asarray(meta.std, dtype=np.float32)[:3].reshape(-1, 1, 1)
    return (1.0 / (255.0 * std)).astype(np.float32), (-mean / std).astype(np.float32)


def normalise_rgb(
    patch: np.ndarray, meta: ModelMeta, normaliser: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """HWC uint8 RGB -> CHW float32 network input; pass a cached :func:`rgb_normaliser` in loops."""
    scale, offset = normaliser if normaliser is not None else rgb_normaliser(meta)
    if patch.dtype == np.uint8 and patch.ndim == 3 and patch.shape[2] == 3:
        # A uint8 input has 256 values per channel: look the normalised value up instead of computing
        # it per pixel. The table is the same float32 multiply-add, so the bits are identical, at
        # under half the cost (this runs for every crop and every localiser thumbnail). OpenCV's LUT
        # does the three channels in one call without the GIL, so the decoder thread that waits for
        # it between frames is not held up by numpy's per-channel indexing.
        lut = np.arange(256, dtype=np.float32)[:, None] * scale.reshape(1, -1) + offset.reshape(1, -1)
        return np.ascontiguousarray(cv2.LUT(patch, lut.reshape(256, 1, 3)).transpose(2, 0, 1))
    x = patch.transpose(2, 0, 1).astype(np.float32)
    x *= scale
    x += offset
    return x


def normalise_depth(dpatch: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """Depth crop in mm -> (1, H, W) float32; missing readings (0) stay 0."""
    d = np.where(dpatch > 0, (dpatch - meta.depth_mean_mm) / meta.depth_std_mm, 0.0)
    return d[None].astype(np.float32)
