"""Training-time augmentation in numpy/cv2: crop jitter, rotation, flip, half-body, colour.

Geometric augmentation only changes the parameters of the *same* affine crop that inference
uses (``gaitpose.geometry``), so training crops never differ from inference crops in
convention, only in the sampled box. Flips are applied to the crop (cheaper than flipping the
frame) and folded into the returned 2x3 matrix, so the matrix still maps frame -> crop pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from gaitpose.geometry import box_to_center_size, keypoints_to_box
from gaitpose.skeleton import LOWER_BODY, UPPER_BODY
from gaitpose.train.config import AugConfig


def half_body_box(
    keypoints: np.ndarray, scores: np.ndarray, rng: np.random.Generator, min_keypoints: int
) -> np.ndarray | None:
    """Box around only the upper or only the lower body, or None when there is too little to crop.

    Teaches the student to cope with people cut by the frame edge (feet outside, close-up
    walking), which clinic videos often show.
    """
    valid = scores > 0
    if int(valid.sum()) < min_keypoints:
        return None
    upper = [i for i in UPPER_BODY if valid[i]]
    lower = [i for i in LOWER_BODY if valid[i]]
    chosen = upper if (rng.random() < 0.5 and len(upper) > 2) or len(lower) < 3 else lower
    if len(chosen) < 3:
        return None
    box = keypoints_to_box(keypoints[chosen])
    if box is None:
        return None
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    w, h = box[2] * 1.5, box[3] * 1.5  # the tight box cuts limbs at the joints
    return np.array([cx - w / 2, cy - h / 2, w, h], dtype=np.float32)


def sample_crop(
    bbox: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    aspect_ratio: float,
    padding: float,
    aug: AugConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Random (centre, size, rotation degrees, flip) for one training crop."""
    box = np.asarray(bbox, dtype=np.float32)
    if aug.half_body_prob > 0 and rng.random() < aug.half_body_prob:
        hb = half_body_box(keypoints, scores, rng, aug.half_body_min_keypoints)
        if hb is not None:
            box = hb
    center, size = box_to_center_size(box, aspect_ratio, padding)
    s = float(np.clip(1.0 + rng.normal() * aug.scale, 1.0 - aug.scale, 1.0 + aug.scale)) if aug.scale > 0 else 1.0
    size = size * s
    if aug.shift > 0:
        center = center + size * rng.uniform(-aug.shift, aug.shift, size=2).astype(np.float32)
    rot = 0.0
    if aug.rotation > 0 and rng.random() < aug.rotation_prob:
        rot = float(np.clip(rng.normal() * aug.rotation, -2 * aug.rotation, 2 * aug.rotation))
    flip = bool(aug.flip_prob > 0 and rng.random() < aug.flip_prob)
    return center.astype(np.float32), size.astype(np.float32), rot, flip


def flip_matrix(width: int) -> np.ndarray:
    """2x3 affine mirroring x in an image of ``width`` pixels (x -> width - 1 - x)."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]], dtype=np.float64)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2x3 matrix equal to applying ``inner`` then ``outer``."""
    a = np.vstack([np.asarray(outer, np.float64), [0.0, 0.0, 1.0]])
    b = np.vstack([np.asarray(inner, np.float64), [0.0, 0.0, 1.0]])
    return (a @ b)[:2]


def colour_jitter(patch: np.ndarray, aug: AugConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation jitter plus occasional blur on an RGB uint8 crop."""
    img = patch.astype(np.float32)
    if aug.brightness > 0:
        img *= rng.uniform(1.0 - aug.brightness, 1.0 + aug.brightness)
    if aug.contrast > 0:
        mean = float(img.mean())
        img = (img - mean) * rng.uniform(1.0 - aug.contrast, 1.0 + aug.contrast) + mean
    if aug.saturation > 0:
        grey = img.mean(axis=2, keepdims=True)
        img = (img - grey) * rng.uniform(1.0 - aug.saturation, 1.0 + aug.saturation) + grey
    out = np.clip(img, 0, 255).astype(np.uint8)
    if aug.blur_prob > 0 and rng.random() < aug.blur_prob:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    return out


def border_cut(
    patch: np.ndarray, kp_crop: np.ndarray, weights: np.ndarray, aug: AugConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate the image border inside the crop; returns (patch, weights) with cut-off labels dropped.

    Why: the training frames rarely show the subject at the frame edge, but every walk in a clinic
    starts and ends there, and a student that never saw a truncated body mislabels the legs exactly
    where the first and last steps happen. The blacked-out part matches what the runtime crop holds
    beyond the frame (constant 0 padding). Labels beyond the cut get weight 0: the teacher's guesses
    for points outside the image are not worth learning.
    """
    if aug.border_cut_prob <= 0 or rng.random() >= aug.border_cut_prob:
        return patch, weights
    h, w = patch.shape[:2]
    pts = kp_crop[(weights > 0) & np.isfinite(kp_crop).all(axis=1)]
    if len(pts) < 2:
        return patch, weights
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    side = rng.choice(3, p=[0.4, 0.4, 0.2])  # left, right, bottom
    frac = rng.uniform(0.0, aug.border_cut_max)
    out, wts = patch.copy(), weights.copy()
    if side == 0:
        cut = int(np.clip(x0 + frac * (x1 - x0), 0, w))
        out[:, :cut] = 0
        wts[kp_crop[:, 0] < cut] = 0.0
    elif side == 1:
        cut = int(np.clip(x1 - frac * (x1 - x0), 0, w))
        out[:, cut:] = 0
        wts[kp_crop[:, 0] >= cut] = 0.0
    else:
        cut = int(np.clip(y1 - frac * (y1 - y0), 0, h))
        out[cut:] = 0
        wts[kp_crop[:, 1] >= cut] = 0.0
    return out, wts
