"""Evaluation: metric sanity on known answers, and torch vs ONNX evaluation of the same model."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gaitpose.eval.evaluate import evaluate_model, evaluate_predictions
from gaitpose.labels import load_records
from gaitpose.skeleton import FOOT_INDICES, NUM_KEYPOINTS


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_labels_against_themselves_are_perfect(labelled_crops: Path) -> None:
    records = load_records(labelled_crops)
    kp = np.stack([r.keypoints for r in records])
    scores = np.stack([np.where(r.scores > 0, r.scores, 0.5) for r in records])
    m = evaluate_predictions(kp, scores, records)
    assert m["AP"] == pytest.approx(1.0) and m["AP50"] == pytest.approx(1.0) and m["AR"] == pytest.approx(1.0)
    for key in ("PCK@0.05", "PCK@0.1", "PCKt@0.2", "PCK@0.1_body", "PCK@0.1_feet"):
        assert m[key] == pytest.approx(1.0), key
    assert m["mean_px_error"] == pytest.approx(0.0, abs=1e-4)
    assert set(m["px_error_feet"]) == {"left_ankle", "right_ankle", "left_heel", "right_heel", "left_toe",
                                       "right_toe"}


def test_known_shift_gives_expected_pck(labelled_crops: Path) -> None:
    records = load_records(labelled_crops)
    longer = np.array([max(r.bbox[2], r.bbox[3]) for r in records])
    direction = np.array([0.6, 0.8])  # unit vector: the shift is 0.07 x longer side in length
    kp = np.stack([r.keypoints for r in records]) + (0.07 * longer)[:, None, None] * direction
    m = evaluate_predictions(kp, np.ones((len(records), NUM_KEYPOINTS)), records)
    assert m["PCK@0.05"] == 0.0
    assert m["PCK@0.1"] == 1.0
    assert m["PCK@0.05_feet"] == 0.0 and m["PCK@0.1_feet"] == 1.0
    labelled = np.concatenate([np.full(int((r.scores > 0).sum()), 0.07 * max(r.bbox[2], r.bbox[3])) for r in records])
    assert m["mean_px_error"] == pytest.approx(labelled.mean(), rel=1e-4)
    assert 0.0 < m["AP"] < 1.0  # OKS penalises the shift, more for the precise (small-sigma) joints
    heel = NUM_KEYPOINTS - 4  # left_heel
    assert heel in FOOT_INDICES
    expected_heel = np.mean([0.07 * max(r.bbox[2], r.bbox[3]) for r in records if r.scores[heel] > 0])
    assert m["px_error_feet"]["left_heel"] == pytest.approx(expected_heel, rel=1e-4)


def test_left_right_swaps_count_only_in_the_side_agnostic_pck(labelled_crops: Path) -> None:
    """Legs labelled the wrong way round: plain PCK loses exactly the leg joints whose twin is far
    away, the side-agnostic PCK loses none, and the per-recording breakdown covers every recording."""
    from gaitpose.skeleton import FLIP_INDEX, INDEX

    records = load_records(labelled_crops)
    kp = np.stack([r.keypoints for r in records]).copy()
    legs = [INDEX[n] for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
    kp[:, legs] = np.stack([r.keypoints for r in records])[:, FLIP_INDEX[legs]]
    m = evaluate_predictions(kp, np.ones((len(records), NUM_KEYPOINTS)), records)
    gt = np.stack([r.keypoints for r in records])
    valid = np.stack([r.scores > 0 for r in records])
    scale = np.array([max(r.bbox[2], r.bbox[3]) for r in records])[:, None]
    far = np.linalg.norm(gt[:, legs] - gt[:, FLIP_INDEX[legs]], axis=-1) > 0.1 * scale
    lost = (far & valid[:, legs]).sum()
    assert lost > 0, "the fixture's legs are too close together to test swaps"
    assert m["PCK@0.1"] == pytest.approx(1.0 - lost / valid.sum())
    assert m["PCK@0.1_side_agnostic"] == pytest.approx(1.0)
    assert set(m["PCK@0.1_per_recording"]) == {r.recording for r in records}
    assert min(m["PCK@0.1_per_recording"].values()) < 1.0
    # Both knees predicted on the right knee: one of the two is found, whichever way round.
    lk, rk = INDEX["left_knee"], INDEX["right_knee"]
    kp = gt.copy()
    kp[:, lk] = gt[:, rk]
    both = valid[:, lk] & valid[:, rk] & (np.linalg.norm(gt[:, lk] - gt[:, rk], axis=-1) > 0.1 * scale[:, 0])
    m = evaluate_predictions(kp, np.ones((len(records), NUM_KEYPOINTS)), records)
    assert m["PCK@0.1_side_agnostic"] == pytest.approx(m["PCK@0.1"]) == pytest.approx(1.0 - both.sum() / valid.sum())


def test_wrong_prediction_shape_is_rejected(labelled_crops: Path) -> None:
    records = load_records(labelled_crops)
    with pytest.raises(ValueError, match="expected"):
        evaluate_predictions(np.zeros((len(records), 17, 2)), np.zeros((len(records), 17)), records)


def _export(ckpt: Path, out: Path) -> Path:
    """Export with gaitpose.export when present; otherwise plain torch.onnx + metadata, as the spec says."""
    try:
        from gaitpose.export.onnx_export import export_checkpoint
    except ImportError:
        export_checkpoint = None
    if export_checkpoint is not None:
        export_checkpoint(ckpt, out, simplify=False)
        return out
    import onnx

    from gaitpose.modelmeta import META_KEY
    from gaitpose.nn.checkpoint import load_model, model_meta

    model, cfg, ck = load_model(ckpt)
    dummy = torch.zeros(1, cfg.in_channels, *cfg.input_size)
    torch.onnx.export(model, (dummy,), str(out), opset_version=17, dynamo=False, input_names=["input"],
                      output_names=["heatmaps"], dynamic_axes={"input": {0: "n"}, "heatmaps": {0: "n"}})
    proto = onnx.load(str(out))
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, model_meta(cfg, ck.get("train_cfg")).to_json()
    onnx.save(proto, str(out))
    return out


def test_evaluate_cli_torch_and_onnx_agree(overfit_run: dict, labelled_crops: Path, tmp_path: Path) -> None:
    from gaitpose.cli import app

    ckpt = Path(overfit_run["out_dir"]) / "best.pt"
    onnx_path = _export(ckpt, tmp_path / "tiny.onnx")
    reports = {}
    for name, model in (("pt", ckpt), ("onnx", onnx_path)):
        out = tmp_path / f"report_{name}"
        res = CliRunner().invoke(app, ["evaluate", "--model", str(model), "--ann", str(labelled_crops), "--out",
                                       str(out), "--flip-test", "--threads", "1"])
        assert res.exit_code == 0, res.output
        reports[name] = json.loads((out / "metrics.json").read_text())
        assert "PCK@0.1" in (out / "metrics.md").read_text()
        overlay = cv2.imread(str(out / "overlay.png"))
        assert overlay is not None and overlay.shape[0] >= 200
    pt, ox = reports["pt"], reports["onnx"]
    for key in ("AP", "AP50", "PCK@0.05", "PCK@0.1", "params", "gflops"):
        assert key in pt and key in ox
    assert pt["flip_test"] and "with_flip" in pt and "without_flip" in pt
    for key in ("AP", "AP50", "PCK@0.05", "PCK@0.1", "PCK@0.1_feet"):
        assert ox[key] == pytest.approx(pt[key], abs=0.01), key
    assert ox["mean_px_error"] == pytest.approx(pt["mean_px_error"], abs=0.05)
    assert ox["gflops"] == pytest.approx(pt["gflops"], rel=0.02)  # same convolutions, counted from the graph
    assert 0.8 * pt["params"] <= ox["params"] <= pt["params"]  # BN folded into the convs on export
    # the evaluator sees the same crops as training validation did
    assert pt["without_flip"]["PCK@0.1"] == pytest.approx(overfit_run["final_metric"], abs=0.01)
    assert pt["PCK@0.1"] >= 0.9
    for part in ("without_flip", "with_flip"):  # per recording, for each way of running the model
        assert set(pt[part]["PCK@0.1_per_recording"]) == {r.recording for r in load_records(labelled_crops)}
    assert "PCK@0.1 per recording" in (tmp_path / "report_pt" / "metrics.md").read_text()


def test_evaluate_model_api_and_bad_inputs(overfit_run: dict, labelled_crops: Path, tmp_path: Path) -> None:
    from gaitpose.cli import app
    from gaitpose.errors import InputError

    ckpt = Path(overfit_run["out_dir"]) / "best.pt"
    m = evaluate_model(ckpt, labelled_crops, batch_size=5)
    assert m["flip_test"] is False and "with_flip" not in m
    assert m["params"] == sum(p.numel() for p in overfit_run["model"].parameters())
    with pytest.raises(InputError, match="unknown model type"):
        evaluate_model(labelled_crops, labelled_crops)
    # an annotation file whose frames vanished names the missing image
    data = json.loads(labelled_crops.read_text())
    broken = copy.deepcopy(data)
    broken["info"]["frames_root"] = str(labelled_crops.parent / "frames")
    broken["images"][0]["file_name"] = "cam01/missing.jpg"
    bad_ann = tmp_path / "bad.json"
    bad_ann.write_text(json.dumps(broken))
    res = CliRunner().invoke(app, ["evaluate", "--model", str(ckpt), "--ann", str(bad_ann), "--out",
                                   str(tmp_path / "rep")])
    assert res.exit_code == 2 and "missing.jpg: image file does not exist" in res.output
    assert not (tmp_path / "rep").exists()
    res = CliRunner().invoke(app, ["evaluate", "--model", str(tmp_path / "nope.onnx"), "--ann", str(labelled_crops),
                                   "--out", str(tmp_path / "rep")])
    assert res.exit_code == 2 and "nope.onnx: model file does not exist" in res.output


def _imported_gaitpose_modules(package_dir: Path) -> set[str]:
    """Every ``gaitpose.*`` module a package's files import, at module level or inside functions."""
    import ast

    found: set[str] = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("gaitpose.")}


def test_eval_and_train_do_not_import_each_other() -> None:
    """Training validates with the evaluation metrics; evaluation must not need training code
    (it loads checkpoints through gaitpose.nn.checkpoint), or the two packages form a cycle."""
    import gaitpose

    root = Path(gaitpose.__file__).parent
    from_eval = _imported_gaitpose_modules(root / "eval")
    assert not {m for m in from_eval if m == "gaitpose.train" or m.startswith("gaitpose.train.")}, from_eval
    assert "gaitpose.nn.checkpoint" in from_eval  # the checkpoint format lives in the neutral package
