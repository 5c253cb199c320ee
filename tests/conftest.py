"""Shared fixtures. ``labelled_crops``: 16 real frames pseudo-labelled by the real MediaPipe teacher."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


def _teacher_on_region(teacher, image_rgb: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run the teacher on an axis-aligned region and return keypoints in full-frame pixels."""
    h, w = image_rgb.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(np.ceil(box[0] + box[2]))), min(h, int(np.ceil(box[1] + box[3])))
    out = teacher(np.ascontiguousarray(image_rgb[y0:y1, x0:x1]))
    return out.keypoints + np.array([x0, y0], np.float32), out.scores


def make_teacher_labels(video: Path, out_dir: Path, num_frames: int = 16, recording: str = "cam01") -> Path:
    """Write ``num_frames`` JPEGs and a gaitpose COCO label file labelled by MediaPipe; returns the JSON path.

    A first full-frame pass finds the man; the teacher then runs on a padded crop around him
    (as the real labeller does), and only confident keypoints inside the frame are kept.
    """
    from data_tools.teachers.mediapipe_teacher import MediaPipeTeacher
    from gaitpose.geometry import expand_box, keypoints_to_box
    from gaitpose.skeleton import NUM_KEYPOINTS, coco_category

    frames_dir = out_dir / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = set(np.linspace(0, total - 1, num_frames).round().astype(int).tolist())
    images, anns = [], []
    with MediaPipeTeacher() as teacher:
        index = -1
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            index += 1
            if index not in wanted:
                continue
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            kp, sc = _teacher_on_region(teacher, rgb, np.array([0, 0, w, h], np.float32))
            first = keypoints_to_box(kp, sc > 0.5)
            if first is None:
                continue
            kp, sc = _teacher_on_region(teacher, rgb, expand_box(first, 1.4, (w, h)))
            inside = (kp[:, 0] >= 0) & (kp[:, 0] < w) & (kp[:, 1] >= 0) & (kp[:, 1] < h)
            keep = (sc >= 0.5) & inside
            box = keypoints_to_box(kp, keep)
            if box is None or keep.sum() < 12:
                continue
            box = expand_box(box, 1.1, (w, h))
            name = f"{recording}/{index:06d}.jpg"
            (frames_dir / recording).mkdir(exist_ok=True)
            cv2.imwrite(str(frames_dir / name), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": name, "width": w, "height": h, "recording": recording,
                           "subject": "s1", "frame_index": index, "t_ms": index * 1000.0 / 30.0})
            kps = np.zeros((NUM_KEYPOINTS, 3), np.float32)
            kps[keep, :2] = kp[keep]
            kps[keep, 2] = 2
            anns.append({"id": image_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                         "bbox": [float(v) for v in box], "area": float(box[2] * box[3]),
                         "num_keypoints": int(keep.sum()), "keypoints": [float(v) for v in kps.reshape(-1)],
                         "keypoint_scores": [float(s) if k else 0.0 for s, k in zip(sc, keep, strict=True)]})
    cap.release()
    data = {"info": {"frames_root": "frames", "teacher": "mediapipe"}, "images": images, "annotations": anns,
            "categories": [coco_category()]}
    path = out_dir / "labels.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def labelled_crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """COCO label file (16 frames of ``pose2sim_cam01.mp4``, one man) with JPEG frames beside it."""
    out = tmp_path_factory.mktemp("labelled_crops")
    path = make_teacher_labels(DATA / "pose2sim_cam01.mp4", out, num_frames=16)
    n = len(json.loads(path.read_text())["annotations"])
    assert n >= 14, f"teacher labelled only {n} of 16 frames"
    return path


TINY_MODEL = {
    "stages": [[1, 8, 1, 1], [3, 16, 1, 2], [3, 24, 2, 2], [3, 32, 2, 2], [3, 48, 1, 2]],
    "stem_channels": 8,
    "decoder_channels": 32,
}
"""A ~25k-parameter student for tests: same architecture family, small enough for seconds of CPU."""


@pytest.fixture(scope="session")
def overfit_run(labelled_crops: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny student trained (augmentation off) on the 16 labelled crops; returns train_model's result.

    One thread: on a shared, oversubscribed CPU two OpenMP threads spin against each other and
    run ~20x slower than one.
    """
    import torch

    from gaitpose.labels import load_records
    from gaitpose.nn import build_model
    from gaitpose.train.config import TrainConfig
    from gaitpose.train.loop import train_model

    torch.set_num_threads(1)
    records = load_records(labelled_crops)
    cfg = TrainConfig(
        epochs=60, batch_size=16, lr=1e-2, warmup_epochs=3, min_lr_ratio=0.05, input_size=(128, 96), threads=1,
        workers=0, val_every=20, augment=False, model=TINY_MODEL, device="cpu",
    )
    out = tmp_path_factory.mktemp("overfit_run")
    model = build_model(cfg.model_config_dict())
    result = train_model(model, records, records, cfg, out, progress=False)
    result["model"] = model
    result["cfg"] = cfg
    result["records"] = records
    return result
