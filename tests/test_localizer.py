"""Person localiser: targets agree with the runtime decoder; a tiny net trains, exports and runs in ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from typer.testing import CliRunner  # noqa: E402

from gaitpose.cli import app  # noqa: E402
from gaitpose.infer.localizer import Letterbox, OnnxLocalizer, decode_localizer  # noqa: E402
from gaitpose.skeleton import NUM_KEYPOINTS, coco_category  # noqa: E402
from gaitpose.train.localizer import make_targets  # noqa: E402


def write_label_file(root: Path, n: int = 12, size: tuple[int, int] = (320, 180)) -> Path:
    """Frames with one bright 'person' rectangle on a textured background + a COCO label file."""
    rng = np.random.default_rng(0)
    frames = root / "frames"
    frames.mkdir(parents=True)
    images, anns = [], []
    w, h = size
    for i in range(n):
        img = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)
        bw, bh = int(rng.integers(25, 45)), int(rng.integers(70, 120))
        x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        img[y : y + bh, x : x + bw] = (230, 200, 170)
        name = f"f{i:03d}.png"
        cv2.imwrite(str(frames / name), img)
        images.append({"id": i, "file_name": name, "width": w, "height": h, "recording": "synthetic",
                       "frame_index": i, "t_ms": i * 33.3})
        kp = np.zeros((NUM_KEYPOINTS, 3))
        kp[:, 0] = x + rng.uniform(0, bw, NUM_KEYPOINTS)
        kp[:, 1] = y + rng.uniform(0, bh, NUM_KEYPOINTS)
        kp[:, 2] = 2
        anns.append({"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "bbox": [x, y, bw, bh],
                     "area": bw * bh, "num_keypoints": NUM_KEYPOINTS, "keypoints": kp.reshape(-1).tolist(),
                     "keypoint_scores": [0.9] * NUM_KEYPOINTS})
    path = root / "labels.json"
    path.write_text(json.dumps({"info": {"frames_root": "frames"}, "images": images, "annotations": anns,
                                "categories": [coco_category()]}))
    return path


def test_training_targets_decode_back_to_the_boxes() -> None:
    """What the loss teaches is exactly what the runtime decodes (centre cell, offset, size)."""
    lb = Letterbox.fit((640, 360), (320, 192))
    boxes = np.array([[100.0, 40.0, 60.0, 200.0], [400.0, 120.0, 90.0, 230.0]])
    boxes_in = np.stack([lb.box_to_input(b) for b in boxes])
    heat, reg, _mask = make_targets(boxes_in, (320, 192), 4)
    maps = np.concatenate([heat, reg])
    dets = decode_localizer(maps, lb, 4, score_threshold=0.99)
    got = sorted((d[0] for d in dets), key=lambda b: b[0])
    assert len(got) == 2
    np.testing.assert_allclose(np.stack(got), boxes, atol=1e-2)


def test_train_localizer_cli_exports_a_model_onnxruntime_runs(tmp_path: Path) -> None:
    labels = write_label_file(tmp_path / "data", n=6)
    onnx_path = tmp_path / "models" / "localizer" / "model.onnx"
    res = CliRunner().invoke(app, ["train-localizer", "--train", str(labels), "--val", str(labels),
                                   "--out", str(tmp_path / "run"), "--epochs", "2", "--batch-size", "6",
                                   "--threads", "1", "--export", str(onnx_path)])
    assert res.exit_code == 0, res.output
    assert "best epoch" in res.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert 80_000 < summary["params"] < 300_000
    assert len(summary["history"]) == 2 and np.isfinite(summary["history"][-1]["train_heat"])
    meta = json.loads((onnx_path.parent / "meta.json").read_text())
    assert meta["kind"] == "localizer" and meta["input_size"] == [192, 320] and meta["stride"] == 4
    assert meta["extra"]["letterbox"]["align"] == "center"

    loc = OnnxLocalizer(onnx_path, threads=1, score_threshold=0.0)
    frame = cv2.cvtColor(cv2.imread(str(tmp_path / "data" / "frames" / "f000.png")), cv2.COLOR_BGR2RGB)
    maps, _ = loc.raw(frame)
    assert maps.shape == (5, 48, 80)
    assert maps[0].min() >= 0.0 and maps[0].max() <= 1.0  # sigmoid is inside the exported graph
    dets = loc.detect(frame, max_detections=3)
    assert 1 <= len(dets) <= 3 and loc.calls == 1
    assert all(d[0].shape == (4,) for d in dets)

    # Parity with the torch checkpoint it was exported from.
    from gaitpose.nn.localizer import LocalizerForExport, build_localizer

    ckpt = torch.load(summary["checkpoint"], map_location="cpu", weights_only=True)
    net = build_localizer(ckpt["cfg"])
    net.load_state_dict(ckpt["state_dict"])
    x, _ = loc.preprocess(frame)
    with torch.no_grad():
        ref = LocalizerForExport(net).eval()(torch.from_numpy(x)).numpy()[0]
    np.testing.assert_allclose(maps, ref, atol=1e-3)


def test_train_localizer_rejects_bad_label_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res = CliRunner().invoke(app, ["train-localizer", "--train", str(bad), "--out", str(tmp_path / "run"),
                                   "--epochs", "1"])
    assert res.exit_code == 2
    assert "bad.json" in res.output and "not a JSON label file" in res.output
