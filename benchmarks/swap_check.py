"""Leg PCK@0.1 against teacher labels before and after the leg-swap correction, per video and model.

``python -m benchmarks.swap_check --labels LABELS.json VIDEO [VIDEO ...] [--models M ...]``

LABELS.json: ``gaitpose-data label`` output (COCO, images carry ``recording`` and ``frame_index``)
or the tests' ``teacher_labels_clips.json`` (``clips``: name -> frames). Each video is tracked as
``gaitpose analyze`` tracks it (localiser + tracker, one ORT thread); the knee/ankle/heel/toe PCK
is printed raw and after :func:`gaitpose.gait.swap.fix_left_right_swaps`, with the frames swapped.
The labels come from the same network family as the general model, so they say where a correction
departs from the teacher, not where it is right; read the swapped frames' trajectories to judge.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gaitpose.gait.swap import fix_left_right_swaps
from gaitpose.infer.blazepose import load_pose_estimator
from gaitpose.infer.localizer import OnnxLocalizer
from gaitpose.infer.track import track_video
from gaitpose.io import open_recording
from gaitpose.registry import LOCALIZER_MODEL, POSE_MODEL, STUDENT_POSE_MODEL, default_model_dir
from gaitpose.skeleton import KEYPOINTS

LEGS = [i for i, n in enumerate(KEYPOINTS) if any(p in n for p in ("knee", "ankle", "heel", "toe"))]


def load_labels(path: Path, name: str) -> list[tuple[int, np.ndarray, list[float]]]:
    d = json.loads(path.read_text())
    if "clips" in d:
        return [(int(lab["frame"]), np.array([[np.nan] * 2 if p is None else p for p in lab["keypoints"]], float),
                 lab["bbox"]) for lab in d["clips"].get(name + ".mp4", d["clips"].get(name, []))]
    imgs = {im["id"]: im for im in d["images"] if im.get("recording") == name}
    out = []
    for a in d["annotations"]:
        im = imgs.get(a["image_id"])
        if im is not None:
            kp = np.array(a["keypoints"], float).reshape(-1, 3)
            out.append((int(im["frame_index"]), np.where(kp[:, 2:3] > 0, kp[:, :2], np.nan), a["bbox"]))
    return out


def leg_pck(kp: np.ndarray, labels: list[tuple[int, np.ndarray, list[float]]]) -> tuple[float, int]:
    hit = total = 0
    for f, g, bb in labels:
        if f >= len(kp):
            continue
        thr = 0.1 * max(bb[2], bb[3])
        for i in LEGS:
            if np.isfinite(g[i]).all():
                total += 1
                hit += bool(np.isfinite(kp[f, i]).all() and np.linalg.norm(kp[f, i] - g[i]) <= thr)
    return hit / max(total, 1), total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--labels", type=Path, required=True)
    models = default_model_dir()
    ap.add_argument("--models", nargs="+", type=Path, default=[models / POSE_MODEL, models / STUDENT_POSE_MODEL])
    a = ap.parse_args()
    loc = OnnxLocalizer(models / LOCALIZER_MODEL, threads=1)
    print("| video | model | labelled leg points | leg PCK@0.1 raw | after correction | frames swapped |")
    print("|---|---|---|---|---|---|")
    for video in a.videos:
        labels = load_labels(a.labels, video.stem)
        if not labels:
            print(f"| {video.name} | | no labels in {a.labels.name} | | | |")
            continue
        for model in a.models:
            est = load_pose_estimator(model, threads=1)
            with open_recording(video) as rec:
                tr = track_video(rec.color_images(1), est, loc, total_frames=rec.num_frames)
            k = np.where(tr.accepted[:, None, None], tr.keypoints, np.nan).astype(np.float64)
            s = np.where(tr.accepted[:, None], tr.scores, 0.0).astype(np.float64)
            fixed, swapped = fix_left_right_swaps(k, s)
            (raw, n), (cor, _) = leg_pck(k, labels), leg_pck(fixed, labels)
            print(f"| {video.name} | {model.name} | {n} | {raw:.3f} | {cor:.3f} | {swapped.tolist()} |", flush=True)


if __name__ == "__main__":
    main()
