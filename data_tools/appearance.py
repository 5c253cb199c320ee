"""A person's appearance: hue/saturation histograms of the torso and their distance.

Why: detections that look alike are the same person, so the subject selection
(:mod:`data_tools.subject`) and the labeller use clothing colour to keep two people apart where
their boxes cross.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["HIST_BINS", "appearance_distance", "appearance_model", "colour_histogram", "torso_region"]

HIST_BINS = (16, 8)  # hue x saturation: clothing colour, mostly independent of brightness


def torso_region(box: np.ndarray) -> np.ndarray:
    """The torso part of a person box (x, y, w, h): the middle 40 % of the width, 22-52 % of the
    height, which is shirt for a standing person in a detector's or a keypoint box alike."""
    x, y, w, h = (float(v) for v in box)
    return np.array([x + 0.3 * w, y + 0.22 * h, 0.4 * w, 0.3 * h], dtype=np.float32)


def colour_histogram(image_bgr: np.ndarray, region: np.ndarray, min_pixels: int = 64) -> np.ndarray | None:
    """L1-normalised hue/saturation histogram of a region (x, y, w, h) of a BGR image; None when
    the region is (almost) outside the image. Dark pixels (V < 32) carry no reliable hue and are
    left out."""
    h_img, w_img = image_bgr.shape[:2]
    x0, y0 = max(0, int(region[0])), max(0, int(region[1]))
    x1, y1 = min(w_img, int(np.ceil(region[0] + region[2]))), min(h_img, int(np.ceil(region[1] + region[3])))
    if (x1 - x0) * (y1 - y0) < min_pixels:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(image_bgr[y0:y1, x0:x1]), cv2.COLOR_BGR2HSV)
    mask = (hsv[..., 2] >= 32).astype(np.uint8)
    if int(mask.sum()) < min_pixels // 2:
        mask = None  # a black shirt: its (dark) pixels are its colour
    hist = cv2.calcHist([hsv], [0, 1], mask, list(HIST_BINS), [0, 180, 0, 256]).astype(np.float32)
    total = float(hist.sum())
    return hist / total if total > 0 else None


def appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two normalised histograms: 0 identical, 1 disjoint."""
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def appearance_model(hists: list[np.ndarray | None]) -> np.ndarray | None:
    """Per-bin median of a person's histograms (renormalised): robust to a minority of wrong ones."""
    ok = [h for h in hists if h is not None]
    if not ok:
        return None
    med = np.median(np.stack(ok), axis=0).astype(np.float32)
    total = float(med.sum())
    return med / total if total > 0 else np.mean(np.stack(ok), axis=0).astype(np.float32)
