"""INT8 static quantisation: runs in ONNX Runtime, keeps the head in float, stays close to FP32 on
real crops, reports accuracy/latency, and rejects bad inputs with one line.

Tolerance (stated): for a tiny student fitted for a few dozen steps on 16 teacher-labelled crops,
INT8 heatmaps correlate with FP32 at >= 0.95 (mean over real crops; ~0.98 measured) and the decoded keypoints move
by a median of < 2 px in the 64x48 input crop (half a stride-4 heatmap cell).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from typer.testing import CliRunner  # noqa: E402

from gaitpose.cli import app  # noqa: E402
from gaitpose.nn import ModelConfig, build_model  # noqa: E402

DATA = Path(__file__).parent / "data"
VIDEO = DATA / "pose2sim_cam01.mp4"
TINY = ModelConfig(input_size=(64, 48), stem_channels=16, decoder_channels=32,
                   stages=[(1, 16, 1, 1), (2, 24, 1, 2), (2, 32, 2, 2), (2, 48, 1, 2), (2, 64, 1, 2)])


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def fitted_onnx(labelled_crops, tmp_path_factory) -> Path:
    """A tiny student fitted for a few steps on real teacher-labelled crops, exported to ONNX."""
    from gaitpose.codec import encode_heatmaps
    from gaitpose.export.crops import label_crops
    from gaitpose.export.onnx_export import export_onnx, meta_from_checkpoint
    from gaitpose.infer.pose import OnnxPoseEstimator

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("quant")
    torch.manual_seed(0)
    model = build_model(TINY)
    meta = meta_from_checkpoint(TINY)
    first = export_onnx(model, meta, out / "init.onnx", simplify=False)
    data = label_crops(labelled_crops, OnnxPoseEstimator(first))
    targets = np.stack([encode_heatmaps(k, w, (12, 16), 4)[0] for k, w in zip(data.keypoints, data.weights,
                                                                                strict=True)])
    x, y = torch.from_numpy(data.crops), torch.from_numpy(targets)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return export_onnx(model.eval(), meta, out / "fp32.onnx")


def test_int8_close_to_fp32_on_real_crops(fitted_onnx, tmp_path):
    from gaitpose.export.crops import video_crops
    from gaitpose.export.quantize import crop_agreement, quantize_int8
    from gaitpose.infer.pose import OnnxPoseEstimator, load_onnx_meta

    q = quantize_int8(fitted_onnx, VIDEO, tmp_path / "m.int8.onnx", num_calib=24)
    meta = load_onnx_meta(q)
    assert meta.extra["quantized"] == "int8" and meta.keypoint_names == load_onnx_meta(fitted_onnx).keypoint_names
    assert meta.extra["quant"]["float_nodes"] == ["/head/Conv"]

    graph = onnx.load(str(q)).graph
    producers = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    head = [n for n in convs if n.name == "/head/Conv"]
    assert len(head) == 1
    # the head reads float weights directly; every other conv reads dequantised int8 weights
    assert head[0].input[1] not in producers
    others = [n for n in convs if n is not head[0]]
    assert others and all(producers[n.input[1]].op_type == "DequantizeLinear" for n in others)
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) > 10

    crops = video_crops(VIDEO, OnnxPoseEstimator(fitted_onnx), count=12).crops
    agree = crop_agreement(fitted_onnx, q, crops)
    assert agree["heatmap_corr_mean"] >= 0.95, agree
    assert agree["kp_dist_median_px"] < 2.0, agree


def test_quantize_cli_writes_report(fitted_onnx, labelled_crops, tmp_path):
    out = tmp_path / "model.int8.onnx"
    res = CliRunner().invoke(app, ["quantize", "--model", str(fitted_onnx), "--calib", str(labelled_crops),
                                   "--out", str(out), "--num-calib", "16", "--val", str(labelled_crops),
                                   "--runs", "5"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "model.int8.report.json").read_text())
    for kind in ("fp32", "int8"):
        acc = report["accuracy"][kind]
        assert 0.0 <= acc["PCK@0.1"] <= 1.0 and 0.0 <= acc["PCK@0.1_feet"] <= 1.0
        for t in ("threads=1", "threads=2"):
            lat = report["latency_ms"][kind][t]
            assert 0 < lat["median_ms"] <= lat["p90_ms"]
    drop = report["pck_drop_points"]
    assert set(drop) == {"PCK@0.1", "PCK@0.1_feet"}
    expected = max(drop.values()) <= 1.0 and min(report["speedup_median"].values()) > 1.0
    assert report["recommend_int8"] == expected
    assert report["verdict"].startswith("INT8 recommended" if expected else "keep FP32")


def test_quantize_cli_bad_inputs(fitted_onnx, tmp_path):
    runner = CliRunner()

    def fails(model: Path, calib: Path = VIDEO) -> str:
        res = runner.invoke(app, ["quantize", "--model", str(model), "--calib", str(calib),
                                  "--out", str(tmp_path / "q.onnx"), "--runs", "2"])
        assert res.exit_code != 0
        err = res.stderr.strip()
        assert err.startswith("error:") and len(err.splitlines()) == 1, err
        assert not (tmp_path / "q.onnx").exists()
        return err

    assert "does not exist" in fails(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf" * 3)
    assert "not a valid ONNX model" in fails(junk)
    # a valid ONNX graph without gaitpose metadata
    m = onnx.load(str(fitted_onnx))
    del m.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(m, str(bare))
    assert "metadata" in fails(bare)
    assert "calib" in fails(fitted_onnx, tmp_path / "calib_missing.json")
