"""People detections and tracks: the HOG detector, the Track type and greedy association.

Rules 1 and 2 of :mod:`data_tools.subject` (which explains the whole subject selection): a
recording's sampled frames are searched for people, and their boxes are linked into tracks
from which the subject is then chosen and followed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from data_tools.appearance import appearance_distance
from gaitpose.geometry import box_center, box_iou

__all__ = ["PersonDetector", "Track", "build_tracks"]


class PersonDetector:
    """HOG + linear SVM people detector (OpenCV's default), on a downscaled frame."""

    def __init__(self, detect_height: int = 270, hit_threshold: float = -0.3) -> None:
        self.detect_height = int(detect_height)
        self.hit_threshold = float(hit_threshold)
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __call__(self, image_bgr: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """People boxes (x, y, w, h in the full image's pixels) with their SVM scores."""
        h = image_bgr.shape[0]
        scale = min(1.0, self.detect_height / float(h))
        small = image_bgr if scale >= 1.0 else cv2.resize(image_bgr, None, fx=scale, fy=scale,
                                                          interpolation=cv2.INTER_AREA)
        rects, weights = self._hog.detectMultiScale(
            small, hitThreshold=self.hit_threshold, winStride=(4, 4), padding=(8, 8), scale=1.05
        )
        out = []
        for r, w in zip(rects, np.ravel(weights), strict=False):
            out.append((np.asarray(r, dtype=np.float32) / scale, float(w)))
        return out


@dataclass
class Track:
    """One person's detections over sampled frames."""

    track_id: int
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    static_roi: bool = False  # a user ROI used as the guide box at every frame

    def add(self, frame: int, box: np.ndarray) -> None:
        self.frames.append(int(frame))
        self.boxes.append(np.asarray(box, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1]

    @property
    def median_height(self) -> float:
        return float(np.median([b[3] for b in self.boxes]))

    @property
    def median_area(self) -> float:
        return float(np.median([b[2] * b[3] for b in self.boxes]))

    @property
    def travel(self) -> float:
        """Net horizontal displacement in body heights (robust ends: median of the first/last 3 centres)."""
        if len(self) < 2:
            return 0.0
        cx = np.array([box_center(b)[0] for b in self.boxes])
        k = min(3, len(cx) // 2) or 1
        return float(abs(np.median(cx[-k:]) - np.median(cx[:k])) / max(self.median_height, 1.0))

    def box_at(self, frame: int, margin: int = 0) -> np.ndarray | None:
        """Box at ``frame``: linear interpolation between samples; held ``margin`` frames past the ends."""
        if self.static_roi:
            return self.boxes[0].copy()
        if not self.frames or frame < self.first - margin or frame > self.last + margin:
            return None
        if frame <= self.first:
            return self.boxes[0].copy()
        if frame >= self.last:
            return self.boxes[-1].copy()
        i = int(np.searchsorted(self.frames, frame))
        f0, f1 = self.frames[i - 1], self.frames[i]
        a = (frame - f0) / max(f1 - f0, 1)
        return (1 - a) * self.boxes[i - 1] + a * self.boxes[i]

    def predict(self, frame: int) -> np.ndarray | None:
        """Box at ``frame`` extrapolated with the velocity at the nearer end of the track."""
        box = self.box_at(frame)
        if box is not None or not self.frames:
            return box
        if len(self) < 2:
            return self.boxes[0].copy()
        if frame < self.first:
            (f0, b0), (f1, b1) = (self.frames[0], self.boxes[0]), (self.frames[1], self.boxes[1])
            anchor_f, anchor_b = f0, b0
        else:
            (f0, b0), (f1, b1) = (self.frames[-2], self.boxes[-2]), (self.frames[-1], self.boxes[-1])
            anchor_f, anchor_b = f1, b1
        v = (box_center(b1) - box_center(b0)) / max(f1 - f0, 1)
        out = anchor_b.copy()
        out[:2] += v * (frame - anchor_f)
        return out


def _matches(box: np.ndarray, ref: np.ndarray, centre_frac: float = 0.75) -> float:
    """Association score (higher is better, 0 = no match) between a detection and a track's box."""
    ratio = float(box[3]) / max(float(ref[3]), 1.0)
    if not 0.6 <= ratio <= 1.67:
        return 0.0
    d = float(np.linalg.norm(box_center(box) - box_center(ref))) / max(float(ref[3]), 1.0)
    o = box_iou(box, ref)
    if o < 0.2 and d > centre_frac:
        return 0.0
    return o + (1.0 - min(d, 1.0))


def build_tracks(
    detections: dict[int, list[tuple[np.ndarray, float]]],
    max_gap_frames: int,
    centre_frac: float = 0.75,
    appearance: dict[int, list[np.ndarray | None]] | None = None,
    max_appearance_distance: float = 0.6,
) -> list[Track]:
    """Greedy frame-to-frame association of detections (sorted by frame) into tracks.

    With ``appearance`` (torso histograms, in the order of ``detections``), a detection whose
    colours differ from the track's last detection by more than ``max_appearance_distance``
    (Bhattacharyya) is not associated to it, however close it is: two people passing each other
    then stay two tracks instead of swapping.
    """
    last_hist: dict[int, np.ndarray] = {}
    tracks: list[Track] = []
    for frame in sorted(detections):
        live = [t for t in tracks if frame - t.last <= max_gap_frames]
        pairs = []
        hists = (appearance or {}).get(frame) or [None] * len(detections[frame])
        for di, (box, _score) in enumerate(detections[frame]):
            for t in live:
                pred = t.predict(frame)
                assert pred is not None
                s = _matches(box, pred, centre_frac)
                ref = last_hist.get(t.track_id)
                if s > 0 and ref is not None and hists[di] is not None and (
                    appearance_distance(hists[di], ref) > max_appearance_distance
                ):
                    continue  # a different person passing close by
                if s > 0:
                    pairs.append((s, di, t.track_id))
        used_d: set[int] = set()
        used_t: set[int] = set()
        by_id = {t.track_id: t for t in tracks}
        for _s, di, tid in sorted(pairs, key=lambda p: -p[0]):
            if di in used_d or tid in used_t:
                continue
            by_id[tid].add(frame, detections[frame][di][0])
            used_d.add(di)
            used_t.add(tid)
            if hists[di] is not None:
                last_hist[tid] = hists[di]
        for di, (box, _score) in enumerate(detections[frame]):
            if di not in used_d:
                t = Track(len(tracks))
                t.add(frame, box)
                tracks.append(t)
                if hists[di] is not None:
                    last_hist[t.track_id] = hists[di]
    return tracks
