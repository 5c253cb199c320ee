"""Single-subject tracking for top-down pose on video: keypoints carry the box, the localiser rescues it.

Why: running a detector on every frame costs more than the pose model itself, and on a clinic
video with bystanders "the biggest person" is often the wrong one. So:

* Between frames, the crop box for frame t comes from frame t-1's confident keypoints (score >=
  ``kp_threshold``), padded by ``pad`` and shifted by the track's recent velocity.
* The localiser runs only when the track needs it: at the start, when the pose confidence (mean
  keypoint score) drops below ``min_confidence``, or when the box leaves the frame.
* Start rule (documented choice): with an ``roi`` the candidate with the highest overlap with it
  (then closest centre) wins; otherwise the highest-scoring localiser peak.
* Re-detection never picks the biggest person: it picks the candidate closest to the track's
  predicted centre and size (cost = centre distance / track height + |log size ratio|), and
  rejects candidates whose cost exceeds a gate that widens slowly while the subject is lost. A
  bystander far from the predicted position is therefore never adopted; if nobody is inside the
  gate the frame gets no pose and the track keeps predicting.

The tracker is pure logic over boxes and keypoints (no model inside): the caller passes a
``detect`` callable that is invoked lazily, so tests drive it with synthetic detections.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from gaitpose.geometry import box_center, box_iou, expand_box, keypoints_to_box

Detection = tuple[np.ndarray, float]
DetectFn = Callable[[], Sequence[Detection]]


class SubjectTracker:
    """Keeps one chosen subject through a video; counts how often the localiser had to run."""

    def __init__(
        self,
        image_wh: tuple[int, int],
        *,
        roi: Sequence[float] | None = None,
        min_confidence: float = 0.25,
        kp_threshold: float = 0.3,
        pad: float = 1.15,
        gate: float = 1.0,
        gate_growth: float = 0.05,
        max_gate: float = 3.0,
        min_visible: float = 0.5,
        min_roi_iou: float = 0.1,
        max_coast: int = 15,
        search_every: int = 2,
    ) -> None:
        self.image_wh = (int(image_wh[0]), int(image_wh[1]))
        self.roi = None if roi is None else np.asarray(roi, dtype=np.float64)
        self.min_confidence = min_confidence
        self.kp_threshold = kp_threshold
        self.pad = pad
        self.gate = gate
        self.gate_growth = gate_growth
        self.max_gate = max_gate
        self.min_visible = min_visible
        self.min_roi_iou = min_roi_iou
        self.max_coast = max_coast
        self.search_every = max(1, int(search_every))
        self._search_phase = 0
        self.box: np.ndarray | None = None  # last box of the subject (from keypoints or a detection)
        self.velocity = np.zeros(2)  # centre displacement per frame (smoothed)
        self.frames_lost = 0
        self.need_detection = True
        self.localizer_calls = 0
        self.detected_this_frame = False
        self._coasted = False  # this frame's box is a prediction after a failed detection
        self._frame_box: np.ndarray | None = None

    # --- state queries ------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self.box is not None

    def predicted_box(self) -> np.ndarray | None:
        """Where the subject should be in the next frame: last box moved by the velocity."""
        if self.box is None:
            return None
        steps = 1 + self.frames_lost
        b = self.box.astype(np.float64).copy()
        b[:2] += self.velocity * steps
        return b

    def visible_fraction(self, box: np.ndarray) -> float:
        x, y, w, h = (float(v) for v in box)
        iw = max(0.0, min(x + w, self.image_wh[0]) - max(x, 0.0))
        ih = max(0.0, min(y + h, self.image_wh[1]) - max(y, 0.0))
        return (iw * ih) / max(w * h, 1e-9)

    def is_weak(self, scores: np.ndarray) -> bool:
        return float(np.mean(scores)) < self.min_confidence

    # --- choosing among detections ------------------------------------------------------------

    def _initial_choice(self, dets: Sequence[Detection]) -> Detection | None:
        if not dets:
            return None
        if self.roi is None:
            return max(dets, key=lambda d: d[1])
        rc = box_center(self.roi)
        scale = max(float(self.roi[3]), 1.0)
        best = max(dets, key=lambda d: (box_iou(d[0], self.roi), -np.linalg.norm(box_center(d[0]) - rc) / scale))
        return best if box_iou(best[0], self.roi) >= self.min_roi_iou else None

    def match_cost(self, box: np.ndarray) -> float:
        """Distance of a candidate from the predicted subject (centre / height + log size ratio)."""
        pred = self.predicted_box()
        assert pred is not None
        h = max(float(pred[3]), 1.0)
        dist = float(np.linalg.norm(box_center(box) - box_center(pred))) / h
        size = abs(np.log(max(float(box[3]), 1.0) / h)) + 0.5 * abs(np.log(max(float(box[2]), 1.0) / max(pred[2], 1.0)))
        return dist + size

    def _tracked_choice(self, dets: Sequence[Detection]) -> Detection | None:
        if not dets:
            return None
        costs = [self.match_cost(d[0]) for d in dets]
        i = int(np.argmin(costs))
        gate = min(self.gate + self.gate_growth * self.frames_lost, self.max_gate)
        return dets[i] if costs[i] <= gate else None

    def _detect(self, detect: DetectFn) -> np.ndarray | None:
        self.localizer_calls += 1
        self.detected_this_frame = True
        dets = [(np.asarray(b, dtype=np.float64), float(s)) for b, s in detect()]
        choice = self._initial_choice(dets) if self.box is None else self._tracked_choice(dets)
        if choice is None:
            return None
        return np.asarray(choice[0], dtype=np.float64)

    # --- per-frame protocol -------------------------------------------------------------------

    def next_box(self, detect: DetectFn) -> np.ndarray | None:
        """The crop box for the coming frame, or None when the subject is not found in it.

        Calls ``detect`` (the localiser on this frame) only when the track needs it.
        """
        self.detected_this_frame = False
        self._coasted = False
        box: np.ndarray | None
        if self._skip_search_frame():
            self.frames_lost += 1
            self.need_detection = True
            self._frame_box = None
            return None
        if self.need_detection or self.box is None:
            box = self._detect(detect)
            if box is None and self.box is not None and self.frames_lost < self.max_coast:
                # The localiser found nobody close (small or occluded subject): coast on the
                # predicted box for a few frames rather than dropping a subject we just had.
                box = self.predicted_box()
                if box is not None and self.visible_fraction(box) < self.min_visible:
                    box = None
                self.detected_this_frame = False  # the box is a prediction, not a detection
                self._coasted = True
        else:
            box = self.predicted_box()
            if box is not None and self.visible_fraction(box) < self.min_visible:
                box = self._detect(detect)
        if box is None:
            self.frames_lost += 1
            self.need_detection = True
        self._frame_box = box
        return None if box is None else box.astype(np.float32)

    def searching(self) -> bool:
        """Nobody is being tracked: before the subject appears, or long after it was lost."""
        return self.box is None or self.frames_lost >= self.max_coast

    def _skip_search_frame(self) -> bool:
        """While searching, run the localiser on every ``search_every``-th frame only.

        An empty lead-in (the patient not yet in view) or a long exit would otherwise cost a
        localiser call per frame; with the default of 2 a subject walking in is picked up at most
        one frame later.
        """
        if not self.searching():
            self._search_phase = 0
            return False
        skip = self._search_phase != 0
        self._search_phase = (self._search_phase + 1) % self.search_every
        return skip

    def start_from_roi(self) -> np.ndarray | None:
        """Use the user's ROI itself as the first box when the localiser found nobody on it."""
        if self.roi is None or self.box is not None:
            return None
        self.box = self.roi.astype(np.float64).copy()
        self.velocity = np.zeros(2)
        self.frames_lost = 0
        self.need_detection = False
        self._frame_box = self.box.copy()
        return self.box.astype(np.float32)

    def redetect(self, detect: DetectFn) -> np.ndarray | None:
        """Second chance within the same frame after a weak pose (skipped if we already detected)."""
        if self.detected_this_frame or self._coasted:
            return None
        box = self._detect(detect)
        if box is None:
            return None
        self._frame_box = box
        return box.astype(np.float32)

    def update(self, keypoints: np.ndarray | None, scores: np.ndarray | None) -> None:
        """Feed the pose found in the box returned by :meth:`next_box` (None when there was none)."""
        if keypoints is None or scores is None or self._frame_box is None:
            return
        scores = np.asarray(scores, dtype=np.float64)
        if self.is_weak(scores):
            # Keep the detected/predicted box, but ask the localiser again next frame.
            self.need_detection = True
            if self.detected_this_frame:
                self._move_to(self._frame_box)
            self.frames_lost += 1
            return
        kbox = keypoints_to_box(keypoints, scores >= self.kp_threshold)
        if kbox is None:
            self.need_detection = True
            self.frames_lost += 1
            return
        new = expand_box(kbox, self.pad).astype(np.float64)
        self._move_to(new)
        self.frames_lost = 0
        self.need_detection = self.visible_fraction(new) < self.min_visible

    def _move_to(self, new: np.ndarray) -> None:
        if self.box is not None and self.frames_lost == 0:
            step = box_center(new) - box_center(self.box)
            self.velocity = 0.5 * self.velocity + 0.5 * step
        elif self.box is None:
            self.velocity = np.zeros(2)
        self.box = np.asarray(new, dtype=np.float64)
