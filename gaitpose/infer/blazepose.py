"""The general pose model: MediaPipe's BlazePose full landmark network, converted to ONNX, in numpy/cv2.

Why: the project's student is fast but only as good as the two people it was trained on; the
teacher's own network (``models/general/blazepose_full.onnx``, made by
``scripts/convert_blazepose.py``) gives teacher-grade keypoints, heels and toes included, on
people and rooms nobody here has seen, without mediapipe or TensorFlow at run time.

It reproduces MediaPipe's landmark stage (``PoseLandmarkByRoiCpu``) and its ROI rules:

* the ROI is MediaPipe's: on acquisition the converted person detector's (hip centre, body
  radius, rotation) inside the tracker's box, then each frame the previous result's auxiliary
  landmarks (MediaPipe's own tracking rule), all gated by the tracker's box; it is warped to
  256x256 with ``gaitpose.geometry.crop`` (RGB arrays and planar YUV frames alike) with
  MediaPipe's replicated border, RGB scaled to [0, 1];
* the 39 x 5 landmark tensor is decoded as MediaPipe's ``TensorsToLandmarksCalculator`` does
  (x, y in input pixels; sigmoid of the visibility and presence logits), then refined from the
  64x64 heatmap like ``RefineLandmarksFromHeatmapCalculator`` (7x7 sigmoid-weighted mean where
  the window's maximum is at least 0.5, including MediaPipe's row-bound quirk), and projected
  back through the crop's inverse affine;
* coordinates follow the project's pixel-centre convention, MediaPipe's normalised landmark x
  times the image width minus 0.5, exactly as the MediaPipe teacher writes its labels
  (``data_tools.teachers.mediapipe_teacher``), so teacher labels and this model agree;
* 33 BlazePose landmarks map to the 21 gaitpose keypoints by ``BLAZEPOSE33_TO_GAITPOSE``.

Scores: each keypoint's score is the pose flag (is there a person in this crop at all) times the
landmark's presence (is the point inside the crop). Visibility (is it unoccluded) is kept in
:meth:`BlazePoseEstimator.predict_detailed` beside each ``PoseResult`` but not used as
the score: in a side view the far leg is occluded half of the time, yet its position is still
what gait analysis wants, and MediaPipe's visibility stays high on wrong feet anyway
(``docs/teacher.md``), so it is no quality signal for dropping points.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gaitpose.errors import InputError
from gaitpose.geometry import (
    affine_points,
    box_iou,
    box_to_center_size,
    crop,
    expand_box,
    invert_affine,
    keypoints_to_box,
)
from gaitpose.infer.blazepose_detector import BlazePoseDetector, Roi, _sigmoid, ssd_anchors
from gaitpose.infer.pose import PoseResult, _meta_from_session
from gaitpose.infer.session import make_session
from gaitpose.io.planar import ImageLike
from gaitpose.modelmeta import ModelMeta
from gaitpose.skeleton import BLAZEPOSE33_TO_GAITPOSE, FLIP_INDEX

__all__ = ["BlazePoseDetector", "BlazePoseEstimator", "Roi", "load_pose_estimator", "refine_from_heatmap",
           "ssd_anchors"]

BLAZEPOSE_KIND = "blazepose"
DETECTOR_FILE = "blazepose_detector.onnx"
NUM_LANDMARKS = 39  # 33 body landmarks, 2 ROI auxiliary points, 4 unused
REFINE_KERNEL = 7  # MediaPipe tensors_to_pose_landmarks_and_segmentation.pbtxt
REFINE_MIN_CONFIDENCE = 0.5  # RefineLandmarksFromHeatmapCalculatorOptions default
POSE_FLAG_THRESHOLD = 0.5  # MediaPipe: below it the ROI holds no pose
ROI_SCALE = 1.25  # MediaPipe pose_landmarks_to_roi: ROI side = 2 x 1.25 x |hip centre - scale point|
_IDX = np.asarray(BLAZEPOSE33_TO_GAITPOSE, dtype=np.int64)
_REFINED = np.concatenate([_IDX, [33, 34]])  # the 21 used landmarks and the two ROI points MediaPipe tracks with


@dataclass
class BlazeLandmarks:
    """Raw decoded output of one crop, in the crop's input pixels (before any projection)."""

    xy: np.ndarray  # (39, 2) refined x, y in 256-px input pixels
    z: np.ndarray  # (39,) relative depth, input-pixel units (MediaPipe: z / input width)
    visibility: np.ndarray  # (39,) sigmoid
    presence: np.ndarray  # (39,) sigmoid
    pose_flag: float  # person-in-crop probability


@dataclass
class RoiResult:
    """The landmark model's answer for one ROI, in full-image pixels (gaitpose 21 keypoints)."""

    keypoints: np.ndarray  # (21, 2)
    scores: np.ndarray  # (21,)
    visibility: np.ndarray  # (21,)
    aux: np.ndarray  # (2, 2) MediaPipe's ROI points: hip centre, body-scale point
    pose_flag: float
    roi: Roi


def refine_from_heatmap(
    xy_norm: np.ndarray, heatmap: np.ndarray, indices: np.ndarray, kernel: int = REFINE_KERNEL,
    min_confidence: float = REFINE_MIN_CONFIDENCE,
) -> np.ndarray:
    """MediaPipe's heatmap refinement of normalised landmark positions, vectorised over ``indices``.

    ``xy_norm``: (L, 2) landmarks normalised to [0, 1] of the input; ``heatmap``: (H, W, L) logits.
    Returns a refined copy (only the rows in ``indices`` change). The window around
    ``int(x * W), int(y * H)`` (C++ truncation) is clipped at the heatmap's edges; the new
    position is the sigmoid-weighted mean cell index divided by the heatmap size, taken only when
    the window's maximum confidence reaches ``min_confidence``. Like MediaPipe, a landmark is
    skipped when its column or row is negative or its column is past the right edge, but not
    when only its row is past the bottom edge (the window is then clipped or empty).
    """
    hm_h, hm_w, _ = heatmap.shape
    out = xy_norm.astype(np.float32).copy()
    col = np.trunc(out[indices, 0] * hm_w).astype(np.int64)
    row = np.trunc(out[indices, 1] * hm_h).astype(np.int64)
    inside = (col >= 0) & (col < hm_w) & (row >= 0)
    half = (kernel - 1) // 2
    offs = np.arange(-half, half + 1)
    rows = row[:, None] + offs[None]  # (K, k)
    cols = col[:, None] + offs[None]
    rvalid = (rows >= 0) & (rows < hm_h)
    cvalid = (cols >= 0) & (cols < hm_w)
    r_c = np.clip(rows, 0, hm_h - 1)
    c_c = np.clip(cols, 0, hm_w - 1)
    patch = heatmap[r_c[:, :, None], c_c[:, None, :], indices[:, None, None]]  # (K, k, k)
    conf = _sigmoid(patch) * (rvalid[:, :, None] & cvalid[:, None, :])
    total = conf.sum(axis=(1, 2))
    peak = conf.max(axis=(1, 2))
    ok = inside & (peak >= min_confidence) & (total > 0)
    safe = np.where(total > 0, total, 1.0)
    wx = (conf * cols[:, None, :]).sum(axis=(1, 2)) / safe / hm_w
    wy = (conf * rows[:, :, None]).sum(axis=(1, 2)) / safe / hm_h
    sel = indices[ok]
    out[sel, 0] = wx[ok]
    out[sel, 1] = wy[ok]
    return out


class BlazePoseEstimator:
    """BlazePose full landmark model on person boxes: the same interface as ``OnnxPoseEstimator``.

    ``predict(image, boxes, flip_test=False) -> list[PoseResult]`` with 21 keypoints in
    full-image pixels. The box says where the person is; the crop (ROI) is chosen the way
    MediaPipe chooses it, because the network was trained on such crops: centred on the hips,
    2 x 1.25 x the body radius wide, rotated so the body stands upright. A lunging or bending
    body in an upright crop of its box loses half its joints (measured: the lab clips fell from
    PCK@0.1 0.99 to 0.75-0.80), so:

    * a tracked person (this call's box overlaps the last result's keypoint box) gets the ROI
      from the last result's auxiliary landmarks, MediaPipe's own tracking rule;
    * otherwise the converted person detector (``blazepose_detector.onnx`` beside the model;
      ``detector=False`` to go without) finds the ROI inside the padded box;
    * failing both, an upright square of the box (``padding``, default 1.25), redone along the
      body's own axis when that first answer shows it tilted by more than ``align_deg``.

    When the pose flag of a tracked ROI drops below 0.5 the detector runs again, as in
    MediaPipe. The remembered ROI is per estimator: :meth:`reset` between videos when one
    estimator serves several (a box that does not overlap is never given an old ROI anyway).
    ``refine``: MediaPipe's heatmap refinement (on by default, as in MediaPipe).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        threads: int | None = None,
        spinning: bool | None = None,
        *,
        padding: float | None = None,
        refine: bool = True,
        align_deg: float | None = 15.0,
        detector: str | os.PathLike[str] | bool | None = True,
        session: Any = None,
    ) -> None:
        self.path = Path(model_path)
        if not self.path.exists():
            raise InputError(self.path, "model file does not exist")
        self.session = session if session is not None else make_session(self.path, threads, spinning)
        self.meta: ModelMeta = _meta_from_session(self.path, self.session)
        if self.meta.kind != BLAZEPOSE_KIND:
            raise InputError(self.path, f"expected a BlazePose landmark model, got kind '{self.meta.kind}'")
        inputs = self.session.get_inputs()
        outputs = {o.name for o in self.session.get_outputs()}
        missing = {"landmarks", "pose_flag"} - outputs
        if missing:
            raise InputError(self.path, f"BlazePose model lacks output(s) {sorted(missing)}; "
                                        "convert it with scripts/convert_blazepose.py")
        self.input_name = inputs[0].name
        self.refine = bool(refine) and "heatmap" in outputs
        self._outputs = ["landmarks", "pose_flag"] + (["heatmap"] if self.refine else [])
        self.padding = float(self.meta.padding if padding is None else padding)
        self.align_deg = None if align_deg is None else float(align_deg)
        self._state: tuple[tuple[int, int], np.ndarray, Roi] | None = None
        self.detector: BlazePoseDetector | None = None
        if detector is True:  # the converted detector beside the landmark model, when shipped
            det_path = self.path.with_name(DETECTOR_FILE)
            if det_path.exists():
                self.detector = BlazePoseDetector(det_path, threads, spinning)
        elif detector:
            self.detector = BlazePoseDetector(detector, threads, spinning)
        self.input_wh = self.meta.input_wh

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return self.meta.keypoint_names

    def preprocess(self, image: ImageLike, box_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Square crop around the box, as the network's NHWC float input in [0, 1], and its 2x3 matrix."""
        center, size = box_to_center_size(box_xywh, 1.0, self.padding)
        patch, matrix = crop(image, center, size, self.input_wh, border_mode=cv2.BORDER_REPLICATE)
        x = patch.astype(np.float32)
        x *= np.float32(1.0 / 255.0)
        return x, matrix

    def run(self, x: np.ndarray) -> BlazeLandmarks:
        """Run one (H, W, 3) input and decode it (MediaPipe's tensors-to-landmarks + refinement)."""
        outs = self.session.run(self._outputs, {self.input_name: np.ascontiguousarray(x[None], dtype=np.float32)})
        raw = outs[0].reshape(NUM_LANDMARKS, 5)
        w, h = self.input_wh
        xy = raw[:, :2].astype(np.float32)
        if self.refine:
            norm = xy / np.array([w, h], np.float32)
            norm = refine_from_heatmap(norm, outs[2][0], _REFINED)
            xy = norm * np.array([w, h], np.float32)
        return BlazeLandmarks(xy=xy, z=raw[:, 2].copy(), visibility=_sigmoid(raw[:, 3]),
                              presence=_sigmoid(raw[:, 4]), pose_flag=float(outs[1].reshape(-1)[0]))

    def _roi_pass(self, image: ImageLike, roi: Roi, flip_test: bool) -> RoiResult:
        """Run the landmark model on one square, possibly rotated ROI; results in full-image pixels."""
        size = np.array([roi.side, roi.side], dtype=np.float32)
        patch, m = crop(image, np.asarray(roi.center, np.float32), size, self.input_wh, rotation_deg=roi.angle,
                        border_mode=cv2.BORDER_REPLICATE)
        x = patch.astype(np.float32)
        x *= np.float32(1.0 / 255.0)
        inv = invert_affine(m)
        lm = self.run(x)
        kp = lm.xy[_IDX]
        score = lm.pose_flag * lm.presence[_IDX]
        vis = lm.visibility[_IDX]
        if flip_test:
            lf = self.run(np.ascontiguousarray(x[:, ::-1]))
            # The teacher's mirror convention (pixel-centre x -> width - 1 - x), in crop pixels.
            kf = lf.xy[_IDX][FLIP_INDEX].copy()
            kf[:, 0] = self.input_wh[0] - kf[:, 0]
            kp = 0.5 * (kp + kf)
            score = 0.5 * (score + (lf.pose_flag * lf.presence[_IDX])[FLIP_INDEX])
            vis = 0.5 * (vis + lf.visibility[_IDX][FLIP_INDEX])
        # MediaPipe's normalised landmark times the image size, minus 0.5: the teacher's convention.
        full = affine_points(kp, inv) - 0.5
        aux = affine_points(lm.xy[33:35], inv)
        return RoiResult(full.astype(np.float32), score.astype(np.float32), vis.astype(np.float32), aux,
                         lm.pose_flag, roi)

    def reset(self) -> None:
        """Forget the tracked ROI (call between videos when one estimator serves several)."""
        self._state = None

    def _tracked_roi(self, image: ImageLike, box: np.ndarray) -> Roi | None:
        """The ROI MediaPipe's tracker would use: the last result's, if that result is this box's person."""
        st = self._state
        if st is None or st[0] != tuple(image.shape[:2]):
            return None
        prev_box, roi = st[1], st[2]
        if box_iou(prev_box, box) < 0.3:
            return None
        side_ratio = roi.side / max(float(max(box[2], box[3])), 1.0)
        return roi if 0.5 <= side_ratio <= 4.0 else None

    def _predict_one(self, image: ImageLike, box: np.ndarray, flip_test: bool) -> RoiResult:
        """Pick the ROI (tracked, detected or the plain box), run it, remember the next ROI."""
        box = np.asarray(box, dtype=np.float32)
        center, size = box_to_center_size(box, 1.0, self.padding)
        upright = Roi(center, float(size[0]), 0.0)
        roi = self._tracked_roi(image, box)
        detected = False
        if roi is None and self.detector is not None:
            roi = self.detector.detect_roi(image, box, self.padding)
            detected = roi is not None
        res = self._roi_pass(image, roi or upright, flip_test)
        if res.pose_flag < POSE_FLAG_THRESHOLD and roi is not None and not detected:
            # The tracked ROI lost the person: MediaPipe would run its detector again.
            roi2 = self.detector.detect_roi(image, box, self.padding) if self.detector is not None else None
            res2 = self._roi_pass(image, roi2 or upright, flip_test)
            if res2.pose_flag > res.pose_flag:
                res = res2
        next_roi = self._roi_from_aux(res.aux)
        if roi is None and self.align_deg is not None and next_roi is not None and abs(next_roi.angle) > self.align_deg:
            # No detector and no track: the upright pass found a tilted body; redo it upright.
            res2 = self._roi_pass(image, next_roi, flip_test)
            if res2.pose_flag >= res.pose_flag:
                res = res2
                next_roi = self._roi_from_aux(res.aux)
        if next_roi is not None and res.pose_flag >= POSE_FLAG_THRESHOLD:
            kbox = keypoints_to_box(res.keypoints)
            self._state = (tuple(image.shape[:2]), expand_box(kbox, 1.15) if kbox is not None else box, next_roi)
        else:
            self._state = None
        return res

    @staticmethod
    def _roi_from_aux(aux: np.ndarray) -> Roi | None:
        """MediaPipe's landmarks-to-ROI rule: centred on the hips, 2 x 1.5 x the scale radius, upright."""
        if not np.all(np.isfinite(aux)):
            return None
        d = aux[1] - aux[0]
        length = float(np.hypot(d[0], d[1]))
        if length < 1.0:
            return None
        angle = float(np.degrees(np.arctan2(d[0], -d[1])))  # 0 = upright: hip-to-scale vector points up
        return Roi(aux[0].astype(np.float32), 2.0 * ROI_SCALE * length, angle)

    def predict_detailed(
        self, image: ImageLike, boxes: Sequence[np.ndarray], flip_test: bool = False
    ) -> list[tuple[PoseResult, np.ndarray]]:
        """Like :meth:`predict`, each result paired with the keypoints' visibility (21,)."""
        out = []
        for b in boxes:
            r = self._predict_one(image, b, flip_test)
            out.append((PoseResult(r.keypoints, r.scores, np.asarray(b, dtype=np.float32)), r.visibility))
        return out

    def predict(
        self,
        image: ImageLike,
        boxes: Sequence[np.ndarray],
        depth_mm: np.ndarray | None = None,
        flip_test: bool = False,
    ) -> list[PoseResult]:
        """Keypoints in full-image pixels for each box (x, y, w, h) in one RGB image or planar frame.

        ``depth_mm`` is accepted for interface compatibility and ignored (an RGB model).
        ``flip_test`` also runs the mirrored crop and averages (MediaPipe itself does not).
        """
        return [r for r, _ in self.predict_detailed(image, boxes, flip_test)]


def load_pose_estimator(
    model_path: str | os.PathLike[str], threads: int | None = None, spinning: bool | None = None
) -> Any:
    """The right estimator for an ONNX pose model, chosen by its embedded ``gaitpose`` metadata.

    ``kind == "blazepose"`` (the general model in ``models/general``) gives a
    :class:`BlazePoseEstimator`, ``kind == "sppe"`` (a student from ``gaitpose export``) an
    :class:`gaitpose.infer.pose.OnnxPoseEstimator`; anything else is an InputError naming the file.
    Both have ``predict(image, boxes, flip_test=) -> list[PoseResult]`` and ``meta``.
    """
    from gaitpose.infer.pose import OnnxPoseEstimator

    path = Path(model_path)
    if not path.exists():
        raise InputError(path, "model file does not exist")
    sess = make_session(path, threads, spinning)
    meta = _meta_from_session(path, sess)
    if meta.kind == BLAZEPOSE_KIND:
        return BlazePoseEstimator(path, threads, spinning, session=sess)
    if meta.kind == "sppe":
        return OnnxPoseEstimator(path, threads=threads, spinning=spinning)
    raise InputError(path, f"not a pose model (metadata kind '{meta.kind}'); expected 'sppe' or 'blazepose'")
