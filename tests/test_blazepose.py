"""The general model (MediaPipe BlazePose full, converted to ONNX) in gaitpose's runtime.

Real components throughout: the committed ONNX files, ONNX Runtime, the committed clips and
teacher labels of them (``tests/data/teacher_labels_clips.json``). The parity test runs
MediaPipe's own landmark graph and is skipped where mediapipe is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from gaitpose.errors import InputError
from gaitpose.geometry import expand_box, keypoints_to_box
from gaitpose.infer.blazepose import (
    BlazePoseDetector,
    BlazePoseEstimator,
    Roi,
    load_pose_estimator,
    refine_from_heatmap,
    ssd_anchors,
)
from gaitpose.infer.pose import OnnxPoseEstimator
from gaitpose.io.planar import YuvImage
from gaitpose.skeleton import BLAZEPOSE33_TO_GAITPOSE, FOOT_INDICES, NUM_KEYPOINTS

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
GENERAL = REPO / "models" / "general" / "blazepose_full.onnx"
DETECTOR = REPO / "models" / "general" / "blazepose_detector.onnx"
STUDENT = REPO / "models" / "student" / "model.onnx"
LOCALIZER = REPO / "models" / "localizer" / "model.onnx"


def _frames(clip: str) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(DATA / clip))
    out = []
    ok, f = cap.read()
    while ok:
        out.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
        ok, f = cap.read()
    cap.release()
    return out


def _labels(clip: str) -> list[dict]:
    return json.loads((DATA / "teacher_labels_clips.json").read_text())["clips"][clip]


@pytest.fixture(scope="module")
def estimator() -> BlazePoseEstimator:
    return BlazePoseEstimator(GENERAL, threads=1)


def _track(est: BlazePoseEstimator, frames: list[np.ndarray], first: int, last: int, box: np.ndarray,
           flip_test: bool = False) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Frames ``first..last`` in order, each box from the previous keypoints (as the tracker does)."""
    est.reset()
    out = {}
    for i in range(first, last + 1):
        res = est.predict(frames[i], [box], flip_test=flip_test)[0]
        out[i] = (res.keypoints, res.scores)
        kbox = keypoints_to_box(res.keypoints, res.scores >= 0.3)
        if kbox is not None:
            box = expand_box(kbox, 1.15)
    return out


def _pck(pred: dict[int, tuple[np.ndarray, np.ndarray]], labels: list[dict], thr: float,
         indices: tuple[int, ...] | None = None) -> float:
    hits, total = 0, 0
    for lab in labels:
        if lab["frame"] not in pred:
            continue
        kp = pred[lab["frame"]][0]
        scale = max(lab["bbox"][2], lab["bbox"][3])
        for k, p in enumerate(lab["keypoints"]):
            if p is None or (indices is not None and k not in indices):
                continue
            total += 1
            hits += float(np.hypot(*(kp[k] - np.asarray(p)))) <= thr * scale
    assert total > 50, "too few labelled keypoints compared"
    return hits / total


def test_model_files_and_metadata() -> None:
    """The shipped files carry what the runtime and a reader need: kind, layout, source, licence, sha."""
    meta = json.loads((GENERAL.parent / "meta.json").read_text())
    assert meta["licence"] == "Apache-2.0"
    import hashlib

    for name, info in meta["files"].items():
        path = GENERAL.parent / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"], name
        assert info["parity_vs_tflite_max_abs"], name
    est = BlazePoseEstimator(GENERAL, threads=1)
    assert est.meta.kind == "blazepose" and est.meta.input_size == (256, 256)
    assert est.meta.extra["licence"] == "Apache-2.0"
    assert {o.name for o in est.session.get_outputs()} == {"landmarks", "pose_flag", "heatmap"}
    assert est.detector is not None  # the converted detector ships beside the landmark model
    assert est.meta.extra["blazepose33_to_gaitpose"] == list(BLAZEPOSE33_TO_GAITPOSE)


def test_factory_dispatches_on_embedded_metadata(tmp_path: Path) -> None:
    """One call loads either kind of pose model; a non-pose model or a missing file is a clear error."""
    from gaitpose.registry import resolve_general_model

    assert resolve_general_model(model_dir=REPO / "models").resolve() == GENERAL.resolve()
    assert isinstance(load_pose_estimator(GENERAL, threads=1), BlazePoseEstimator)
    assert isinstance(load_pose_estimator(STUDENT, threads=1), OnnxPoseEstimator)
    with pytest.raises(InputError, match="not a pose model"):
        load_pose_estimator(LOCALIZER)
    with pytest.raises(InputError, match="does not exist"):
        load_pose_estimator(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(InputError, match=r"bad\.onnx"):
        load_pose_estimator(bad)
    with pytest.raises(InputError, match="expected a pose"):
        OnnxPoseEstimator(GENERAL)  # the student runtime refuses the general model by name


def test_agrees_with_teacher_labels_on_committed_clips(estimator: BlazePoseEstimator) -> None:
    """Tracked through the clips like analyze does, the general model lands on the teacher's keypoints,
    feet included (no mediapipe needed: the labels are committed)."""
    for clip, min_pck, min_feet in (("sports2d_walk.mp4", 0.9, 0.85), ("pose2sim_cam01.mp4", 0.9, 0.85)):
        labels = _labels(clip)
        frames = _frames(clip)
        first, last = labels[0]["frame"], min(labels[-1]["frame"], len(frames) - 1)
        pred = _track(estimator, frames, first, last, np.asarray(labels[0]["bbox"], np.float32))
        assert _pck(pred, labels, 0.1) >= min_pck, clip
        assert _pck(pred, labels, 0.1, FOOT_INDICES) >= min_feet, clip
        scores = np.stack([s for _, s in pred.values()])
        assert scores.shape[1] == NUM_KEYPOINTS and float(scores.mean()) > 0.5


def test_planar_frames_match_rgb(estimator: BlazePoseEstimator) -> None:
    """analyze hands planar YUV frames: the crop from the planes gives the same keypoints as from RGB."""
    frames = _frames("sports2d_walk.mp4")
    lab = _labels("sports2d_walk.mp4")[4]
    box = np.asarray(lab["bbox"], np.float32)
    rgb = frames[lab["frame"]]
    estimator.reset()
    a = estimator.predict(rgb, [box])[0]
    estimator.reset()
    b = estimator.predict(YuvImage.from_rgb(rgb), [box])[0]
    assert np.abs(a.keypoints - b.keypoints).mean() < 1.5
    np.testing.assert_allclose(a.box, box)


def test_flip_test_and_tilted_body(estimator: BlazePoseEstimator) -> None:
    """Flip test averages the mirrored crop (left stays left); a body rotated 90 degrees is still found
    because the ROI turns with it (MediaPipe's alignment)."""
    frames = _frames("sports2d_walk.mp4")
    lab = _labels("sports2d_walk.mp4")[6]
    box = np.asarray(lab["bbox"], np.float32)
    rgb = frames[lab["frame"]]
    estimator.reset()
    plain = estimator.predict(rgb, [box])[0]
    estimator.reset()
    flipped = estimator.predict(rgb, [box], flip_test=True)[0]
    assert np.median(np.linalg.norm(plain.keypoints - flipped.keypoints, axis=1)) < 3.0
    # Rotate the frame 90 degrees clockwise: the person now lies on their side.
    rot = np.ascontiguousarray(np.rot90(rgb, k=-1))
    h = rgb.shape[0]
    x, y, w, bh = box
    rbox = np.array([h - (y + bh), x, bh, w], np.float32)
    estimator.reset()
    res = estimator.predict(rot, [rbox])[0]
    back = np.stack([res.keypoints[:, 1], h - 1 - res.keypoints[:, 0]], axis=1)  # undo the rotation
    labelled = np.array([p is not None for p in lab["keypoints"]])
    gt = np.array([p if p is not None else [0, 0] for p in lab["keypoints"]], np.float32)
    err = np.linalg.norm(back - gt, axis=1)[labelled]
    assert np.median(err) < 0.05 * max(lab["bbox"][2], lab["bbox"][3])


def test_detector_finds_the_walker() -> None:
    """The converted person detector puts the ROI's centre (the hips) inside the person box."""
    det = BlazePoseDetector(DETECTOR, threads=1)
    assert len(ssd_anchors()) == 2254
    lab = _labels("sports2d_walk.mp4")[4]
    roi = det.detect_roi(_frames("sports2d_walk.mp4")[lab["frame"]], np.asarray(lab["bbox"], np.float32))
    assert roi is not None
    x, y, w, h = lab["bbox"]
    assert x < roi.center[0] < x + w and y < roi.center[1] < y + h
    assert 0.8 * h < roi.side < 2.5 * h and abs(roi.angle) < 30


def _refine_reference(xy: np.ndarray, hm: np.ndarray, kernel: int = 7, min_conf: float = 0.5) -> np.ndarray:
    """MediaPipe's RefineLandmarksFromHeatMap, loop for loop (its row-bound quirk included)."""
    h, w, _ = hm.shape
    out = xy.copy()
    for k in range(len(xy)):
        col, row = int(xy[k, 0] * w), int(xy[k, 1] * h)
        if col < 0 or col >= w or row < 0 or col >= h:
            continue
        off = (kernel - 1) // 2
        s = wc = wr = mx = 0.0
        for r in range(max(0, row - off), min(h, row + off + 1)):
            for c in range(max(0, col - off), min(w, col + off + 1)):
                conf = 1.0 / (1.0 + np.exp(-hm[r, c, k]))
                s += conf
                mx = max(mx, conf)
                wc += c * conf
                wr += r * conf
        if mx >= min_conf and s > 0:
            out[k] = [wc / w / s, wr / h / s]
    return out


def test_heatmap_refinement_matches_mediapipe_algorithm() -> None:
    """The vectorised refinement equals MediaPipe's loop, at the edges and past them too."""
    rng = np.random.default_rng(0)
    hm = rng.normal(-1.0, 2.0, size=(64, 64, 39)).astype(np.float32)
    xy = rng.uniform(-0.05, 1.08, size=(39, 2)).astype(np.float32)
    xy[0] = [0.0, 0.0]
    xy[1] = [0.999, 1.03]  # row past the bottom: MediaPipe still refines (clipped window)
    xy[2] = [-0.01, 0.5]  # truncates to column 0: refined
    got = refine_from_heatmap(xy, hm, np.arange(39))
    np.testing.assert_allclose(got, _refine_reference(xy, hm), atol=1e-5)


@pytest.fixture(scope="module")
def mediapipe_reference():
    pytest.importorskip("mediapipe")
    from benchmarks.general_model import MediaPipeRoiReference

    ref = MediaPipeRoiReference()
    yield ref
    ref.close()


def test_parity_with_mediapipe_on_real_frames(estimator: BlazePoseEstimator, mediapipe_reference) -> None:
    """Conversion parity: on the same ROIs of the committed clip, the ONNX model with gaitpose's crop
    and decoding gives MediaPipe's own landmarks (its graph: crop, tflite, decode, heatmap refine)."""
    from benchmarks.general_model import parity_track

    frames = _frames("sports2d_walk.mp4")
    lab = _labels("sports2d_walk.mp4")[0]
    res = parity_track(frames[lab["frame"]: lab["frame"] + 24], np.asarray(lab["bbox"], np.float32),
                       estimator, mediapipe_reference)
    assert res["reference_missing"] == 0
    assert res["frames"] + res["no_pose_both"] == 24 and res["no_pose_both"] <= 2
    assert res["mean_px"] < 0.15 and res["p99_px"] < 2.0 and res["max_px"] < 5.0, res


def test_roi_given_directly_matches_mediapipe(estimator: BlazePoseEstimator, mediapipe_reference) -> None:
    """A rotated ROI (a tilted body) goes through the same rotation convention as MediaPipe's."""
    frames = _frames("pose2sim_cam01.mp4")
    lab = _labels("pose2sim_cam01.mp4")[2]
    x, y, w, h = lab["bbox"]
    roi = Roi(np.array([x + w / 2, y + h / 2], np.float32), 1.2 * max(w, h), 12.0)
    ours = estimator._roi_pass(frames[lab["frame"]], roi, False).keypoints
    ref = mediapipe_reference(frames[lab["frame"]], roi)
    assert ref is not None
    d = np.linalg.norm(ours - ref[list(BLAZEPOSE33_TO_GAITPOSE)], axis=1)
    assert np.median(d) < 0.1 and d.max() < 2.0, d


def test_analyze_frame_loop_runs_the_general_model_unchanged() -> None:
    """``track_video`` (analyze's loop: planar frames, localiser, subject tracker, look-back) drives the
    general model as it is; its keypoints on the walker agree with the teacher's labels."""
    from gaitpose.infer.localizer import OnnxLocalizer
    from gaitpose.infer.track import track_video
    from gaitpose.io import open_recording

    est = load_pose_estimator(GENERAL, threads=1, spinning=False)
    loc = OnnxLocalizer(LOCALIZER, threads=1, spinning=False)
    labels = _labels("sports2d_walk.mp4")
    x, y, w, h = labels[0]["bbox"]
    roi = np.array([x - 0.5 * w, y - 0.25 * h, 2 * w, 1.5 * h], np.float32)  # as `analyze --roi` would
    with open_recording(DATA / "sports2d_walk.mp4") as rec:
        track = track_video(rec.color_images(1), est, loc, roi=roi)
    assert track.n_frames == 180
    pred = {i: (track.keypoints[i], track.scores[i]) for i in range(track.n_frames) if track.accepted[i]}
    assert len(pred) >= 140
    assert _pck(pred, labels, 0.1) >= 0.9
    assert _pck(pred, labels, 0.1, FOOT_INDICES) >= 0.85
