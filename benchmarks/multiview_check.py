"""Keypoints checked against the geometry of a real multi-camera lab: leave-one-view-out reprojection.

``python -m benchmarks.multiview_check --calib CALIB.qca.txt VIDEO [VIDEO ...] [--models M ...]``

Why: every other accuracy figure in this project compares a model with the teacher's labels, and the
general model *is* the teacher's network. A calibrated multi-camera recording gives a check that no
one here wrote: for each frame and keypoint, triangulate the point from all views but one (DLT on
undistorted points, views whose keypoint score is at least ``--min-score``), project it into the
left-out view with that camera's calibration, and compare with what the model found there. The
error mixes the left-out view's error with the others' and with calibration and synchronisation
error, so it is an upper bound of sorts on a view's 2D error, in the lab's real geometry.

The calibration is a Qualisys ``.qca.txt`` (the format of the Pose2Sim demo's lab), read with the
conventions of Pose2Sim's own converter (``Pose2Sim/calibration.py`` ``read_qca`` and
``calib_qca_fun``: intrinsics in 1/64 sensor units offset by the video field of view, camera pose
in the world turned into OpenCV's world-to-camera transform and rotated by pi about x).
Videos are matched to cameras by name (``cam01`` in the file name -> ``serial="cam01"``) and must be
synchronised frame by frame. Errors are printed in pixels and as a share of the subject's height in
that view (the tracked box's longer side), with PCK at 0.05 and 0.1 of it, per view, for the body
and for the feet (ankles, heels, toes).
"""

from __future__ import annotations

import argparse
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gaitpose.infer.blazepose import load_pose_estimator
from gaitpose.infer.localizer import OnnxLocalizer
from gaitpose.infer.track import track_video
from gaitpose.io import open_recording
from gaitpose.registry import LOCALIZER_MODEL, POSE_MODEL, STUDENT_POSE_MODEL, default_model_dir
from gaitpose.skeleton import KEYPOINTS

FEET = [i for i, n in enumerate(KEYPOINTS) if any(p in n for p in ("ankle", "heel", "toe"))]
BODY = [i for i in range(len(KEYPOINTS)) if i not in FEET]


@dataclass
class Camera:
    name: str
    size: tuple[int, int]
    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray  # world -> camera
    t: np.ndarray

    @property
    def P(self) -> np.ndarray:
        return np.hstack([self.R, self.t[:, None]])


def read_qca(path: Path) -> dict[str, Camera]:
    """Cameras of a Qualisys .qca.txt, as OpenCV pinhole models (metres)."""
    root = ET.parse(path).getroot()
    cams = {}
    rx = np.diag([1.0, -1.0, -1.0])  # rotation by pi about x
    for cam in root.findall("cameras/camera"):
        fov = cam.find("fov_video")
        intr = cam.find("intrinsic")
        tr = cam.find("transform")
        if fov is None or intr is None or tr is None:
            continue
        left, top = float(fov.get("left")), float(fov.get("top"))
        size = (int(float(fov.get("right")) - left + 1), int(float(fov.get("bottom")) - top + 1))
        f = {k: float(v) for k, v in intr.attrib.items() if re.fullmatch(r"[-0-9.eE+]+", v or "")}
        K = np.array([[f["focalLengthU"] / 64, 0.0, f["centerPointU"] / 64 - left],
                      [0.0, f["focalLengthV"] / 64, f["centerPointV"] / 64 - top], [0.0, 0.0, 1.0]])
        dist = np.array([f["radialDistortion1"], f["radialDistortion2"], f["tangentalDistortion1"],
                         f["tangentalDistortion2"]]) / 64
        r = np.array([float(tr.get(f"r{i}{j}")) for i in (1, 2, 3) for j in (1, 2, 3)]).reshape(3, 3).T
        pos = np.array([float(tr.get(k)) for k in ("x", "y", "z")]) / 1000.0
        R, t = r.T, -r.T @ pos  # camera pose in the world -> world-to-camera
        cams[cam.get("serial", "")] = Camera(cam.get("serial", ""), size, K, dist, rx @ R, rx @ t)
    return cams


def triangulate(cams: list[Camera], pts: list[np.ndarray]) -> np.ndarray:
    """DLT from undistorted normalised points of two or more views."""
    rows = []
    for cam, p in zip(cams, pts, strict=True):
        x, y = cv2.undistortPoints(p.reshape(1, 1, 2).astype(np.float64), cam.K, cam.dist).reshape(2)
        rows += [x * cam.P[2] - cam.P[0], y * cam.P[2] - cam.P[1]]
    _, _, vt = np.linalg.svd(np.asarray(rows))
    X = vt[-1]
    return X[:3] / X[3]


def project(cam: Camera, X: np.ndarray) -> np.ndarray:
    rvec, _ = cv2.Rodrigues(cam.R)
    return cv2.projectPoints(X.reshape(1, 3), rvec, cam.t, cam.K, cam.dist)[0].reshape(2)


def leave_one_out(cams: list[Camera], kp: list[np.ndarray], sc: list[np.ndarray], boxes: list[np.ndarray],
                  min_score: float) -> np.ndarray:
    """(views, T, K) error of each detection against the point triangulated from the other views, as a
    share of the subject's height in that view (nan where it cannot be computed)."""
    V, T, K = len(cams), kp[0].shape[0], kp[0].shape[1]
    err = np.full((V, T, K), np.nan)
    for t in range(T):
        for j in range(K):
            ok = [v for v in range(V) if sc[v][t, j] >= min_score and np.isfinite(kp[v][t, j]).all()]
            for v in ok:
                others = [o for o in ok if o != v]
                if len(others) < 2 or not np.isfinite(boxes[v][t]).all():
                    continue
                X = triangulate([cams[o] for o in others], [kp[o][t, j] for o in others])
                if (cams[v].R @ X + cams[v].t)[2] <= 0:
                    continue
                err[v, t, j] = np.linalg.norm(project(cams[v], X) - kp[v][t, j]) / max(boxes[v][t][2:])
    return err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--calib", type=Path, required=True)
    models = default_model_dir()
    ap.add_argument("--models", nargs="+", type=Path, default=[models / POSE_MODEL, models / STUDENT_POSE_MODEL])
    ap.add_argument("--min-score", type=float, default=0.5)
    a = ap.parse_args()
    cams_all = read_qca(a.calib)
    order = []
    for v in a.videos:
        m = re.search(r"cam\d+", v.stem)
        if m is None or m.group(0) not in cams_all:
            raise SystemExit(f"error: {v}: no camera of {a.calib.name} matches its name")
        order.append(cams_all[m.group(0)])
    loc = OnnxLocalizer(models / LOCALIZER_MODEL, threads=1)
    print("| model | view | points | median error px | median / height | PCK@0.05 body | PCK@0.05 feet "
          "| PCK@0.1 body | PCK@0.1 feet |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in a.models:
        est = load_pose_estimator(model, threads=1)
        kp, sc, boxes = [], [], []
        for v in a.videos:
            with open_recording(v) as rec:
                tr = track_video(rec.color_images(1), est, loc, total_frames=rec.num_frames)
            acc = tr.accepted
            kp.append(np.where(acc[:, None, None], tr.keypoints, np.nan).astype(np.float64))
            sc.append(np.where(acc[:, None], tr.scores, 0.0).astype(np.float64))
            boxes.append(tr.boxes.astype(np.float64))
        n = min(k.shape[0] for k in kp)
        err = leave_one_out(order, [k[:n] for k in kp], [s[:n] for s in sc], [b[:n] for b in boxes], a.min_score)
        for vi, cam in enumerate(order):
            e = err[vi]
            h = np.array([max(b[2:]) if np.isfinite(b).all() else np.nan for b in boxes[vi][:n]])
            px = e * h[:, None]

            def pck(idx: list[int], thr: float, e: np.ndarray = e) -> str:
                x = e[:, idx]
                x = x[np.isfinite(x)]
                return f"{np.mean(x <= thr):.3f}" if x.size else "-"

            fin = np.isfinite(e)
            print(f"| {model.name} | {cam.name} | {int(fin.sum())} | {np.nanmedian(px):.1f} | {np.nanmedian(e):.3f} "
                  f"| {pck(BODY, 0.05)} | {pck(FEET, 0.05)} | {pck(BODY, 0.1)} | {pck(FEET, 0.1)} |", flush=True)


if __name__ == "__main__":
    main()
