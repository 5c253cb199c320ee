"""Marker-to-keypoint mapping: motion-capture markers (C3D, TRC) -> gaitpose's 21 keypoints in 3D.

Why: a gait lab's trials carry markers (Plug-in Gait's LASI/LKNE/LANK/LHEE/LTOE, or sets with
lateral and medial knee and malleolus markers), markerless tools export joint centres (Pose2Sim /
Sports2D ``RHip``/``RKnee``/``RBigToe``, OpenCap ``r_knee_study``), and the gait analysis wants
the same 21 keypoints as the video path. A mapping says, for each keypoint, which marker (or the
mean of which markers) stands for it. Default sets are tried in turn and the one that explains the
most keypoints wins; ``--markers map.yaml`` gives a lab's own set:

.. code-block:: yaml

    left_knee: [LLEK, LMEK]   # mean of lateral and medial epicondyle
    left_ankle: LANK
    left_hip: harrington      # hip joint centre from the four pelvis markers (see below)
    pelvis: [LASI, RASI, LPSI, RPSI]   # markers for the Harrington regression, in this order

Hip joint centres are not markers. Where a set has the four pelvis markers (ASIS and PSIS on both
sides) they are estimated with the regression of Harrington et al. (J Biomech 2007, 40:595-602),
from pelvis width (inter-ASIS distance) and depth (mid-ASIS to mid-PSIS): in the pelvis frame
(x forward, y left, z up, origin mid-ASIS) HJC = (-0.24 PD - 9.9, +-(0.33 PW + 7.3), -0.30 PW - 10.9) mm.
Matching of marker names is case-insensitive and ignores a ``Subject:`` prefix (Vicon Nexus).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitpose.errors import InputError
from gaitpose.skeleton import INDEX, KEYPOINTS

__all__ = [
    "DEFAULT_MARKER_SETS",
    "MarkerMapping",
    "apply_mapping",
    "choose_mapping",
    "harrington_hjc",
    "load_mapping",
    "normalise_label",
    "pelvis_landmarks",
]

HARRINGTON = "harrington"
REQUIRED: tuple[str, ...] = tuple(f"{s}_{j}" for s in ("left", "right") for j in ("hip", "knee", "ankle"))
"""Keypoints without which there is no gait analysis (events need hips and ankles; angles the knees)."""


@dataclass(frozen=True)
class MarkerMapping:
    """keypoint name -> tuple of marker names to average (or ``("harrington",)``); ``pelvis`` markers."""

    name: str
    points: Mapping[str, tuple[str, ...]]
    pelvis: tuple[str, str, str, str] | None = None  # LASI, RASI, LPSI, RPSI

    def markers_needed(self) -> set[str]:
        out = {m for ms in self.points.values() for m in ms if m != HARRINGTON}
        return out | set(self.pelvis or ())


def _lr(template: Mapping[str, Sequence[str] | str], left: str = "L", right: str = "R") -> dict[str, tuple[str, ...]]:
    """Expand ``{"knee": "{s}KNE"}`` into left/right keypoints with the side prefix filled in."""
    out: dict[str, tuple[str, ...]] = {}
    for joint, names in template.items():
        seq = (names,) if isinstance(names, str) else tuple(names)
        for side, p in (("left", left), ("right", right)):
            out[f"{side}_{joint}"] = tuple(n.format(s=p) for n in seq)
    return out


DEFAULT_MARKER_SETS: tuple[MarkerMapping, ...] = (
    # Vicon Plug-in Gait (lower body + upper body markers): lateral knee and ankle markers.
    MarkerMapping(
        "plug-in-gait",
        {**_lr({"hip": HARRINGTON, "knee": "{s}KNE", "ankle": "{s}ANK", "heel": "{s}HEE", "toe": "{s}TOE",
                "shoulder": "{s}SHO", "elbow": "{s}ELB", "wrist": ["{s}WRA", "{s}WRB"]}),
         "nose": ("LFHD", "RFHD")},
        ("LASI", "RASI", "LPSI", "RPSI"),
    ),
    # Sets with lateral and medial epicondyle / malleolus markers (e.g. IfB / CAST-style, gaitalytics'
    # test trials): joint centres are the mid-points; trunk from C7 and the jugular notch.
    MarkerMapping(
        "lateral-medial",
        {**_lr({"hip": HARRINGTON, "knee": ["{s}LEK", "{s}MEK"], "ankle": ["{s}LM", "{s}MM"], "heel": "{s}HEE",
                "toe": "{s}MT2"}),
         "left_shoulder": ("C7", "JN"), "right_shoulder": ("C7", "JN")},
        ("LASIS", "RASIS", "LPSIS", "RPSIS"),
    ),
    # Pose2Sim / Sports2D / OpenPose (HALPE_26, BODY_25) TRC exports: joint centres by name.
    MarkerMapping(
        "pose2sim",
        {**_lr({"hip": "{s}Hip", "knee": "{s}Knee", "ankle": "{s}Ankle", "heel": "{s}Heel", "toe": "{s}BigToe",
                "shoulder": "{s}Shoulder", "elbow": "{s}Elbow", "wrist": "{s}Wrist", "eye": "{s}Eye",
                "ear": "{s}Ear"}),
         "nose": ("Nose",)},
    ),
    # OpenCap's marker set (video-based, exported as TRC).
    MarkerMapping(
        "opencap",
        {**_lr({"knee": ["{s}_knee_study", "{s}_mknee_study"], "ankle": ["{s}_ankle_study", "{s}_mankle_study"],
                "heel": "{s}_calc_study", "toe": "{s}_toe_study", "shoulder": "{s}_shoulder_study",
                "hip": HARRINGTON}, left="L", right="r"),
         },
        ("L.ASIS_study", "r.ASIS_study", "L.PSIS_study", "r.PSIS_study"),
    ),
    # Joint centres already named like gaitpose's keypoints (e.g. exported from a markerless system).
    MarkerMapping("keypoint-names", {k: (k,) for k in KEYPOINTS}),
)


def normalise_label(label: str) -> str:
    """Case-insensitive label without a ``Subject:`` prefix or surrounding blanks."""
    return label.split(":")[-1].strip().lower()


def _index(labels: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, lab in enumerate(labels):
        out.setdefault(normalise_label(lab), i)
    return out


def _covered(m: MarkerMapping, idx: Mapping[str, int]) -> set[str]:
    have_pelvis = m.pelvis is not None and all(normalise_label(p) in idx for p in m.pelvis)
    out = set()
    for kp, names in m.points.items():
        if names == (HARRINGTON,):
            if have_pelvis:
                out.add(kp)
        elif all(normalise_label(n) in idx for n in names):
            out.add(kp)
    return out


def choose_mapping(labels: Sequence[str], sets: Sequence[MarkerMapping] = DEFAULT_MARKER_SETS) -> MarkerMapping:
    """The set that maps the most required keypoints, then the most keypoints, from ``labels``."""
    idx = _index(labels)
    return max(sets, key=lambda m: (len(_covered(m, idx) & set(REQUIRED)), len(_covered(m, idx))))


def missing_required(mapping: MarkerMapping, labels: Sequence[str]) -> list[str]:
    """Required keypoints the mapping cannot build from ``labels``, with the markers it would need."""
    idx = _index(labels)
    cov = _covered(mapping, idx)
    out = []
    for kp in REQUIRED:
        if kp in cov:
            continue
        names = mapping.points.get(kp, ())
        need = list(mapping.pelvis or ()) if names == (HARRINGTON,) else list(names)
        lacking = [n for n in need if normalise_label(n) not in idx]
        out.append(f"{kp} ({'/'.join(lacking) or 'not mapped'})")
    return out


def load_mapping(path: str | os.PathLike[str]) -> MarkerMapping:
    """A ``--markers`` YAML file -> :class:`MarkerMapping`; a one-line :class:`InputError` when it is wrong."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(p, "marker mapping file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(p, f"not a YAML file ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not data:
        raise InputError(p, "a marker mapping must be a YAML mapping of keypoint: marker(s)")
    pelvis = data.pop("pelvis", None)
    points: dict[str, tuple[str, ...]] = {}
    for kp, v in data.items():
        if kp not in INDEX:
            raise InputError(p, f"unknown keypoint {kp!r} (expected one of: {', '.join(KEYPOINTS)}, pelvis)")
        seq = (v,) if isinstance(v, str) else v
        if not isinstance(seq, (list, tuple)) or not seq or not all(isinstance(s, str) and s for s in seq):
            raise InputError(p, f"{kp}: expected a marker name or a list of marker names, got {v!r}")
        points[kp] = tuple(seq)
    if pelvis is not None and (not isinstance(pelvis, list) or len(pelvis) != 4
                               or not all(isinstance(s, str) for s in pelvis)):
        raise InputError(p, "pelvis: expected four marker names [LASIS, RASIS, LPSIS, RPSIS]")
    if any(v == (HARRINGTON,) for v in points.values()) and pelvis is None:
        raise InputError(p, "'harrington' hips need 'pelvis: [LASIS, RASIS, LPSIS, RPSIS]'")
    return MarkerMapping(p.stem, points, tuple(pelvis) if pelvis else None)  # type: ignore[arg-type]


def harrington_hjc(lasi: np.ndarray, rasi: np.ndarray, lpsi: np.ndarray, rpsi: np.ndarray,
                   mm_per_unit: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Left and right hip joint centres (T, 3) from the pelvis markers (Harrington et al. 2007).

    ``mm_per_unit`` converts the data's units to mm for the regression's constant terms.
    """
    mid_asis = (lasi + rasi) / 2
    mid_psis = (lpsi + rpsi) / 2
    y = lasi - rasi
    pw = np.linalg.norm(y, axis=-1, keepdims=True)
    y = y / pw
    fwd = mid_asis - mid_psis
    x = fwd - (fwd * y).sum(-1, keepdims=True) * y
    pd = np.linalg.norm(fwd, axis=-1, keepdims=True)
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    z = np.cross(x, y)
    c = 1.0 / mm_per_unit  # mm -> data units
    ox = -0.24 * pd - 9.9 * c
    oy = 0.33 * pw + 7.3 * c
    oz = -0.30 * pw - 10.9 * c
    left = mid_asis + ox * x + oy * y + oz * z
    right = mid_asis + ox * x - oy * y + oz * z
    return left, right


def pelvis_landmarks(points: np.ndarray, labels: Sequence[str], mapping: MarkerMapping) -> np.ndarray | None:
    """(T, 2, 3) mid-ASIS and mid-PSIS of the mapping's four pelvis markers; None without them.

    Why: the line from mid-PSIS to mid-ASIS gives the pelvis's tilt, the reference of clinical hip
    flexion (see :func:`gaitpose.gait.angles.sagittal_angles`); a video skeleton has no such line.
    """
    if mapping.pelvis is None:
        return None
    idx = _index(labels)
    ii = [idx.get(normalise_label(n)) for n in mapping.pelvis]
    if any(i is None for i in ii):
        return None
    P = np.asarray(points, dtype=np.float64)
    lasi, rasi, lpsi, rpsi = (P[:, i] for i in ii)
    return np.stack([(lasi + rasi) / 2, (lpsi + rpsi) / 2], axis=1)


def apply_mapping(points: np.ndarray, labels: Sequence[str], mapping: MarkerMapping,
                  mm_per_unit: float = 1.0) -> np.ndarray:
    """Marker trajectories (T, M, 3) with ``labels`` -> keypoints (T, 21, 3); NaN where not mapped or missing."""
    idx = _index(labels)
    P = np.asarray(points, dtype=np.float64)
    out = np.full((P.shape[0], len(KEYPOINTS), 3), np.nan)

    def get(name: str) -> np.ndarray | None:
        i = idx.get(normalise_label(name))
        return None if i is None else P[:, i]

    hips = None
    if mapping.pelvis is not None:
        pel = [get(n) for n in mapping.pelvis]
        if all(p is not None for p in pel):
            hips = harrington_hjc(*pel, mm_per_unit=mm_per_unit)  # type: ignore[misc]
    for kp, names in mapping.points.items():
        if names == (HARRINGTON,):
            if hips is not None:
                out[:, INDEX[kp]] = hips[0] if kp.startswith("left") else hips[1]
            continue
        arrs = [get(n) for n in names]
        if any(a is None for a in arrs):
            continue
        out[:, INDEX[kp]] = np.mean(np.stack(arrs), axis=0)  # NaN if any marker is missing in a frame
    return out
