"""Pseudo-labelling real clips with the real MediaPipe teacher: subject choice, mirror rule, COCO output."""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from data_tools.cli import app
from gaitpose.labels import load_records
from gaitpose.skeleton import NUM_KEYPOINTS, OKS_SIGMAS
from tests.frames_fixture import synthetic_frame_store, video_to_frame_store

DATA = Path(__file__).parent / "data"
runner = CliRunner()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("label")
    frames = root / "frames"
    video_to_frame_store(DATA / "sports2d_walk.mp4", frames, "walk", subject="woman")
    video_to_frame_store(DATA / "pose2sim_cam01.mp4", frames, "lab", subject="man")
    video_to_frame_store(DATA / "pose2sim_cam02_two_people.mp4", frames, "two", subject="man")
    out = root / "out" / "labels.json"
    t0 = time.perf_counter()
    res = runner.invoke(app, ["label", str(frames), "--out", str(out), "--stride", "3"])
    elapsed = time.perf_counter() - t0
    assert res.exit_code == 0, res.output
    return {"frames": frames, "out": out, "output": res.output, "data": json.loads(out.read_text()),
            "seconds": elapsed}


def test_walking_woman_is_the_subject_in_every_labelled_frame(labelled: dict) -> None:
    recs = sorted((r for r in load_records(labelled["out"]) if r.recording == "walk"), key=lambda r: r.frame_index)
    assert recs
    cx = np.array([r.bbox[0] + r.bbox[2] / 2 for r in recs])
    cy = np.array([r.bbox[1] + r.bbox[3] / 2 for r in recs])
    h = np.array([r.bbox[3] for r in recs])
    # She walks right to left along the grass (centre y ~265, ~160 px tall); the man on the box has
    # his centre above y=130 and the bystander at the left edge never moves: any switch breaks these.
    assert np.all((cy > 220) & (cy < 310)), cy
    assert np.all((h > 110) & (h < 230)), h
    assert np.all(np.diff(cx) < 12), np.diff(cx)  # never jumps right (jitter allowed)
    assert cx[0] - cx[-1] > 400  # travels across the frame
    # Found in >= 90 % of the frames of her walking segment.
    walking = [img["frame_index"] for img in labelled["data"]["images"]
               if img["recording"] == "walk" and 10 <= img["frame_index"] <= 170]
    found = {r.frame_index for r in recs}
    assert sum(f in found for f in walking) / len(walking) >= 0.9


def test_two_people_no_identity_switch(labelled: dict) -> None:
    """Lab clip with the subject on the force plates and a woman standing behind him to his left
    (her nose near x=265, her box ~140 px tall): every label stays on him."""
    from gaitpose.skeleton import INDEX

    recs = sorted((r for r in load_records(labelled["out"]) if r.recording == "two"), key=lambda r: r.frame_index)
    frames = [img for img in labelled["data"]["images"] if img["recording"] == "two"]
    assert len(recs) >= 0.8 * len(frames)  # the teacher itself fails on a few of his sideways leans
    hips = []
    for r in recs:
        assert r.bbox[3] > 200, (r.frame_index, r.bbox)  # his box, not hers
        if r.scores[INDEX["nose"]] > 0:
            assert r.keypoints[INDEX["nose"], 0] < 245, (r.frame_index, r.keypoints[INDEX["nose"]])
        lr = [INDEX["left_hip"], INDEX["right_hip"]]
        if (r.scores[lr] > 0).all():
            hips.append((r.frame_index, r.keypoints[lr].mean(0)))
    assert len(hips) >= 0.8 * len(recs)
    xs = np.array([h[1][0] for h in hips])
    assert np.all((xs > 130) & (xs < 230)), xs
    assert np.all(np.abs(np.diff(xs)) < 30), np.diff(xs)  # no jump to another person
    track = labelled["data"]["info"]["recordings"]["two"]["subject_track"]
    assert track["appearance_model"] is True
    assert isinstance(track["choices"], list) and track["frames_rejected_other_person"] >= 0


def test_stats_and_mirror_drops_are_counted(labelled: dict) -> None:
    data = labelled["data"]
    stats = data["info"]["recordings"]
    images = {img["id"]: img for img in data["images"]}
    for rec in ("walk", "lab"):
        s = stats[rec]
        anns = [a for a in data["annotations"] if images[a["image_id"]]["recording"] == rec]
        assert s["frames_labelled"] == len(anns)
        assert s["labelled_fraction"] == pytest.approx(len(anns) / s["frames"], abs=1e-3)
        assert s["teacher_seconds"] > 0
        kept = sum(a["num_keypoints"] for a in anns)
        assert kept == s["keypoints_kept"]
        assert s["keypoints_kept"] + s["keypoints_dropped_disagree"] <= len(anns) * NUM_KEYPOINTS
    assert stats["walk"]["keypoints_dropped_disagree"] > 0  # the rule really fires on the real clip
    assert "dropped" in labelled["output"] and "walk: labelled" in labelled["output"]
    for a in data["annotations"]:
        kp = np.asarray(a["keypoints"]).reshape(-1, 3)
        dropped = kp[:, 2] == 0
        assert np.all(kp[dropped, :2] == 0) and np.all(np.asarray(a["keypoint_scores"])[dropped] == 0)
        assert set(np.unique(kp[:, 2])) <= {0, 2}
        assert a["num_keypoints"] == int((~dropped).sum())


def test_label_file_contract_and_pycocotools_ap_is_one(labelled: dict) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    data = labelled["data"]
    out: Path = labelled["out"]
    assert (out.parent / data["info"]["frames_root"]).resolve() == labelled["frames"].resolve()
    img = data["images"][0]
    assert {"id", "file_name", "width", "height", "recording", "subject", "frame_index", "t_ms"} <= set(img)
    assert len({i["id"] for i in data["images"]}) == len(data["images"])
    recs = load_records(out)
    assert all(r.image_path.exists() for r in recs)
    gt = COCO(str(out))
    results = []
    for a in data["annotations"]:
        r = copy.deepcopy(a)
        r["score"] = 1.0
        results.append(r)
    dt = gt.loadRes(results)
    ev = COCOeval(gt, dt, iouType="keypoints")
    ev.params.kpt_oks_sigmas = OKS_SIGMAS
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_no_person_gives_one_line_error_and_no_output(tmp_path: Path) -> None:
    frames = synthetic_frame_store(tmp_path / "frames", "empty_room")
    out = tmp_path / "labels.json"
    res = runner.invoke(app, ["label", str(frames), "--out", str(out)])
    assert res.exit_code != 0
    errors = [ln.strip() for ln in re.split(r"[\r\n]+", res.output) if ln.strip().startswith("error:")]
    assert len(errors) == 1 and "empty_room" in errors[0] and "no person" in errors[0], res.output
    assert not out.exists()


def test_no_mirror_drops_nothing(tmp_path: Path) -> None:
    frames = video_to_frame_store(DATA / "pose2sim_cam01.mp4", tmp_path / "frames", "lab", stride=5)
    out = tmp_path / "labels.json"
    res = runner.invoke(app, ["label", str(frames), "--out", str(out), "--no-mirror"])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())["info"]["recordings"]["lab"]
    assert s["keypoints_dropped_disagree"] == 0 and s["labelled_fraction"] >= 0.9
    assert s["teacher_calls"] < 2 * s["frames"] + s["detector_runs"]


def test_man_from_behind_is_labelled_not_rejected_as_another_person(tmp_path: Path) -> None:
    """Regression: lab camera 3 (tests/data/pose2sim_cam03_back.mp4) shows the man from behind;
    nobody travels and HOG's largest box is a static false positive on the wall at the top right.
    Seeding the subject with it made every frame fail ("the teacher found no person"); the old
    labeller and this one label nearly all frames, on him (box centre low in the frame, left part)."""
    frames = video_to_frame_store(DATA / "pose2sim_cam03_back.mp4", tmp_path / "frames", "back", stride=3)
    out = tmp_path / "labels.json"
    res = runner.invoke(app, ["label", str(frames), "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    s = data["info"]["recordings"]["back"]
    assert s["frames_labelled"] >= 0.9 * s["frames"], s
    assert s["subject_track"]["frames_rejected_other_person"] <= 1, s["subject_track"]
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        assert y + h / 2 > 180 and x + w / 2 < 180 and h > 150, a["bbox"]  # the wall box is centred at y~140

