"""Pick ONE subject per recording so a label never mixes two people.

Clinical videos show staff and bystanders beside the patient, and single-person pose models
(MediaPipe) lock onto whoever dominates the frame. So before any teacher runs we decide who the
subject is, offline and without model hubs:

1. ``PersonDetector``: OpenCV's HOG people detector on a frame downscaled to ``detect_height``
   pixels (about 0.2 s per 640x360 frame on one core), run on frames sampled every
   ``detect_interval_ms``. A slightly negative SVM threshold trades a few false positives
   (they do not move, so rule 3 ignores them) for recall on people in side view.
2. ``build_tracks``: greedy association of detections between samples by IoU or centroid
   distance (relative to the box height) with a similar height; short gaps are bridged.
3. ``choose_subject``: the walking subject is the track with the largest *net* horizontal travel
   relative to its median height (net, not path length, so detector jitter on a static person
   does not add up). Tracks within 10 % of the best travel tie; ties go to the largest median
   box, then the longest track. When nobody travels at least half a body height, the largest,
   then longest, track is taken. ``roi`` overrides the rule: the track with most box centres
   inside the region wins, or, when none does, the region itself becomes a static guide box.

4. ``follow_subject``: the chosen track only seeds the subject. Its appearance (HSV colour
   histograms of the torso, per-bin median over all its detections, so a few swapped detections do
   not define it) becomes the subject's model, and the subject's path is the cheapest path through
   the detections of the *whole recording*: each detection costs its appearance distance to the
   model, each step costs its distance from the nearer of the constant-velocity and the standing
   prediction and is gated by it, and each sampled frame the subject sits out (occluded,
   undetected) costs a penalty a little above the subject's own typical distance. So a
   crossing where greedy association would swap the two tracks is resolved by who looks like the
   subject, and the subject is picked up again after an occlusion. Where a second person was
   inside the motion gate and looked nearly as alike, or where appearance overrode the closer
   motion match, the choice is recorded (``SubjectChoice``) for the label output to report.

The labeller then follows the subject path between samples with the teacher's own keypoints,
rejects a teacher result whose torso colours match another person better than the subject, and
re-detects (associating to the path's predicted position, never to the biggest person) when the
subject is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from gaitpose.geometry import box_center, box_iou

log = logging.getLogger(__name__)


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


def choose_subject(
    tracks: list[Track], min_len: int = 3, roi: np.ndarray | None = None, min_travel: float = 0.5
) -> Track | None:
    """The walking subject per the module rule, or None when no track is long enough."""
    if roi is not None:
        roi = np.asarray(roi, dtype=np.float32)

        def inside(t: Track) -> int:
            n = 0
            for b in t.boxes:
                cx, cy = box_center(b)
                n += int(roi[0] <= cx <= roi[0] + roi[2] and roi[1] <= cy <= roi[1] + roi[3])
            return n

        best = max(tracks, key=inside, default=None)
        if best is not None and inside(best) > 0:
            return best
        t = Track(-1, static_roi=True)
        t.add(0, roi)
        return t
    cands = [t for t in tracks if len(t) >= min_len]
    if not cands:
        return None
    best_travel = max(t.travel for t in cands)
    if best_travel >= min_travel:
        cands = [t for t in cands if t.travel >= 0.9 * best_travel]
    return max(cands, key=lambda t: (t.median_area, len(t)))


# -- appearance ------------------------------------------------------------------------------------

HIST_BINS = (16, 8)  # hue x saturation: clothing colour, mostly independent of brightness


def torso_region(box: np.ndarray) -> np.ndarray:
    """The torso part of a person box (x, y, w, h): the middle 40 % of the width, 22-52 % of the
    height, which is shirt for a standing person in a detector's or a keypoint box alike."""
    x, y, w, h = (float(v) for v in box)
    return np.array([x + 0.3 * w, y + 0.22 * h, 0.4 * w, 0.3 * h], dtype=np.float32)


def colour_histogram(image_bgr: np.ndarray, region: np.ndarray, min_pixels: int = 64) -> np.ndarray | None:
    """L1-normalised hue/saturation histogram of a region (x, y, w, h) of a BGR image; None when
    the region is (almost) outside the image. Dark pixels (V < 32) carry no reliable hue and are
    left out."""
    h_img, w_img = image_bgr.shape[:2]
    x0, y0 = max(0, int(region[0])), max(0, int(region[1]))
    x1, y1 = min(w_img, int(np.ceil(region[0] + region[2]))), min(h_img, int(np.ceil(region[1] + region[3])))
    if (x1 - x0) * (y1 - y0) < min_pixels:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(image_bgr[y0:y1, x0:x1]), cv2.COLOR_BGR2HSV)
    mask = (hsv[..., 2] >= 32).astype(np.uint8)
    if int(mask.sum()) < min_pixels // 2:
        mask = None  # a black shirt: its (dark) pixels are its colour
    hist = cv2.calcHist([hsv], [0, 1], mask, list(HIST_BINS), [0, 180, 0, 256]).astype(np.float32)
    total = float(hist.sum())
    return hist / total if total > 0 else None


def appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two normalised histograms: 0 identical, 1 disjoint."""
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def appearance_model(hists: list[np.ndarray | None]) -> np.ndarray | None:
    """Per-bin median of a person's histograms (renormalised): robust to a minority of wrong ones."""
    ok = [h for h in hists if h is not None]
    if not ok:
        return None
    med = np.median(np.stack(ok), axis=0).astype(np.float32)
    total = float(med.sum())
    return med / total if total > 0 else np.mean(np.stack(ok), axis=0).astype(np.float32)


# -- the subject over the whole recording ----------------------------------------------------------


@dataclass
class SubjectChoice:
    """A sampled frame where following the subject needed a decision a user may want to check."""

    frame: int
    reason: str  # "similar_appearance" | "appearance_over_motion" | "several_walkers"
    chosen_box: list[float]
    other_box: list[float]
    chosen_distance: float | None  # appearance distance to the subject model
    other_distance: float | None

    def to_dict(self) -> dict[str, object]:
        return {
            "frame": self.frame,
            "reason": self.reason,
            "chosen_box": [round(v, 1) for v in self.chosen_box],
            "other_box": [round(v, 1) for v in self.other_box],
            "chosen_distance": None if self.chosen_distance is None else round(self.chosen_distance, 3),
            "other_distance": None if self.other_distance is None else round(self.other_distance, 3),
        }


@dataclass
class FollowParams:
    """Costs of ``follow_subject`` (appearance distances are 0..1 Bhattacharyya)."""

    skip_cost: float | None = None  # per sampled frame without the subject: a detection looking worse is
    # not taken. None: the subject's own typical distance to its model (median over the seed) + skip_margin
    skip_margin: float = 0.25
    motion_weight: float = 0.5  # per body height off the constant-velocity prediction
    gate: float = 0.45  # max offset from the prediction, body heights, for a one-sample step ...
    gate_per_sample: float = 0.3  # ... plus this per further sample
    max_skip: int = 6  # sampled frames the subject may be missing between two detections
    similar: float = 0.08  # appearance margin under which a rival in the gate counts as a choice
    unknown_distance: float = 0.35  # appearance cost of a detection without a usable histogram


def follow_subject(
    detections: dict[int, list[tuple[np.ndarray, float]]],
    appearance: dict[int, list[np.ndarray | None]],
    seed: Track,
    params: FollowParams | None = None,
) -> tuple[Track, np.ndarray | None, list[SubjectChoice]]:
    """The subject's path over the whole recording (see the module docstring, rule 4).

    Returns (path as a Track, the subject's appearance model, choices). A static ROI track, or a
    seed whose detections have no histogram, is returned unchanged.
    """
    p = params or FollowParams()
    frames = sorted(detections)
    if seed.static_roi or not frames:
        return seed, None, []
    seed_hists = []
    for f, b in zip(seed.frames, seed.boxes, strict=True):
        for (box, _s), h in zip(detections.get(f, []), appearance.get(f, []), strict=False):
            if np.allclose(box, b):
                seed_hists.append(h)
                break
    model = appearance_model(seed_hists)
    if model is None:
        return seed, None, []
    if p.skip_cost is None:  # how alike the subject looks to itself depends on light, clothes and the detector
        own = np.median([appearance_distance(h, model) for h in seed_hists if h is not None])
        p = replace(p, skip_cost=float(np.clip(own + p.skip_margin, 0.4, 0.7)))
    assert p.skip_cost is not None
    nodes: list[tuple[int, int, np.ndarray, float]] = []  # (sample index, frame, box, appearance cost)
    by_sample: list[list[int]] = []
    for t, f in enumerate(frames):
        ids = []
        hists = appearance.get(f) or [None] * len(detections[f])
        for (box, _s), h in zip(detections[f], hists, strict=True):
            cost = p.unknown_distance if h is None else appearance_distance(h, model)
            ids.append(len(nodes))
            nodes.append((t, f, np.asarray(box, np.float32), cost))
        by_sample.append(ids)
    n_t = len(frames)
    best = np.full(len(nodes), np.inf)
    prev = np.full(len(nodes), -1)
    vel = np.zeros((len(nodes), 2))
    for i, (t, _f, _box, cost) in enumerate(nodes):  # nodes are in sample order: a forward pass is a DAG pass
        best[i] = p.skip_cost * t + cost
        for s_back in range(1, p.max_skip + 2):
            if t - s_back < 0:
                break
            for j in by_sample[t - s_back]:
                if not np.isfinite(best[j]):
                    continue
                step = _step_cost(nodes[j], vel[j], nodes[i], s_back, p)
                if step is None:
                    continue
                total = best[j] + step + p.skip_cost * (s_back - 1) + cost
                if total < best[i]:
                    best[i], prev[i] = total, j
        if prev[i] >= 0:
            j = int(prev[i])
            vel[i] = (box_center(nodes[i][2]) - box_center(nodes[j][2])) / max(nodes[i][1] - nodes[j][1], 1)
    if not nodes:
        return seed, model, []
    end = int(np.argmin([best[i] + p.skip_cost * (n_t - 1 - nodes[i][0]) for i in range(len(nodes))]))
    chain = []
    while end >= 0:
        chain.append(end)
        end = int(prev[end])
    chain.reverse()
    path = Track(seed.track_id)
    for i in chain:
        path.add(nodes[i][1], nodes[i][2])
    choices = _choices(nodes, by_sample, chain, vel, p)
    return path, model, choices


def _step_cost(a: tuple[int, int, np.ndarray, float], va: np.ndarray, b: tuple[int, int, np.ndarray, float],
               samples: int, p: FollowParams) -> float | None:
    """Motion cost of the subject going from detection ``a`` to ``b``; None outside the gate."""
    ratio = float(b[2][3]) / max(float(a[2][3]), 1.0)
    if not 0.6 <= ratio <= 1.67:
        return None
    off = _offset(a, va, b) / max(float(a[2][3]), 1.0)
    if off > p.gate + p.gate_per_sample * (samples - 1):
        return None
    return p.motion_weight * off


def _offset(a: tuple[int, int, np.ndarray, float], va: np.ndarray, b: tuple[int, int, np.ndarray, float]) -> float:
    """Pixels between ``b`` and where the subject at ``a`` should be: the nearer of the constant
    velocity prediction and the standing-still one (people stop and turn at the end of a walkway)."""
    cb, ca = box_center(b[2]), box_center(a[2])
    return float(min(np.linalg.norm(cb - (ca + va * (b[1] - a[1]))), np.linalg.norm(cb - ca)))


def _choices(nodes: list[tuple[int, int, np.ndarray, float]], by_sample: list[list[int]], chain: list[int],
             vel: np.ndarray, p: FollowParams) -> list[SubjectChoice]:
    out = []
    for k, i in enumerate(chain):
        if k == 0:
            continue
        j = chain[k - 1]
        t, f, box, cost = nodes[i]
        off_i = _offset(nodes[j], vel[j], nodes[i])
        for o in by_sample[t]:
            if o == i:
                continue
            step = _step_cost(nodes[j], vel[j], nodes[o], t - nodes[j][0], p)
            if step is None or box_iou(nodes[o][2], box) > 0.7:  # outside the gate, or the same person twice
                continue
            off_o = _offset(nodes[j], vel[j], nodes[o])
            reason = None
            if nodes[o][3] - cost < p.similar:
                reason = "similar_appearance"
            elif off_o < off_i + 0.1 * float(box[3]):  # motion could not tell them apart, or preferred the other
                reason = "appearance_over_motion"
            if reason:
                out.append(SubjectChoice(f, reason, [float(v) for v in box], [float(v) for v in nodes[o][2]],
                                         float(cost), float(nodes[o][3])))
                break
    return out


def other_people_models(tracks: list[Track], appearance: dict[int, list[np.ndarray | None]],
                        detections: dict[int, list[tuple[np.ndarray, float]]], subject: Track,
                        min_len: int = 2) -> list[np.ndarray]:
    """Appearance models of the people who are not the subject, for the labeller's per-frame check
    that its keypoints sit on the subject. A detection overlapping the subject's path (its box at
    that frame, interpolated between samples) is the subject seen twice (a second detector, a
    fragment of its track) and does not count."""
    out = []
    for t in tracks:
        hists = []
        for f, b in zip(t.frames, t.boxes, strict=True):
            ref = subject.box_at(f)
            if ref is not None and box_iou(b, ref) > 0.3:
                continue
            for (box, _s), h in zip(detections.get(f, []), appearance.get(f, []), strict=False):
                if np.allclose(box, b):
                    hists.append(h)
                    break
        if len([h for h in hists if h is not None]) >= min_len:
            m = appearance_model(hists)
            if m is not None:
                out.append(m)
    return out
