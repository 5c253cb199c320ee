"""Pseudo-label a frame store with a teacher: one subject per recording, mirror agreement, COCO out.

Per recording (see ``label_recording``):

* the subject is chosen and tracked by ``data_tools.subject`` (HOG detections, travel rule or
  ``roi``, then the subject's path through the whole recording by motion and torso colours);
  between frames it is followed by the teacher's previous keypoints (padded box) and, when lost,
  re-found from the path (interpolated or extrapolated) or by a fresh detection associated to the
  path's predicted position; a teacher result whose torso colours match another person better
  than the subject is rejected. Sampled frames where the path had to choose between people are
  listed in the statistics (``subject_track.choices``) and the CLI warns about them;
* the teacher sees a tight, fixed-aspect crop of the subject, never the whole frame, so it
  cannot wander to a bigger person elsewhere; a result whose keypoint box does not sit on the
  expected box is rejected rather than labelled;
* Data Distillation's multi-transform rule: the teacher also runs on the mirrored crop, its
  left/right are swapped back (``gaitpose.codec.flip_keypoints``); joints where both passes
  agree are averaged, joints whose two answers lie further apart than ``agree_px`` pixels or,
  by default, ``agree_frac`` (0.05) of the subject's keypoint-box height are dropped
  (v=0, x=y=0, score 0). 5 % of a body height is about the spread of a wrist or an ankle between
  two honest answers; left/right swaps and feet placed on the wrong leg land far beyond it;
* frames where the subject is not found (or fewer than ``min_keypoints`` joints survive) are
  still listed in ``images`` with no annotation: evaluation and training iterate annotations,
  and the image list records what was looked at.

The output is COCO keypoints JSON exactly per ``gaitpose.labels`` (ids assigned at merge, in
recording then frame order), written atomically, with per-recording statistics in ``info``; the
options, frame store reading and that merge are :mod:`data_tools.label_files`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from data_tools.appearance import appearance_distance, colour_histogram, torso_region
from data_tools.label_files import (  # callers also import these from here
    PART_VERSION,
    LabelOptions,
    load_frame_store,
    merge_parts,
    read_image,
    recording_fingerprint,
    write_labels,
)
from data_tools.subject import SubjectChoice, choose_subject, follow_subject, other_people_models, rival_walkers
from data_tools.tracks import PersonDetector, Track, build_tracks
from gaitpose.codec import flip_keypoints
from gaitpose.errors import NoPersonError
from gaitpose.geometry import (
    affine_points,
    box_center,
    box_iou,
    box_to_center_size,
    crop,
    expand_box,
    invert_affine,
    keypoints_to_box,
)
from gaitpose.options import parse_roi
from gaitpose.skeleton import FLIP_INDEX, NUM_KEYPOINTS

log = logging.getLogger(__name__)


@dataclass
class FrameLabel:
    keypoints: np.ndarray  # (21, 2) image pixels, 0 where dropped
    scores: np.ndarray  # (21,)
    visible: np.ndarray  # (21,) bool
    bbox: np.ndarray  # (4,)
    dropped: int  # joints dropped by the disagreement rule


def _frame_interval(rows: list[dict[str, Any]]) -> float:
    if len(rows) < 2:
        return 33.3
    t = np.array([float(r["t_color_ms"]) for r in rows])
    f = np.array([int(r["frame_index"]) for r in rows])
    df = np.diff(f)
    ok = df > 0
    if not ok.any():
        return 33.3
    return float(np.median(np.diff(t)[ok] / df[ok]))


class _Labeller:
    """State for one recording: teacher, detector, chosen track, counters."""

    def __init__(self, frames_dir: Path, rows: list[dict[str, Any]], teacher: Any, opts: LabelOptions) -> None:
        self.frames_dir = frames_dir
        self.rows = rows
        self.teacher = teacher
        self.opts = opts
        self.input_wh: tuple[int, int] = tuple(getattr(teacher, "input_wh", (288, 384)))  # type: ignore[assignment]
        self.aspect = self.input_wh[0] / self.input_wh[1]
        self.detector = PersonDetector(opts.detect_height)
        self.teacher_s = 0.0
        self.detect_s = 0.0
        self.teacher_calls = 0
        self.detections_run = 0
        self.frame_ms = _frame_interval(rows)
        self.subject_model: np.ndarray | None = None
        self.other_models: list[np.ndarray] = []
        self.choices: list[SubjectChoice] = []
        self.appearance_rejected = 0

    # -- subject -------------------------------------------------------------------------------
    def detect(self, image_bgr: np.ndarray) -> list[tuple[np.ndarray, float]]:
        t0 = time.perf_counter()
        out = self.detector(image_bgr)
        self.detect_s += time.perf_counter() - t0
        self.detections_run += 1
        return out

    def select_subject(self, images: dict[int, np.ndarray]) -> tuple[Track | None, int]:
        step = max(1, round(self.opts.detect_interval_ms / max(self.frame_ms, 1e-3)))
        sampled = [r for r in self.rows if (int(r["frame_index"]) - int(self.rows[0]["frame_index"])) % step == 0]
        if len(sampled) < self.opts.min_track_len:
            sampled = self.rows
        detections = {}
        appearance: dict[int, list[np.ndarray | None]] = {}
        people: dict[int, np.ndarray] = {}  # the teacher's person box per sampled frame
        for r in sampled:
            fi = int(r["frame_index"])
            img = images.get(fi)
            if img is None:
                img = read_image(self.frames_dir / r["color_path"])
            dets = self.detect(img)
            if self.opts.teacher_detect:
                extra = self.teacher_detection(img)
                if extra is not None:
                    people[fi] = extra
                    if all(box_iou(extra, b) < 0.3 for b, _s in dets):
                        dets.append((extra, 0.0))
            detections[fi] = dets
            appearance[fi] = [colour_histogram(img, torso_region(b)) for b, _s in dets]
        tracks = build_tracks(detections, max_gap_frames=3 * step, appearance=appearance)
        roi = parse_roi(self.opts.roi)
        min_len = min(self.opts.min_track_len, len(sampled))
        seed = choose_subject(tracks, min_len=min_len, roi=roi, people=people)
        if seed is None:
            return None, step
        self.choices = rival_walkers(tracks, seed, min_len) if roi is None else []
        subject, self.subject_model, choices = follow_subject(detections, appearance, seed)
        self.choices += choices
        self.other_models = other_people_models(tracks, appearance, detections, subject)
        return subject, step

    def teacher_detection(self, image_bgr: np.ndarray) -> np.ndarray | None:
        """The teacher's one person on the whole frame, as a detector-sized box (HOG misses people
        seen from above or filling the frame; the teacher's own detector often does not)."""
        h, w = image_bgr.shape[:2]
        centre, size = box_to_center_size([0, 0, w, h], self.aspect, 1.0)
        patch, matrix = crop(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB), centre, size, self.input_wh)
        kp, s = self._teacher(patch)
        if int((s > 0).sum()) < self.opts.min_keypoints:
            return None
        box = keypoints_to_box(affine_points(kp, invert_affine(matrix)), s > 0)
        return None if box is None else expand_box(box, 1.25)

    # -- teacher -------------------------------------------------------------------------------
    def _teacher(self, crop_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t0 = time.perf_counter()
        out = self.teacher(crop_rgb)
        self.teacher_s += time.perf_counter() - t0
        self.teacher_calls += 1
        return np.asarray(out.keypoints, np.float32), np.asarray(out.scores, np.float32)

    def run_teacher(self, image_rgb: np.ndarray, guide: np.ndarray) -> FrameLabel | None:
        centre, size = box_to_center_size(guide, self.aspect, self.opts.padding)
        patch, matrix = crop(image_rgb, centre, size, self.input_wh)
        inv = invert_affine(matrix)
        kp1, s1 = self._teacher(patch)
        if not (s1 > 0).any():
            return None
        kp1 = affine_points(kp1, inv)
        if not self.opts.mirror:
            valid = s1 > 0
            return self._make(kp1, s1, valid, valid, image_rgb.shape, dropped=0)
        kp2, s2 = self._teacher(np.ascontiguousarray(patch[:, ::-1]))
        if not (s2 > 0).any():
            return None
        kp2 = affine_points(flip_keypoints(kp2, self.input_wh[0]), inv)
        s2 = s2[FLIP_INDEX]
        both = (s1 > 0) & (s2 > 0)
        mean = 0.5 * (kp1 + kp2)
        box = keypoints_to_box(mean, both)
        if box is None:
            return None
        thr = self.opts.agree_px if self.opts.agree_px is not None else self.opts.agree_frac * float(box[3])
        dist = np.linalg.norm(kp1 - kp2, axis=1)
        keep = both & (dist <= thr)
        dropped = int((both & (dist > thr)).sum())
        return self._make(mean, 0.5 * (s1 + s2), keep, both, image_rgb.shape, dropped=dropped)

    def _make(self, kp: np.ndarray, scores: np.ndarray, keep: np.ndarray, extent: np.ndarray,
              shape: tuple[int, ...], dropped: int) -> FrameLabel | None:
        box = keypoints_to_box(kp, extent)
        if box is None:
            return None
        h, w = shape[:2]
        bbox = expand_box(box, 1.2, (w, h))
        kp = np.where(keep[:, None], kp, 0.0).astype(np.float32)
        sc = np.where(keep, np.clip(scores, 0.0, 1.0), 0.0).astype(np.float32)
        return FrameLabel(kp, sc, keep.copy(), bbox, dropped)

    def looks_like_someone_else(self, image_bgr: np.ndarray, label: FrameLabel) -> bool:
        """True when the torso under the label's keypoints matches another person's colours better
        than the subject's (by a margin): the teacher followed the wrong person."""
        if self.subject_model is None or not self.other_models:
            return False
        from gaitpose.skeleton import INDEX

        torso = [INDEX[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
        box = keypoints_to_box(label.keypoints[torso], label.visible[torso])
        if box is None or int(label.visible[torso].sum()) < 3:
            return False
        # the shoulder-hip box is the torso itself: its middle 60 % x 80 % is shirt
        x, y, w, h = (float(v) for v in box)
        hist = colour_histogram(image_bgr, np.array([x + 0.2 * w, y + 0.1 * h, 0.6 * w, 0.8 * h]))
        if hist is None:
            return False
        own = appearance_distance(hist, self.subject_model)
        other = min(appearance_distance(hist, m) for m in self.other_models)
        return other + 0.1 < own

    # -- per frame -----------------------------------------------------------------------------
    @staticmethod
    def _plausible(label_box: np.ndarray, ref: np.ndarray | None, gate: float, roi_track: bool) -> bool:
        if ref is None:
            return True
        c = box_center(label_box)
        if roi_track:
            return bool(ref[0] <= c[0] <= ref[0] + ref[2] and ref[1] <= c[1] <= ref[1] + ref[3])
        d = float(np.linalg.norm(c - box_center(ref))) / max(float(ref[3]), 1.0)
        ratio = float(label_box[3]) / max(float(ref[3]), 1.0)
        return d <= gate and 0.35 <= ratio <= 2.5

    def label_frame(self, fi: int, image_bgr: np.ndarray, prev: tuple[int, np.ndarray] | None,
                    track: Track, step: int) -> FrameLabel | None:
        """Label one frame; ``prev`` is (frame_index, keypoint box) of the last found frame in this pass."""
        image_rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        track_box = track.box_at(fi, margin=step)
        guides: list[np.ndarray] = []
        if prev is not None and abs(fi - prev[0]) <= 3 * max(self.opts.stride, 1):
            guides.append(prev[1])
        if track_box is not None:
            guides.append(track_box)
        if not guides:
            pred = track.predict(fi) if prev is None else prev[1]
            if pred is not None:
                for box, _s in self.detect(image_bgr):
                    if self._plausible(box, pred, 1.0, False):
                        guides.append(box)
                        break
        for guide in guides:
            label = self.run_teacher(image_rgb, guide)
            if label is None or int(label.visible.sum()) < self.opts.min_keypoints:
                continue
            kp_box = label.bbox
            if not self._plausible(kp_box, guide, self.opts.gate_frac, track.static_roi):
                continue
            if track_box is not None and guide is not track_box and not self._plausible(
                kp_box, track_box, 1.0, track.static_roi
            ):
                continue
            if self.looks_like_someone_else(image_bgr, label):
                self.appearance_rejected += 1
                continue
            return label
        return None


def label_recording(
    frames_dir: str | os.PathLike[str],
    recording: str,
    rows: list[dict[str, Any]],
    teacher: Any,
    opts: LabelOptions,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Label one recording; returns a part (images, annotations keyed by frame, stats).

    Raises ``NoPersonError`` when no subject can be found in any frame of the recording and
    ``InputError`` for unreadable frames.
    """
    frames_dir = Path(frames_dir)
    t_start = time.perf_counter()
    lab = _Labeller(frames_dir, rows, teacher, opts)
    selected = rows[:: max(1, opts.stride)]
    subject, step = lab.select_subject({})
    where = frames_dir / recording
    if subject is None:
        raise NoPersonError(where, f"no person found by the people detector in {lab.detections_run} sampled frames")
    order_fwd = [r for r in selected if int(r["frame_index"]) >= subject.first]
    order_bwd = [r for r in selected if int(r["frame_index"]) < subject.first][::-1]
    labels: dict[int, FrameLabel] = {}
    for order in (order_fwd, order_bwd):
        prev: tuple[int, np.ndarray] | None = None
        for r in order:
            fi = int(r["frame_index"])
            img = read_image(frames_dir / r["color_path"])
            label = lab.label_frame(fi, img, prev, subject, step)
            if label is not None:
                labels[fi] = label
                prev = (fi, label.bbox)
            if progress is not None:
                progress(1)
    if not labels:
        raise NoPersonError(where, f"the teacher found no person in any of {len(selected)} frames")
    images = []
    annotations = []
    for r in selected:
        fi = int(r["frame_index"])
        img: dict[str, Any] = {
            "file_name": r["color_path"],
            "width": int(r.get("width") or 0),
            "height": int(r.get("height") or 0),
            "recording": recording,
            "subject": r.get("subject"),
            "frame_index": fi,
            "t_ms": float(r["t_color_ms"]),
        }
        if r.get("depth_path"):
            img["depth_file"] = r["depth_path"]
        if not img["width"] or not img["height"]:
            h, w = read_image(frames_dir / r["color_path"]).shape[:2]
            img["width"], img["height"] = int(w), int(h)
        images.append(img)
        lb = labels.get(fi)
        if lb is None:
            continue
        kps = np.concatenate([lb.keypoints, np.where(lb.visible, 2, 0)[:, None]], axis=1)
        bbox = [round(float(v), 2) for v in lb.bbox]
        annotations.append(
            {
                "frame_index": fi,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": bbox,
                "area": round(bbox[2] * bbox[3], 2),
                "num_keypoints": int(lb.visible.sum()),
                "keypoints": [round(float(v), 2) if j % 3 != 2 else int(v) for j, v in enumerate(kps.ravel())],
                "keypoint_scores": [round(float(v), 4) for v in lb.scores],
            }
        )
    n_found = len(labels)
    stats = {
        "frames": len(selected),
        "frames_labelled": n_found,
        "labelled_fraction": round(n_found / max(len(selected), 1), 4),
        "keypoints_kept": int(sum(int(lb.visible.sum()) for lb in labels.values())),
        "keypoints_dropped_disagree": int(sum(lb.dropped for lb in labels.values())),
        "teacher_calls": lab.teacher_calls,
        "teacher_seconds": round(lab.teacher_s, 3),
        "detector_runs": lab.detections_run,
        "detector_seconds": round(lab.detect_s, 3),
        "total_seconds": round(time.perf_counter() - t_start, 3),
        "subject_track": {
            "roi": bool(subject.static_roi),
            "first_frame": subject.first,
            "last_frame": subject.last,
            "detections": len(subject),
            "travel_heights": round(subject.travel, 3),
            "appearance_model": lab.subject_model is not None,
            "other_people": len(lab.other_models),
            "frames_rejected_other_person": lab.appearance_rejected,
            "choices": [c.to_dict() for c in lab.choices],
        },
    }
    return {"recording": recording, "images": images, "annotations": annotations, "stats": stats}


__all__ = [
    "NUM_KEYPOINTS",
    "PART_VERSION",
    "LabelOptions",
    "label_recording",
    "load_frame_store",
    "merge_parts",
    "read_image",
    "recording_fingerprint",
    "write_labels",
]
