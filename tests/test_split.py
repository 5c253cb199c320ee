"""Split by recording and subject: no recording or subject on two sides, deterministic, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from data_tools.cli import app
from data_tools.split import split_labels
from gaitpose.errors import InputError
from gaitpose.labels import load_records
from gaitpose.skeleton import NUM_KEYPOINTS, coco_category

runner = CliRunner()


def _labels(path: Path, recordings: dict[str, str | None], frames: int = 4) -> Path:
    images, anns = [], []
    for rec, subj in recordings.items():
        for f in range(frames):
            iid = len(images) + 1
            images.append({"id": iid, "file_name": f"{rec}/{f:06d}.jpg", "width": 64, "height": 64,
                           "recording": rec, "subject": subj, "frame_index": f, "t_ms": f * 33.3})
            if f % 2 == 0 or rec.endswith("0"):
                anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": 1, "iscrowd": 0,
                             "bbox": [1, 1, 30, 60], "area": 1800, "num_keypoints": NUM_KEYPOINTS,
                             "keypoints": [10, 10, 2] * NUM_KEYPOINTS, "keypoint_scores": [0.9] * NUM_KEYPOINTS})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"info": {"frames_root": "frames"}, "images": images, "annotations": anns,
                                "categories": [coco_category()]}))
    return path


def _splits(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def test_no_recording_or_subject_in_two_splits(tmp_path: Path) -> None:
    # 12 recordings of 8 subjects: s0 walked in rec00..rec03, s1 in rec04..rec05
    recs = {f"rec{i:02d}": f"s{max(0, i - 3) if i > 3 else 0}" for i in range(12)}
    recs["rec05"] = "s1"
    recs["rec04"] = "s1"
    src = _labels(tmp_path / "labels.json", recs)
    counts = split_labels(src, tmp_path / "split", val=0.2, test=0.2, seed=3)
    assert set(counts) == {"train", "val", "test"}
    splits = _splits(tmp_path / "split")
    seen_rec: dict[str, str] = {}
    seen_subj: dict[str, str] = {}
    ann_ids: set[int] = set()
    for name, data in splits.items():
        for img in data["images"]:
            assert seen_rec.setdefault(img["recording"], name) == name
            assert seen_subj.setdefault(img["subject"], name) == name
        ids = {a["id"] for a in data["annotations"]}
        assert not ids & ann_ids
        ann_ids |= ids
        img_ids = {i["id"] for i in data["images"]}
        assert all(a["image_id"] in img_ids for a in data["annotations"])
        # frames_root is rewritten relative to each output file and still points at the frames
        assert (tmp_path / "split" / data["info"]["frames_root"]).resolve() == (tmp_path / "frames").resolve()
        assert len(load_records(tmp_path / "split" / f"{name}.json")) == len(data["annotations"])
    src_data = json.loads(src.read_text())
    assert ann_ids == {a["id"] for a in src_data["annotations"]}
    assert set(seen_rec) == set(recs)
    # s0's four recordings travel together
    assert len({seen_rec[f"rec{i:02d}"] for i in range(4)}) == 1


def test_deterministic_by_seed_and_pins(tmp_path: Path) -> None:
    src = _labels(tmp_path / "labels.json", {f"r{i}": None for i in range(10)})
    a = split_labels(src, tmp_path / "a", seed=7)
    b = split_labels(src, tmp_path / "b", seed=7)
    assert a == b and _splits(tmp_path / "a") == _splits(tmp_path / "b")
    res = runner.invoke(app, ["split", str(src), "--out", str(tmp_path / "c"), "--test-recordings", "r1,r2",
                              "--val-recordings", "r3"])
    assert res.exit_code == 0, res.output
    assert "train:" in res.output and "test: 2 recordings" in res.output
    c = _splits(tmp_path / "c")
    assert {i["recording"] for i in c["test"]["images"]} == {"r1", "r2"}
    assert {i["recording"] for i in c["val"]["images"]} == {"r3"}


def test_too_few_recordings_is_a_clear_error(tmp_path: Path) -> None:
    src = _labels(tmp_path / "labels.json", {"a": "x", "b": "x", "c": "y"})  # two independent groups
    with pytest.raises(InputError, match="too few recordings"):
        split_labels(src, tmp_path / "out", val=0.15, test=0.15)
    res = runner.invoke(app, ["split", str(src), "--out", str(tmp_path / "out2"), "--val", "0.3", "--test", "0.3"])
    assert res.exit_code == 2 and "too few recordings" in res.output
    assert not (tmp_path / "out2" / "train.json").exists()
    res = runner.invoke(app, ["split", str(src), "--out", str(tmp_path / "o3"), "--test-recordings", "zzz"])
    assert res.exit_code == 2 and "zzz" in res.output
    ok = split_labels(src, tmp_path / "o4", val=0.0, test=0.3)
    assert set(ok) == {"train", "test"}
