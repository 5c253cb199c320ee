"""The ONNX teacher on small ONNX models exported here: decoding must map known peaks to the right pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from data_tools.teachers import make_teacher
from data_tools.teachers.onnx_teacher import OnnxTeacher
from gaitpose.errors import InputError
from gaitpose.skeleton import HALPE26_TO_GAITPOSE, NUM_KEYPOINTS

torch.set_num_threads(1)
H, W = 64, 48  # network input


def _export(module: nn.Module, path: Path, outputs: list[str]) -> Path:
    module.eval()
    torch.onnx.export(module, (torch.zeros(1, 3, H, W),), str(path), input_names=["input"], output_names=outputs,
                      opset_version=17, dynamo=False)
    return path


def _write_cfg(tmp_path: Path, **kw: object) -> Path:
    cfg = tmp_path / "teacher.yaml"
    cfg.write_text(yaml.safe_dump(kw))
    return cfg


class FixedHeatmaps(nn.Module):
    """Gaussian heatmaps with peaks at known cells, whatever the input (scaled by 1 + 0*x)."""

    def __init__(self, peaks: np.ndarray, k: int) -> None:
        super().__init__()
        hm = np.zeros((1, k, H // 4, W // 4), np.float32)
        ys, xs = np.mgrid[0 : H // 4, 0 : W // 4]
        for j, (px, py) in enumerate(peaks):
            hm[0, j] = np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * 1.5**2)) * 0.9
        self.register_buffer("hm", torch.from_numpy(hm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hm * (1.0 + 0.0 * x.mean())


class FixedSimcc(nn.Module):
    def __init__(self, bins_x: np.ndarray, bins_y: np.ndarray, ratio: float) -> None:
        super().__init__()
        k = len(bins_x)
        sx = np.zeros((1, k, int(W * ratio)), np.float32)
        sy = np.zeros((1, k, int(H * ratio)), np.float32)
        sx[0, np.arange(k), bins_x] = 0.8
        sy[0, np.arange(k), bins_y] = 0.7
        self.register_buffer("sx", torch.from_numpy(sx))
        self.register_buffer("sy", torch.from_numpy(sy))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = 0.0 * x.mean()
        return self.sx + z, self.sy + z


def test_heatmap_teacher_maps_known_peaks_to_crop_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    k = 26  # a Halpe-26 model, re-ordered to gaitpose's 21 by the layout name
    # away from the map border, where the DARK blur is cut off by the edge
    peaks = np.stack([rng.integers(3, W // 4 - 3, k), rng.integers(3, H // 4 - 3, k)], axis=1).astype(np.float32)
    _export(FixedHeatmaps(peaks, k), tmp_path / "hm.onnx", ["heatmaps"])
    cfg = _write_cfg(tmp_path, model="hm.onnx", input_size=[H, W], output="heatmap", keypoints="halpe26")
    teacher = make_teacher("onnx", cfg)
    assert teacher.input_wh == (W, H)
    crop = np.zeros((2 * H, 2 * W, 3), np.uint8)  # twice the network input: coordinates scale by 2
    out = teacher(crop)
    idx = list(HALPE26_TO_GAITPOSE)
    expected_in = (peaks[idx] + 0.5) * 4 - 0.5  # heatmap cell centre -> input pixel (stride 4)
    expected = (expected_in + 0.5) * 2 - 0.5
    np.testing.assert_allclose(out.keypoints, expected, atol=0.3)
    np.testing.assert_allclose(out.scores, 0.9, atol=0.02)
    assert out.keypoints.shape == (NUM_KEYPOINTS, 2)


def test_simcc_teacher_and_explicit_index_list(tmp_path: Path) -> None:
    ratio = 2.0
    rng = np.random.default_rng(1)
    k = 21
    bx, by = rng.integers(0, int(W * ratio), k), rng.integers(0, int(H * ratio), k)
    _export(FixedSimcc(bx, by, ratio), tmp_path / "simcc.onnx", ["simcc_x", "simcc_y"])
    order = list(range(k))[::-1]
    cfg = _write_cfg(tmp_path, model="simcc.onnx", input_size=[H, W], output="simcc", simcc_split_ratio=ratio,
                     keypoints=order, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], scale=1.0,
                     channel_order="bgr")
    teacher = OnnxTeacher.from_yaml(cfg)
    out = teacher(np.full((H, W, 3), 128, np.uint8))
    np.testing.assert_allclose(out.keypoints[:, 0], (bx / ratio)[order], atol=1e-4)
    np.testing.assert_allclose(out.keypoints[:, 1], (by / ratio)[order], atol=1e-4)
    np.testing.assert_allclose(out.scores, 0.7, atol=1e-5)  # min of the x and y maxima


def test_gaitpose_student_exported_runs_as_teacher(tmp_path: Path) -> None:
    from gaitpose.nn.student import ModelConfig, build_model

    cfg = ModelConfig(input_size=(H, W), stages=[(1, 8, 1, 1), (2, 8, 1, 2), (2, 8, 1, 2), (2, 8, 1, 2),
                                                 (2, 8, 1, 2)], stem_channels=8, decoder_channels=8)
    _export(build_model(cfg), tmp_path / "student.onnx", ["heatmaps"])
    yml = _write_cfg(tmp_path, model="student.onnx", input_size=[H, W], output="heatmap", min_score=0.0)
    out = make_teacher("onnx", yml)(np.zeros((H, W, 3), np.uint8))
    assert out.keypoints.shape == (NUM_KEYPOINTS, 2)
    # inside the crop, give or take the one heatmap cell (4 px) DARK may move a peak
    assert np.all((out.keypoints >= -4.5) & (out.keypoints <= [W + 3.5, H + 3.5])), out.keypoints
    assert np.all((out.scores >= 0) & (out.scores <= 1))


def test_bad_teacher_configs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        make_teacher("onnx", _write_cfg(tmp_path, model="missing.onnx"))
    with pytest.raises(InputError, match="unknown keypoint layout"):
        make_teacher("onnx", _write_cfg(tmp_path, model="x.onnx", keypoints="coco133"))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a loadable ONNX model"):
        make_teacher("onnx", _write_cfg(tmp_path, model="junk.onnx"))
    with pytest.raises(ValueError, match="teacher-config"):
        make_teacher("onnx", None)
