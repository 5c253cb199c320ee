"""Runtime pieces without any model: subject tracker logic and localiser decoding through the letterbox."""

from __future__ import annotations

import numpy as np
import pytest

from gaitpose.geometry import box_iou
from gaitpose.infer.localizer import Letterbox, decode_localizer
from gaitpose.infer.tracker import SubjectTracker
from gaitpose.skeleton import NUM_KEYPOINTS

W, H = 640, 360


def fake_pose(box: np.ndarray, score: float = 0.9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """21 points spread over a box (corners included, so the tight box is the box itself)."""
    rng = np.random.default_rng(seed)
    x, y, w, h = box
    pts = np.column_stack([x + rng.uniform(0, w, NUM_KEYPOINTS), y + rng.uniform(0, h, NUM_KEYPOINTS)])
    pts[0] = (x, y)
    pts[1] = (x + w, y + h)
    return pts.astype(np.float32), np.full(NUM_KEYPOINTS, score, np.float32)


def subject_at(t: int) -> np.ndarray:
    """The subject walks right-to-left at 4 px/frame."""
    return np.array([450.0 - 4 * t, 60.0, 80.0, 240.0])


BYSTANDER = np.array([40.0, 20.0, 140.0, 330.0])  # bigger and higher-scoring than the subject


class FakeLocalizer:
    """Synthetic detections; records the frames it was asked about."""

    def __init__(self) -> None:
        self.frames: list[int] = []
        self.t = 0
        self.with_subject = True
        self.with_bystander = False

    def __call__(self) -> list[tuple[np.ndarray, float]]:
        self.frames.append(self.t)
        dets = []
        if self.with_bystander:
            dets.append((BYSTANDER.copy(), 0.95))
        if self.with_subject:
            dets.append((subject_at(self.t) + np.array([2, -3, 4, 6]), 0.6))
        return dets


def run(tracker: SubjectTracker, loc: FakeLocalizer, frames: range, weak: set[int] = frozenset()) -> list:
    boxes = []
    for t in frames:
        loc.t = t
        box = tracker.next_box(loc)
        boxes.append(box)
        if box is None:
            tracker.update(None, None)
            continue
        kp, sc = fake_pose(subject_at(t), score=0.1 if t in weak else 0.9, seed=t)
        tracker.update(kp, sc)
    return boxes


def center(b: np.ndarray) -> np.ndarray:
    return np.array([b[0] + b[2] / 2, b[1] + b[3] / 2])


def test_tracker_runs_localizer_only_at_start_when_pose_stays_confident() -> None:
    tr, loc = SubjectTracker((W, H)), FakeLocalizer()
    boxes = run(tr, loc, range(60))
    assert tr.localizer_calls == 1 and loc.frames == [0]
    # Every crop box holds the subject's true centre (keypoint box + velocity prediction).
    for t, b in enumerate(boxes):
        assert np.linalg.norm(center(b) - center(subject_at(t))) < 8.0, t


def test_tracker_redetects_when_confidence_drops_and_keeps_subject_over_bigger_bystander() -> None:
    tr, loc = SubjectTracker((W, H)), FakeLocalizer()
    run(tr, loc, range(20))
    loc.with_bystander = True  # a bigger, more confident person enters
    boxes = run(tr, loc, range(20, 50), weak={30, 31})
    # Confidence dropped at frames 30 and 31 -> re-detection at 31 and 32 only.
    assert loc.frames == [0, 31, 32]
    assert tr.localizer_calls == 3
    for t, b in zip(range(20, 50), boxes, strict=True):
        assert np.linalg.norm(center(b) - center(subject_at(t))) < 25.0, t
        assert b[0] > BYSTANDER[0] + BYSTANDER[2], "tracker jumped to the bystander"


def test_tracker_start_rule_highest_score_or_roi() -> None:
    loc = FakeLocalizer()
    loc.with_bystander = True
    tr = SubjectTracker((W, H))
    b = tr.next_box(loc)
    assert np.allclose(b, BYSTANDER), "without --roi the highest-scoring peak starts the track"
    tr = SubjectTracker((W, H), roi=subject_at(0))
    b = tr.next_box(loc)
    assert np.linalg.norm(center(b) - center(subject_at(0))) < 5


def test_tracker_lost_subject_never_adopts_far_bystander() -> None:
    tr, loc = SubjectTracker((W, H)), FakeLocalizer()
    run(tr, loc, range(10))
    loc.with_subject, loc.with_bystander = False, True  # subject occluded, bystander visible far away
    boxes = run(tr, loc, range(10, 20), weak=set(range(10, 20)))
    # The track coasts on its own prediction for a few frames; it never moves onto the bystander.
    assert all(b is None or box_iou(np.asarray(b), BYSTANDER) < 0.05 for b in boxes), "bystander adopted"
    assert any(b is not None for b in boxes[1:5]), "a briefly weak subject should be coasted, not dropped"
    assert tr.localizer_calls == 1 + 9  # start, then every frame after the confidence drop at 10


def test_tracker_stops_coasting_after_max_coast_frames() -> None:
    tr, loc = SubjectTracker((W, H), max_coast=3), FakeLocalizer()
    run(tr, loc, range(10))
    loc.with_subject = False  # the localiser no longer sees anyone
    boxes = run(tr, loc, range(10, 20), weak=set(range(10, 20)))
    assert all(b is not None for b in boxes[1:3]) and all(b is None for b in boxes[4:])


def test_tracker_redetects_when_box_leaves_frame() -> None:
    tr, loc = SubjectTracker((W, H)), FakeLocalizer()
    tr.next_box(loc)
    kp, sc = fake_pose(np.array([610.0, 60.0, 80.0, 240.0]))  # mostly right of the frame
    tr.update(kp, sc)
    calls = tr.localizer_calls
    tr.next_box(loc)
    assert tr.localizer_calls == calls + 1


# --- localiser decoding ------------------------------------------------------------------------


def synthetic_maps(lb: Letterbox, boxes_scores: list[tuple[np.ndarray, float]], stride: int = 4) -> np.ndarray:
    """Build the network output that encodes given frame boxes exactly (peak, size, offset)."""
    w_in, h_in = lb.dst_wh
    maps = np.zeros((5, h_in // stride, w_in // stride), np.float32)
    for box, score in boxes_scores:
        bi = lb.box_to_input(box)
        c = (np.array([bi[0] + bi[2] / 2, bi[1] + bi[3] / 2]) + 0.5) / stride - 0.5
        cx, cy = int(np.rint(c[0])), int(np.rint(c[1]))
        maps[0, cy, cx] = score
        maps[0, cy, cx + 1] = score * 0.9  # a neighbour: suppressed by the 3x3 max-pool NMS
        maps[1:, cy, cx] = (bi[2] / w_in, bi[3] / h_in, c[0] - cx, c[1] - cy)
    return maps


@pytest.mark.parametrize("src_wh", [(640, 360), (270, 480), (1920, 1080)])
def test_localizer_decode_recovers_boxes_through_letterbox(src_wh: tuple[int, int]) -> None:
    lb = Letterbox.fit(src_wh, (320, 192))
    w, h = src_wh
    a = np.array([0.3 * w, 0.2 * h, 0.12 * w, 0.55 * h])
    b = np.array([0.7 * w, 0.1 * h, 0.1 * w, 0.3 * h])
    maps = synthetic_maps(lb, [(a, 0.8), (b, 0.5)])
    maps[0, 2, 2] = 0.2  # below threshold
    dets = decode_localizer(maps, lb, 4, score_threshold=0.3)
    assert len(dets) == 2
    assert dets[0][1] == pytest.approx(0.8) and dets[1][1] == pytest.approx(0.5)
    np.testing.assert_allclose(dets[0][0], a, atol=1e-2)
    np.testing.assert_allclose(dets[1][0], b, atol=1e-2)


def test_letterbox_round_trip_and_padding() -> None:
    lb = Letterbox.fit((640, 360), (320, 192))
    assert lb.new_wh == (320, 180) and lb.pad == (0, 6)
    pts = np.array([[0.0, 0.0], [639.0, 359.0], [123.4, 56.7]])
    np.testing.assert_allclose(lb.to_source(lb.to_input(pts)), pts, atol=1e-9)
    img = np.full((360, 640, 3), 255, np.uint8)
    canvas = lb.apply(img)
    assert canvas.shape == (192, 320, 3)
    assert canvas[:6].max() == 0 and canvas[186:].max() == 0 and canvas[6:186].min() == 255


def test_tracker_searches_every_other_frame_until_the_subject_appears() -> None:
    tr, loc = SubjectTracker((W, H)), FakeLocalizer()
    loc.with_subject = False
    boxes = run(tr, loc, range(6))
    assert boxes == [None] * 6
    assert loc.frames == [0, 2, 4], "while nobody is tracked the localiser runs on every 2nd frame"
    loc.with_subject = True
    boxes = run(tr, loc, range(6, 12))
    # Found at frame 6 (a search frame), then tracked from keypoints with no further localiser calls.
    assert loc.frames == [0, 2, 4, 6]
    assert all(b is not None for b in boxes)
    tr, loc = SubjectTracker((W, H), search_every=1), FakeLocalizer()
    loc.with_subject = False
    run(tr, loc, range(4))
    assert loc.frames == [0, 1, 2, 3]
