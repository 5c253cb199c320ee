"""ONNX export: torch/ONNX Runtime parity on real crops, embedded metadata, generic networks, bad inputs."""

from __future__ import annotations

import hashlib
import json
import logging
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


@pytest.fixture()
def tiny_ckpt(tmp_path) -> Path:
    from gaitpose.nn.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_model(TINY)
    # Give BN non-trivial statistics so parity is tested on a realistic, not an identity-like, net.
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 64, 48))
    return save_checkpoint(tmp_path / "tiny.pt", model.eval(), TINY, train_cfg={"padding": 1.25, "epochs": 1},
                           epoch=1, data_summary={"train_instances": 12, "recordings": ["cam01"]})


def test_export_parity_and_metadata(tiny_ckpt, tmp_path):
    from gaitpose.export.onnx_export import export_checkpoint
    from gaitpose.infer.pose import OnnxPoseEstimator, load_onnx_meta

    out = tmp_path / "m.onnx"
    path, parity = export_checkpoint(tiny_ckpt, out, parity_source=VIDEO, parity_crops=8)
    assert path == out and out.exists()
    assert parity is not None and parity.ok and parity.num_crops == 8
    assert parity.max_abs_diff < 1e-4 and parity.max_kp_dist_px <= 0.5

    meta = load_onnx_meta(out)
    assert meta.kind == "sppe" and meta.input_size == (64, 48) and meta.in_channels == 3 and meta.stride == 4
    assert len(meta.keypoint_names) == 21 and meta.keypoint_names[-1] == "right_toe"
    assert meta.source_sha256 == hashlib.sha256(tiny_ckpt.read_bytes()).hexdigest()
    assert meta.training["train_instances"] == 12 and meta.training["epoch"] == 1
    assert meta.extra["model_cfg"]["decoder_channels"] == 32

    # dynamic batch: the serving estimator runs 3 real crops at once
    est = OnnxPoseEstimator(out, threads=1)
    frame = np.zeros((480, 270, 3), np.uint8)
    crops = np.stack([est.preprocess(frame, np.array([10, 20, 100, 200]))[0]] * 3)
    assert est.run_heatmaps(crops).shape == (3, 21, 16, 12)
    assert not list(tmp_path.glob(".m.*"))  # no temporary files left


def test_check_parity_detects_a_different_model(tmp_path):
    from gaitpose.export.crops import video_crops
    from gaitpose.export.onnx_export import check_parity, export_onnx, meta_from_checkpoint
    from gaitpose.infer.pose import OnnxPoseEstimator

    torch.manual_seed(1)
    model = build_model(TINY).eval()
    torch.nn.init.normal_(model.head.weight, std=0.5)
    out = export_onnx(model, meta_from_checkpoint(TINY), tmp_path / "a.onnx")
    crops = video_crops(VIDEO, OnnxPoseEstimator(out), count=4).crops
    assert check_parity(model, out, crops).ok
    with torch.no_grad():
        model.head.bias += 0.01  # the torch model drifts away from the exported graph
        model.head.weight.mul_(-1.0)
    result = check_parity(model, out, crops)
    assert not result.ok and result.max_abs_diff > 1e-3


def test_export_generic_network_and_slim_fallback(tmp_path, monkeypatch, caplog):
    """A non-student net (4-channel input, two outputs, as the localiser will be) exports too, and a
    failing onnxslim falls back to the unsimplified graph with a warning."""
    import onnxruntime as ort
    import onnxslim

    from gaitpose.export.onnx_export import export_onnx
    from gaitpose.infer.pose import load_onnx_meta
    from gaitpose.modelmeta import ModelMeta

    class TwoHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, 2, 1), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
            self.centre = torch.nn.Conv2d(8, 1, 1)
            self.size = torch.nn.Conv2d(8, 2, 1)

        def forward(self, x):
            f = self.body(x)
            return self.centre(f), self.size(f)

    net = TwoHead().eval()
    meta = ModelMeta(kind="localizer", input_size=(96, 128), in_channels=4, stride=2)

    def broken_slim(*_a, **_k):
        raise RuntimeError("simulated onnxslim failure")

    monkeypatch.setattr(onnxslim, "slim", broken_slim)
    with caplog.at_level(logging.WARNING):
        path = export_onnx(net, meta, tmp_path / "loc.onnx", dynamic_batch=False)
    assert "onnxslim failed" in caplog.text
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["output0", "output1"]
    assert sess.get_inputs()[0].shape == [1, 4, 96, 128]
    x = np.random.default_rng(0).standard_normal((1, 4, 96, 128)).astype(np.float32)
    c, s = sess.run(None, {"input": x})
    with torch.no_grad():
        tc, ts = net(torch.from_numpy(x))
    assert np.abs(c - tc.numpy()).max() < 1e-4 and np.abs(s - ts.numpy()).max() < 1e-4
    back = load_onnx_meta(path)
    assert back.kind == "localizer" and back.in_channels == 4 and back.input_size == (96, 128)


def test_export_cli_ok_and_bad_inputs(tiny_ckpt, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["export", "--model", str(tiny_ckpt), "--out", str(tmp_path / "ok.onnx"),
                             "--check-parity-on", str(VIDEO), "--parity-crops", "4"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout.strip().splitlines()[-1])["parity"]["ok"]

    def fails(model: Path, name: str) -> str:
        res = runner.invoke(app, ["export", "--model", str(model), "--out", str(tmp_path / name),
                                  "--check-parity-on", str(VIDEO)])
        assert res.exit_code != 0
        err = res.stderr.strip()
        assert err.startswith("error:") and str(model) in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / name).exists()
        return err

    fails(tmp_path / "missing.pt", "a.onnx")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage" * 10)
    assert "checkpoint" in fails(junk, "b.onnx")
    # a real gaitpose checkpoint whose weights do not fit its declared architecture
    ck = torch.load(tiny_ckpt, weights_only=False)
    ck["model_cfg"] = ModelConfig(input_size=(64, 48)).to_dict()
    wrong = tmp_path / "wrong_arch.pt"
    torch.save(ck, wrong)
    assert "architecture" in fails(wrong, "c.onnx")
    # a plain torch file that is not a gaitpose checkpoint
    other = tmp_path / "state_dict.pt"
    torch.save(build_model(TINY).state_dict(), other)
    assert "not a gaitpose checkpoint" in fails(other, "d.onnx")
