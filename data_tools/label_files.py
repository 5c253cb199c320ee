"""What pseudo-labelling reads and writes: its options and resume key, the frame store, the COCO file.

Why apart from :mod:`data_tools.label` (which labels one recording): the batch runner, the CLI
and ``gaitpose specialise`` use these to plan, resume and merge a run without the labeller.
A recording's part is reused only when :func:`recording_fingerprint` (its manifest rows, the
options and :data:`PART_VERSION`) is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gaitpose.errors import InputError
from gaitpose.fsutil import write_json_atomic
from gaitpose.labels import relative_root
from gaitpose.manifest import read_manifest
from gaitpose.skeleton import coco_category

__all__ = [
    "PART_VERSION",
    "LabelOptions",
    "group_by_recording",
    "load_frame_store",
    "merge_parts",
    "read_image",
    "recording_fingerprint",
    "write_labels",
]

PART_VERSION = 3  # 2: subject path by motion and appearance; 3: teacher-confirmed seed when nobody travels


@dataclass
class LabelOptions:
    """Everything that changes the labels of a recording (hashed into the resume fingerprint)."""

    teacher: str = "mediapipe"
    teacher_config: str | None = None
    roi: str | None = None  # "X,Y,W,H": force the subject region
    mirror: bool = True
    agree_px: float | None = None  # absolute disagreement threshold; overrides agree_frac
    agree_frac: float = 0.05  # of the subject's keypoint-box height
    stride: int = 1
    min_keypoints: int = 8
    detect_interval_ms: float = 333.0  # HOG sampling period for subject selection
    detect_height: int = 270
    min_track_len: int = 3
    teacher_detect: bool = True  # also run the teacher on whole sampled frames as a second detector
    padding: float = 1.3  # crop padding around the subject box
    gate_frac: float = 0.6  # max centre offset from the expected box, in expected-box heights

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def group_by_recording(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(str(row["recording"]), []).append(row)
    for rec_rows in out.values():
        rec_rows.sort(key=lambda r: int(r["frame_index"]))
    return out


def load_frame_store(frames_dir: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """Manifest rows grouped by recording; a clear error when the folder is not a frame store."""
    frames_dir = Path(frames_dir)
    if not frames_dir.is_dir():
        raise InputError(frames_dir, "frame store folder does not exist")
    try:
        rows = read_manifest(frames_dir)
    except ValueError as exc:
        raise InputError(None, str(exc)) from None
    if not rows:
        raise InputError(frames_dir / "manifest.jsonl", "no frames listed (run `gaitpose-data extract` first)")
    return group_by_recording(rows)


def read_image(path: Path) -> np.ndarray:
    """BGR image or a one-line InputError (zero-byte, truncated or missing JPEGs)."""
    if not path.exists():
        raise InputError(path, "frame listed in the manifest does not exist")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise InputError(path, "cannot decode image (empty or corrupt)")
    return img


def recording_fingerprint(rows: list[dict[str, Any]], opts: LabelOptions) -> str:
    """Changes when the recording's manifest rows or the labelling options change (resume key)."""
    h = hashlib.sha256(opts.fingerprint().encode())
    for r in rows:
        h.update(json.dumps(r, sort_keys=True).encode())
    h.update(str(PART_VERSION).encode())
    return h.hexdigest()[:20]


def merge_parts(parts: list[dict[str, Any]], out_path: str | os.PathLike[str], frames_dir: str | os.PathLike[str],
                teacher_name: str, opts: LabelOptions, failed: dict[str, str] | None = None) -> dict[str, Any]:
    """One COCO file from per-recording parts; ids in recording, frame order (deterministic)."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    recs: dict[str, Any] = {}
    for part in sorted(parts, key=lambda p: p["recording"]):
        ids: dict[int, int] = {}
        for img in part["images"]:
            img = dict(img)
            img["id"] = len(images) + 1
            ids[int(img["frame_index"])] = img["id"]
            images.append(img)
        for ann in part["annotations"]:
            ann = dict(ann)
            ann["image_id"] = ids[int(ann.pop("frame_index"))]
            ann["id"] = len(annotations) + 1
            annotations.append(ann)
        recs[part["recording"]] = part["stats"]
    info: dict[str, Any] = {
        "description": "gaitpose pseudo-labels",
        "frames_root": relative_root(out_path, frames_dir),
        "teacher": teacher_name,
        "options": asdict(opts),
        "date_created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "recordings": recs,
    }
    if failed:
        info["failed_recordings"] = dict(failed)
    return {
        "info": info,
        "images": images,
        "annotations": annotations,
        "categories": [coco_category()],
    }


def write_labels(data: dict[str, Any], out_path: str | os.PathLike[str]) -> None:
    write_json_atomic(out_path, data)
