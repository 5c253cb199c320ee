"""COCO keypoint label files: the contract between labelling, splitting, training and evaluation.

A gaitpose label file is plain COCO keypoints JSON that ``pycocotools.coco.COCO`` loads, with:
  info.frames_root          frame store folder, relative to the JSON's folder (or absolute)
  images[i]                 id, file_name (relative to frames_root), width, height,
                            recording, subject, frame_index, t_ms, and depth_file when depth exists
  annotations[i]            one per labelled image: id, image_id, category_id=1, iscrowd=0,
                            bbox [x,y,w,h] (the subject box), area, num_keypoints,
                            keypoints [x,y,v]*21 (v=2 labelled, v=0 dropped with x=y=0),
                            keypoint_scores [21] (teacher confidence after the agreement rule)
  categories                ``gaitpose.skeleton.coco_category()``

This module reads such files into plain records with numpy arrays (no torch), once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.skeleton import NUM_KEYPOINTS


@dataclass
class PoseRecord:
    """One labelled person in one frame."""

    image_id: int
    image_path: Path
    depth_path: Path | None
    width: int
    height: int
    bbox: np.ndarray  # (4,) x, y, w, h
    keypoints: np.ndarray  # (21, 2) pixels
    scores: np.ndarray  # (21,) teacher confidence, 0 for missing joints
    recording: str
    subject: str | None
    frame_index: int
    ann_id: int


def frames_root(label_path: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """Folder that image file names are relative to."""
    base = Path(label_path).resolve().parent
    root = data.get("info", {}).get("frames_root", ".")
    return (base / root).resolve()


def relative_root(label_path: str | os.PathLike[str], root: str | os.PathLike[str]) -> str:
    """``frames_root`` value to store in a label file written at ``label_path``."""
    try:
        return os.path.relpath(Path(root).resolve(), Path(label_path).resolve().parent)
    except ValueError:  # different drives on Windows
        return str(Path(root).resolve())


def load_coco(label_path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(label_path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: label file does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON label file ({exc})") from None
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(f"{path}: not a COCO keypoints file (no '{key}')")
    return data


def load_records(label_path: str | os.PathLike[str], min_keypoints: int = 1) -> list[PoseRecord]:
    """Parse a gaitpose COCO file into records, resolving image paths once."""
    data = load_coco(label_path)
    root = frames_root(label_path, data)
    images = {img["id"]: img for img in data["images"]}
    records: list[PoseRecord] = []
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        img = images[ann["image_id"]]
        kp = np.asarray(ann["keypoints"], dtype=np.float32).reshape(-1, 3)
        if len(kp) != NUM_KEYPOINTS:
            raise ValueError(f"{label_path}: annotation {ann['id']} has {len(kp)} keypoints, expected {NUM_KEYPOINTS}")
        scores = np.asarray(ann.get("keypoint_scores", (kp[:, 2] > 0).astype(np.float32)), dtype=np.float32)
        scores = np.where(kp[:, 2] > 0, scores, 0.0).astype(np.float32)
        if int((scores > 0).sum()) < min_keypoints:
            continue
        depth = img.get("depth_file")
        records.append(
            PoseRecord(
                image_id=int(img["id"]),
                image_path=root / img["file_name"],
                depth_path=(root / depth) if depth else None,
                width=int(img["width"]),
                height=int(img["height"]),
                bbox=np.asarray(ann["bbox"], dtype=np.float32),
                keypoints=kp[:, :2].copy(),
                scores=scores,
                recording=str(img.get("recording", "")),
                subject=img.get("subject"),
                frame_index=int(img.get("frame_index", 0)),
                ann_id=int(ann["id"]),
            )
        )
    return records
