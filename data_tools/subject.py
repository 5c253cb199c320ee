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
   box, then the longest track. When nobody travels at least half a body height, the track the
   teacher confirms most often (its whole-frame person box overlaps the track's box best) is
   taken, then the largest, then the longest: a static HOG false positive can be the largest box.
   ``roi`` overrides the rule: the track with most box centres inside the region wins,
   or, when none does, the region itself becomes a static guide box.

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

Rules 1-2 live in :mod:`data_tools.tracks`, the torso histograms in :mod:`data_tools.appearance`;
rules 3-4 are here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from data_tools.appearance import appearance_distance, appearance_model, colour_histogram, torso_region
from data_tools.tracks import PersonDetector, Track, build_tracks
from gaitpose.geometry import box_center, box_iou

__all__ = [  # detection, tracks and appearance are also served from here, as before
    "FollowParams",
    "PersonDetector",
    "SubjectChoice",
    "Track",
    "appearance_distance",
    "appearance_model",
    "build_tracks",
    "choose_subject",
    "colour_histogram",
    "follow_subject",
    "other_people_models",
    "rival_walkers",
    "teacher_confirmations",
    "torso_region",
]

log = logging.getLogger(__name__)


def choose_subject(
    tracks: list[Track], min_len: int = 3, roi: np.ndarray | None = None, min_travel: float = 0.5,
    people: dict[int, np.ndarray] | None = None,
) -> Track | None:
    """The walking subject per the module rule, or None when no track is long enough.

    ``people`` (sampled frame -> the teacher's one person box on the whole frame) settles the case
    where nobody travels: the track the teacher confirms at most samples is a person, whereas the
    largest box may be a static HOG false positive on a wall or a window (it does not move, so the
    travel rule would have ignored it). Seeding the subject with such a box gives the subject the
    wall's colours, and every teacher result on the real person is then rejected as "another person".
    """
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
    hits = teacher_confirmations(tracks, people or {})
    return max(cands, key=lambda t: (hits.get(t.track_id, 0), t.median_area, len(t)))


def teacher_confirmations(tracks: list[Track], people: dict[int, np.ndarray], min_iou: float = 0.3) -> dict[int, int]:
    """Per track id, the sampled frames where its box is the one that best overlaps the teacher's
    person box (IoU >= ``min_iou``): how often a person model agrees that the track is a person."""
    hits: dict[int, int] = {}
    boxes_at: dict[int, list[tuple[int, np.ndarray]]] = {}
    for t in tracks:
        for f, b in zip(t.frames, t.boxes, strict=True):
            boxes_at.setdefault(f, []).append((t.track_id, b))
    for f, person in people.items():
        scored = [(box_iou(b, person), tid) for tid, b in boxes_at.get(f, [])]
        if scored:
            iou, tid = max(scored, key=lambda x: x[0])
            if iou >= min_iou:
                hits[tid] = hits.get(tid, 0) + 1
    return hits


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


def rival_walkers(tracks: list[Track], chosen: Track, min_len: int) -> list[SubjectChoice]:
    """Other tracks that travel about as far as the chosen one: the travel rule had to break a tie."""
    out = []
    for t in tracks:
        if t is chosen or len(t) < min_len or chosen.travel < 0.5 or t.travel < 0.9 * chosen.travel:
            continue
        out.append(SubjectChoice(t.first, "several_walkers", [float(v) for v in chosen.boxes[0]],
                                 [float(v) for v in t.boxes[0]], None, None))
    return out


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
