"""The keypoint set: the single source of truth for names, order, flips, links and OKS sigmas.

gaitpose predicts the 17 COCO body keypoints in COCO order followed by four foot points
(heels and big toes). Heels and toes are what gait analysis needs (heel strike, toe off,
ankle angle) and what COCO-17 lacks.
"""

from __future__ import annotations

import numpy as np

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
FOOT_KEYPOINTS: tuple[str, ...] = ("left_heel", "right_heel", "left_toe", "right_toe")
KEYPOINTS: tuple[str, ...] = COCO_KEYPOINTS + FOOT_KEYPOINTS
NUM_KEYPOINTS = len(KEYPOINTS)  # 21
INDEX: dict[str, int] = {name: i for i, name in enumerate(KEYPOINTS)}

FOOT_INDICES: tuple[int, ...] = tuple(INDEX[n] for n in ("left_ankle", "right_ankle", *FOOT_KEYPOINTS))
"""Ankles, heels and toes: the points gait events depend on, reported separately in evaluations."""


def _pairs() -> tuple[tuple[int, int], ...]:
    out = []
    for i, name in enumerate(KEYPOINTS):
        if name.startswith("left_"):
            out.append((i, INDEX["right_" + name[len("left_") :]]))
    return tuple(out)


FLIP_PAIRS: tuple[tuple[int, int], ...] = _pairs()


def flip_index() -> np.ndarray:
    """Permutation that maps each keypoint to its mirror partner (self for the nose)."""
    perm = np.arange(NUM_KEYPOINTS)
    for a, b in FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return perm


FLIP_INDEX: np.ndarray = flip_index()

SKELETON_NAMES: tuple[tuple[str, str], ...] = (
    ("left_ankle", "left_knee"),
    ("left_knee", "left_hip"),
    ("right_ankle", "right_knee"),
    ("right_knee", "right_hip"),
    ("left_hip", "right_hip"),
    ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"),
    ("left_shoulder", "right_shoulder"),
    ("left_shoulder", "left_elbow"),
    ("right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist"),
    ("right_elbow", "right_wrist"),
    ("left_eye", "right_eye"),
    ("nose", "left_eye"),
    ("nose", "right_eye"),
    ("left_eye", "left_ear"),
    ("right_eye", "right_ear"),
    ("left_ear", "left_shoulder"),
    ("right_ear", "right_shoulder"),
    ("left_ankle", "left_heel"),
    ("right_ankle", "right_heel"),
    ("left_heel", "left_toe"),
    ("right_heel", "right_toe"),
    ("left_ankle", "left_toe"),
    ("right_ankle", "right_toe"),
)
SKELETON: tuple[tuple[int, int], ...] = tuple((INDEX[a], INDEX[b]) for a, b in SKELETON_NAMES)

# COCO's per-keypoint OKS sigmas for the body, then COCO-WholeBody's foot sigmas
# (heel and big toe, taken as published, including their left/right asymmetry).
OKS_SIGMAS: np.ndarray = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89],
    dtype=np.float64,
) / 10.0
OKS_SIGMAS = np.concatenate([OKS_SIGMAS, np.array([0.066, 0.094, 0.068, 0.092])])

# Upper and lower body, for half-body augmentation.
UPPER_BODY: tuple[int, ...] = tuple(range(0, 11))
LOWER_BODY: tuple[int, ...] = tuple(range(11, NUM_KEYPOINTS))

# --- mappings from other keypoint sets -------------------------------------------------------

BLAZEPOSE33_TO_GAITPOSE: tuple[int, ...] = (
    0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28,  # COCO-17
    29, 30, 31, 32,  # left_heel, right_heel, left_foot_index, right_foot_index
)
"""For each gaitpose keypoint, the BlazePose-33 landmark index it comes from."""

HALPE26_TO_GAITPOSE: tuple[int, ...] = (
    *range(17),  # Halpe-26 starts with COCO-17 in COCO order
    24, 25,  # left_heel, right_heel
    20, 21,  # left_big_toe, right_big_toe
)
"""For each gaitpose keypoint, the Halpe-26 (AlphaPose / RTMPose-Halpe) index it comes from."""

SOURCE_LAYOUTS: dict[str, tuple[int, ...]] = {
    "blazepose33": BLAZEPOSE33_TO_GAITPOSE,
    "halpe26": HALPE26_TO_GAITPOSE,
    "gaitpose21": tuple(range(NUM_KEYPOINTS)),
}
SOURCE_SIZES: dict[str, int] = {"blazepose33": 33, "halpe26": 26, "gaitpose21": NUM_KEYPOINTS}


def convert_keypoints(points: np.ndarray, layout: str) -> np.ndarray:
    """Re-order keypoints of another model's layout into gaitpose's 21 (last axis kept).

    ``points`` has shape (..., K_src, C); the result has shape (..., 21, C).
    """
    try:
        index = SOURCE_LAYOUTS[layout]
    except KeyError:
        raise ValueError(f"unknown keypoint layout {layout!r}; known: {sorted(SOURCE_LAYOUTS)}") from None
    points = np.asarray(points)
    if points.shape[-2] != SOURCE_SIZES[layout]:
        raise ValueError(
            f"layout {layout!r} has {SOURCE_SIZES[layout]} keypoints, got array of shape {points.shape}"
        )
    return points[..., list(index), :]


def coco_category() -> dict:
    """The COCO ``categories`` entry for gaitpose labels (1-based skeleton, as COCO uses)."""
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(KEYPOINTS),
        "skeleton": [[a + 1, b + 1] for a, b in SKELETON],
    }
