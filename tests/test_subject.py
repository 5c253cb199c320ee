"""Direct tests of the subject-selection logic (``data_tools.subject``) on drawn scenes.

People are drawn as figures with a coloured shirt on a grey floor, so appearance is computed from
real pixels by the same code the labeller runs; detections are the drawn boxes. Each scene is a
case where motion alone picks the wrong person: two people who meet and turn back, an occlusion
with a bystander beside the subject, and a duplicate detection of the subject.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from data_tools.subject import (
    FollowParams,
    Track,
    appearance_distance,
    build_tracks,
    choose_subject,
    colour_histogram,
    follow_subject,
    other_people_models,
    torso_region,
)
from gaitpose.geometry import box_center

H, W = 360, 640
PERSON = (60.0, 160.0)  # w, h of a drawn person's box
RED, BLUE, GREEN = (40, 40, 200), (200, 60, 30), (40, 170, 40)  # BGR shirts


def _box(cx: float, y: float = 150.0) -> np.ndarray:
    return np.array([cx - PERSON[0] / 2, y, *PERSON], dtype=np.float32)


def _draw(image: np.ndarray, box: np.ndarray, shirt: tuple[int, int, int]) -> None:
    x, y, w, h = (int(v) for v in box)
    cv2.circle(image, (x + w // 2, y + int(0.1 * h)), int(0.09 * h), (150, 170, 210), -1)  # head
    cv2.rectangle(image, (x + int(0.15 * w), y + int(0.2 * h)), (x + int(0.85 * w), y + int(0.58 * h)), shirt, -1)
    cv2.rectangle(image, (x + int(0.25 * w), y + int(0.58 * h)), (x + int(0.75 * w), y + h), (50, 50, 50), -1)


def _scene(people: list[tuple[np.ndarray, tuple[int, int, int]]], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.full((H, W, 3), 128, np.uint8)
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    for box, shirt in people:  # later people are drawn in front
        _draw(image, box, shirt)
    return image


def _detect(frames: dict[int, list[tuple[np.ndarray, tuple[int, int, int]]]]):
    """Detections (the drawn boxes, in shuffled order) and their torso histograms from real pixels."""
    rng = np.random.default_rng(0)
    detections, appearance = {}, {}
    for f, people in frames.items():
        image = _scene(people, f)
        order = rng.permutation(len(people))
        detections[f] = [(people[i][0], 1.0) for i in order]
        appearance[f] = [colour_histogram(image, torso_region(people[i][0])) for i in order]
    return detections, appearance


def _shirt_at(path: Track, frames: dict, frame: int) -> tuple[int, int, int] | None:
    for box, shirt in frames[frame]:
        if frame in path.frames and np.allclose(path.boxes[path.frames.index(frame)], box):
            return shirt
    return None


def test_colour_histograms_tell_shirts_apart_and_ignore_noise() -> None:
    a = _scene([(_box(200), RED)], 1)
    b = _scene([(_box(420), RED)], 2)  # same shirt, other place, other noise
    c = _scene([(_box(200), BLUE)], 3)
    ha, hb, hc = (colour_histogram(img, torso_region(bx)) for img, bx in ((a, _box(200)), (b, _box(420)),
                                                                           (c, _box(200))))
    assert ha is not None and hb is not None and hc is not None
    assert ha.sum() == pytest.approx(1.0)
    assert appearance_distance(ha, hb) < 0.2 < 0.8 < appearance_distance(ha, hc)
    assert colour_histogram(a, np.array([700, 10, 40, 40], np.float32)) is None  # outside the image


def _meet_and_turn_back() -> dict[int, list[tuple[np.ndarray, tuple[int, int, int]]]]:
    """Red walks right, blue walks left (0.25 body heights per sample); they meet in the middle,
    blue passing in front, and both turn back: after the meeting, motion alone says red is the one
    still moving right."""
    frames = {}
    for k in range(12):
        d = 40.0 * (k if k <= 5 else 10 - k)
        frames[10 * k] = [(_box(100 + d), RED), (_box(540 - d), BLUE)]
    return frames


def test_motion_alone_swaps_at_a_turn_back_and_appearance_does_not() -> None:
    frames = _meet_and_turn_back()
    detections, appearance = _detect(frames)

    def mixed(tracks: list[Track]) -> int:
        n = 0
        for t in tracks:
            shirts = {_shirt_at(t, frames, f) for f in t.frames}
            n += len(shirts) > 1
        return n

    assert mixed(build_tracks(detections, max_gap_frames=30)) > 0  # the greedy motion tracker swaps
    assert mixed(build_tracks(detections, max_gap_frames=30, appearance=appearance)) == 0


def test_follow_subject_keeps_the_subject_through_a_turn_back_and_reports_the_choice() -> None:
    frames = _meet_and_turn_back()
    detections, appearance = _detect(frames)
    seed = Track(0)
    for f in (0, 10, 20):  # what choose_subject hands over: red's first detections
        seed.add(f, frames[f][0][0])
    path, model, choices = follow_subject(detections, appearance, seed)
    assert model is not None
    assert path.frames == sorted(frames)  # found at every sampled frame
    assert all(_shirt_at(path, frames, f) == RED for f in path.frames)
    cx = [box_center(b)[0] for b in path.boxes]
    assert np.argmax(cx) == 5 and cx[-1] < cx[5] - 150  # she turned back, and so did the path
    assert choices, "the crossing needed a decision and it must be reported"
    assert {c.frame for c in choices} <= set(range(40, 80)), [c.to_dict() for c in choices]
    assert {c.reason for c in choices} <= {"appearance_over_motion", "similar_appearance"}
    d = choices[0].to_dict()
    assert d["chosen_distance"] < d["other_distance"] and len(d["other_box"]) == 4


def test_look_alikes_at_a_crossing_are_reported_as_similar_appearance() -> None:
    """Two people in the same shirt cross: the path cannot know; it must say so."""
    frames = {10 * k: [(_box(120 + 40.0 * k), RED), (_box(520 - 40.0 * k), RED)] for k in range(11)}
    detections, appearance = _detect(frames)
    seed = Track(0)
    for f in (0, 10, 20):
        seed.add(f, frames[f][0][0])
    path, _model, choices = follow_subject(detections, appearance, seed)
    assert len(path) == len(frames)
    assert any(c.reason == "similar_appearance" for c in choices)


def test_subject_is_picked_up_after_an_occlusion_not_the_bystander() -> None:
    """Green walks right and is hidden for three samples behind a pillar; a red bystander stands
    where motion would look for green. The path skips the hidden samples and takes green again."""
    frames = {}
    for k in range(12):
        people = [(_box(440, 160.0), RED)]  # the bystander
        if not 5 <= k <= 7:
            people.append((_box(100 + 40.0 * k), GREEN))
        frames[10 * k] = people
    detections, appearance = _detect(frames)
    seed = Track(0)
    for f in (0, 10, 20):
        seed.add(f, next(b for b, s in frames[f] if s == GREEN))
    path, _model, _choices = follow_subject(detections, appearance, seed)
    assert path.frames == [f for f in sorted(frames) if not 50 <= f <= 70]
    assert all(_shirt_at(path, frames, f) == GREEN for f in path.frames)
    # between the samples the labeller interpolates across the gap, never onto the bystander
    mid = path.box_at(60)
    assert mid is not None and abs(box_center(mid)[0] - (100 + 40.0 * 6)) < 1.0


def test_a_subject_that_stops_and_turns_is_kept_by_the_standing_prediction() -> None:
    frames = {10 * k: [(_box(200 + 40.0 * (k if k <= 4 else 8 - k)), GREEN)] for k in range(9)}
    detections, appearance = _detect(frames)
    seed = Track(0)
    seed.add(0, frames[0][0][0])
    path, _model, choices = follow_subject(detections, appearance, seed)
    assert path.frames == sorted(frames) and not choices


def test_other_people_models_leave_out_duplicates_of_the_subject() -> None:
    """A second detector's box on the subject is the subject, not another person; the bystander is."""
    frames = {}
    for k in range(6):
        sub = _box(150 + 30.0 * k)
        dup = sub + np.array([4, -6, 6, 10], np.float32)
        frames[10 * k] = [(sub, GREEN), (dup, GREEN), (_box(500), RED)]
    detections, appearance = _detect(frames)
    tracks = build_tracks(detections, max_gap_frames=30, appearance=appearance)
    subject = choose_subject(tracks, min_len=3)
    assert subject is not None
    path, model, _ = follow_subject(detections, appearance, subject)
    others = other_people_models(tracks, appearance, detections, path)
    assert len(others) == 1  # only the bystander
    red = appearance[0][next(i for i, (b, _s) in enumerate(detections[0]) if b[0] > 400)]
    assert appearance_distance(others[0], red) < 0.2
    assert model is not None and appearance_distance(model, red) > 0.8


def test_roi_picks_the_track_inside_it_and_a_static_roi_is_followed_unchanged() -> None:
    frames = {10 * k: [(_box(120 + 40.0 * k), GREEN), (_box(500), RED)] for k in range(6)}
    detections, appearance = _detect(frames)
    tracks = build_tracks(detections, max_gap_frames=30, appearance=appearance)
    walker = choose_subject(tracks, min_len=3)
    assert walker is not None and walker.travel > 0.5  # the travel rule takes the walker
    roi = np.array([460, 100, 90, 260], np.float32)  # the user points at the one standing still
    chosen = choose_subject(tracks, min_len=3, roi=roi)
    assert chosen is not None and not chosen.static_roi and chosen.travel < 0.1
    path, _m, _c = follow_subject(detections, appearance, chosen)
    assert all(box_center(b)[0] > 450 for b in path.boxes)
    empty = choose_subject(tracks, min_len=3, roi=np.array([0, 0, 30, 30], np.float32))
    assert empty is not None and empty.static_roi
    same, model, choices = follow_subject(detections, appearance, empty)
    assert same is empty and model is None and not choices


def test_fixed_skip_cost_is_respected() -> None:
    """A detection that looks less like the subject than the skip cost is left out."""
    frames = {10 * k: [(_box(120 + 40.0 * k), GREEN if k != 3 else BLUE)] for k in range(6)}
    detections, appearance = _detect(frames)
    seed = Track(0)
    seed.add(0, frames[0][0][0])
    path, _m, _c = follow_subject(detections, appearance, seed, FollowParams(skip_cost=0.5))
    assert 30 not in path.frames and len(path) == 5


def test_when_nobody_travels_the_teacher_confirmed_person_beats_a_bigger_static_box() -> None:
    """Regression (lab camera 3, the man seen from behind): nobody travels half a body height, and
    HOG's biggest box is a false positive on the wall. The largest-box rule seeded the subject with
    the wall's colours, so the labeller rejected every teacher result on the man as 'another
    person'. The teacher's whole-frame person boxes now settle it."""
    wall = np.array([330, 0, 300, 340], np.float32)  # a static, larger box: no person in it
    frames = {10 * k: [(_box(200 - 5.0 * k), GREEN), (wall, BLUE)] for k in range(5)}
    detections, appearance = _detect(frames)
    tracks = build_tracks(detections, max_gap_frames=30, appearance=appearance)
    assert max(t.travel for t in tracks) < 0.5
    assert choose_subject(tracks, min_len=3).boxes[0][3] == 340  # the size rule alone takes the wall
    teacher = {f: people[0][0] + np.array([-3, 4, 6, -2], np.float32) for f, people in frames.items()}
    del teacher[20]  # the teacher may miss a frame
    chosen = choose_subject(tracks, min_len=3, people=teacher)
    assert chosen is not None and all(b[3] == PERSON[1] for b in chosen.boxes)
    path, model, _c = follow_subject(detections, appearance, chosen)
    assert all(_shirt_at(path, frames, f) == GREEN for f in path.frames) and len(path) == 5
    others = other_people_models(tracks, appearance, detections, path)
    assert model is not None and others and appearance_distance(model, others[0]) > 0.5
