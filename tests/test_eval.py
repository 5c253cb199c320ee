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


# -- gait-grade figures on hand-made keypoints -------------------------------------------------------


def _rot(v: np.ndarray, deg: float) -> np.ndarray:
    """``v`` turned counter-clockwise by ``deg`` (y up)."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _pose(angles: dict[str, float], direction: int, origin: tuple[float, float] = (300.0, 150.0)) -> np.ndarray:
    """21 image keypoints of a side-view walker with the given hip/knee/ankle angles (clinical
    convention of gaitpose.gait.angles), built forwards from the definitions, walking right (+1) or left."""
    from gaitpose.skeleton import INDEX

    body = np.zeros((NUM_KEYPOINTS, 2))  # x forward, y up, mid-hip at 0
    for name in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"):
        body[INDEX[name]] = (5.0, 75.0)
    for side in ("left", "right"):
        body[INDEX[f"{side}_shoulder"]] = (0.0, 50.0)
        body[INDEX[f"{side}_elbow"]] = (0.0, 25.0)
        body[INDEX[f"{side}_wrist"]] = (0.0, 5.0)
        body[INDEX[f"{side}_hip"]] = (0.0, 0.0)
        thigh = _rot(np.array([0.0, -1.0]), angles[f"hip_{side}"])  # from the trunk line, + forward
        shank = _rot(thigh, -angles[f"knee_{side}"])  # flexion turns the shank backwards
        foot = _rot(shank, angles[f"ankle_{side}"] + 90.0)  # 0 = foot at right angles to the shank
        knee = 45.0 * thigh
        ankle = knee + 45.0 * shank
        body[INDEX[f"{side}_knee"]] = knee
        body[INDEX[f"{side}_ankle"]] = ankle
        body[INDEX[f"{side}_heel"]] = ankle - 4.0 * foot
        body[INDEX[f"{side}_toe"]] = ankle + 16.0 * foot
    return np.stack([origin[0] + direction * body[:, 0], origin[1] - body[:, 1]], axis=1)


def _record(kp: np.ndarray, n: int, recording: str = "hand") -> object:
    from gaitpose.labels import PoseRecord

    lo, hi = kp.min(0), kp.max(0)
    return PoseRecord(image_id=n, image_path=Path("none.jpg"), depth_path=None, width=640, height=360,
                      bbox=np.array([*lo, *(hi - lo)], np.float32), keypoints=kp.astype(np.float32),
                      scores=np.ones(NUM_KEYPOINTS, np.float32), recording=recording, subject=None,
                      frame_index=n, ann_id=n + 1)


TRUE = {"hip_left": 20.0, "hip_right": -10.0, "knee_left": 5.0, "knee_right": 40.0, "ankle_left": 0.0,
        "ankle_right": -15.0}
ERR = {"hip_left": 3.0, "hip_right": -4.0, "knee_left": 6.0, "knee_right": -8.0, "ankle_left": 10.0,
       "ankle_right": -12.0}


def test_angle_mae_on_hand_made_keypoints_with_known_angles() -> None:
    from gaitpose.eval.metrics import angle_metrics
    from gaitpose.gait.angles import sagittal_angles

    for direction in (1, -1):  # walking right, then left: the same errors either way
        label = _pose(TRUE, direction)
        built = sagittal_angles(label[None], direction)
        for name, v in TRUE.items():  # the construction agrees with the gait analysis's formula
            assert built[name][0] == pytest.approx(v, abs=1e-6), name
        pred = _pose({k: TRUE[k] + ERR[k] for k in TRUE}, direction)
        # A second person/frame predicted exactly: halves every error.
        records = [_record(label, 0), _record(_pose(TRUE, direction, (100.0, 150.0)), 1)]
        m = angle_metrics(np.stack([pred, records[1].keypoints]), records)
        for name, e in ERR.items():
            assert m["angle_mae_deg"][name] == pytest.approx(abs(e) / 2, abs=1e-4), (direction, name)
        assert m["angle_mae_deg"]["knee"] == pytest.approx((6 + 8) / 4, abs=1e-4)
        assert m["angle_mae_deg"]["all"] == pytest.approx(sum(abs(e) for e in ERR.values()) / 12, abs=1e-4)
        assert m["angle_count"]["all"] == 12
        assert m["implausible_angle_share"]["all"] == 0.0
    from gaitpose.eval.metrics import angle_metrics_per_recording

    records = [_record(_pose(TRUE, 1), 0, "side"), _record(_pose(TRUE, -1), 1, "other")]
    pred = np.stack([_pose({k: TRUE[k] + ERR[k] for k in TRUE}, 1), records[1].keypoints])
    per = angle_metrics_per_recording(pred, records)
    assert per["other"]["all"] == pytest.approx(0.0, abs=1e-6)
    assert per["side"]["all"] == pytest.approx(sum(abs(e) for e in ERR.values()) / 6, abs=1e-4)


def test_leg_swaps_cost_only_in_the_plain_angle_mae() -> None:
    """A prediction with the legs the wrong way round: the plain MAE is the difference between the
    two legs' angles, the side-agnostic MAE is zero."""
    from gaitpose.eval.metrics import angle_metrics
    from gaitpose.skeleton import FLIP_INDEX

    label = _pose(TRUE, 1)
    m = angle_metrics(label[FLIP_INDEX][None], [_record(label, 0)])
    assert m["angle_mae_deg"]["knee"] == pytest.approx(abs(TRUE["knee_left"] - TRUE["knee_right"]), abs=1e-4)
    for joint in ("hip", "knee", "ankle", "all"):
        assert m["angle_mae_deg_side_agnostic"][joint] == pytest.approx(0.0, abs=1e-4), joint
    pred = _pose({k: TRUE[k] + ERR[k] for k in TRUE}, 1)  # no swap: both figures agree
    m = angle_metrics(pred[None], [_record(label, 0)])
    assert m["angle_mae_deg_side_agnostic"]["all"] == pytest.approx(m["angle_mae_deg"]["all"], abs=1e-4)


def test_implausible_angles_are_counted_against_the_physiological_ranges() -> None:
    from gaitpose.eval.metrics import angle_metrics
    from gaitpose.gait.angles import PLAUSIBLE_RANGES_DEG

    lo_knee = PLAUSIBLE_RANGES_DEG["knee"][0]
    hi_ankle = PLAUSIBLE_RANGES_DEG["ankle"][1]
    bad = dict(TRUE, knee_left=lo_knee - 15.0, ankle_right=hi_ankle + 30.0)  # hyperextended knee, toes at the shin
    for direction in (1, -1):
        records = [_record(_pose(TRUE, direction), i) for i in range(2)]
        m = angle_metrics(np.stack([_pose(bad, direction), records[1].keypoints]), records)
        assert m["implausible_angle_share"]["knee_left"] == pytest.approx(0.5)
        assert m["implausible_angle_share"]["ankle_right"] == pytest.approx(0.5)
        assert m["implausible_angle_share"]["hip"] == 0.0
        assert m["implausible_angle_share"]["all"] == pytest.approx(2 / 12)
        assert m["implausible_angle_share_labels"]["all"] == 0.0
        assert m["angle_mae_deg"]["knee_left"] == pytest.approx((TRUE["knee_left"] - lo_knee + 15.0) / 2, abs=1e-4)


def test_angles_need_every_labelled_point_and_wrap_around() -> None:
    """A joint whose label misses a point is not compared; an error across +-180 deg is small."""
    from gaitpose.eval.metrics import angle_metrics
    from gaitpose.skeleton import INDEX

    rec = _record(_pose(TRUE, 1), 0)
    rec.scores[INDEX["left_heel"]] = 0.0  # left ankle angle has no label
    m = angle_metrics(rec.keypoints[None].copy(), [rec])
    assert m["angle_count"]["ankle_left"] == 0 and np.isnan(m["angle_mae_deg"]["ankle_left"])
    assert m["angle_count"]["ankle_right"] == 1 and m["angle_mae_deg"]["ankle_right"] == pytest.approx(0.0, abs=1e-6)


def test_feet_pck_at_0_05_on_a_hand_made_case() -> None:
    """Heels 4 % of the box off (found), big toes 6 % off (missed), ankles exact: 4 of 6 foot points."""
    from gaitpose.eval.metrics import compute_metrics
    from gaitpose.skeleton import INDEX

    records = [_record(_pose(TRUE, 1), 0), _record(_pose(TRUE, -1, (200.0, 150.0)), 1)]
    pred = np.stack([r.keypoints for r in records]).astype(np.float64)
    for n, r in enumerate(records):
        longer = max(float(r.bbox[2]), float(r.bbox[3]))
        for side in ("left", "right"):
            pred[n, INDEX[f"{side}_heel"], 1] += 0.04 * longer
            pred[n, INDEX[f"{side}_toe"], 0] += 0.06 * longer
    m = compute_metrics(pred, np.ones((2, NUM_KEYPOINTS)), records)
    assert m["PCK@0.05_feet"] == pytest.approx(4 / 6)
    assert m["PCK@0.1_feet"] == 1.0
    assert m["PCK@0.05_body"] == 1.0
    assert m["PCK@0.05"] == pytest.approx((NUM_KEYPOINTS - 2) / NUM_KEYPOINTS)


def test_evaluate_without_model_uses_the_default_of_analyze(overfit_run: dict, labelled_crops: Path,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No --model: the model gaitpose analyze would load (here a model folder named by
    GAITPOSE_MODEL_DIR, the rule both commands share), with the gait figures in metrics.json."""
    from gaitpose.cli import app
    from gaitpose.eval.evaluate import default_pose_model
    from gaitpose.registry import MODEL_DIR_ENV, POSE_MODEL

    models = tmp_path / "models"
    (models / POSE_MODEL).parent.mkdir(parents=True)
    onnx_path = _export(Path(overfit_run["out_dir"]) / "best.pt", models / POSE_MODEL)
    monkeypatch.setenv(MODEL_DIR_ENV, str(models))
    assert default_pose_model() == onnx_path
    out = tmp_path / "rep"
    res = CliRunner().invoke(app, ["evaluate", "--ann", str(labelled_crops), "--out", str(out), "--threads", "1"])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert Path(m["model"]) == onnx_path
    assert m["angle_count"]["all"] > 0 and 0.0 <= m["angle_mae_deg"]["all"] < 90.0
    assert set(m["angle_mae_deg"]) >= {*TRUE, "hip", "knee", "ankle", "all"}
    assert 0.0 <= m["implausible_angle_share"]["all"] <= 1.0 and m["PCK@0.05_feet"] is not None
    assert "angle_mae_deg" in m["without_flip"]
    per_rec = m["without_flip"]["angle_mae_deg_per_recording"]
    assert set(per_rec) == {r.recording for r in load_records(labelled_crops)}
    assert all(0.0 <= v["implausible"] <= 1.0 for v in per_rec.values())
    text = (out / "metrics.md").read_text()
    assert "Sagittal angles" in text and "PCK@0.05_feet" in text
    assert json.loads(res.output.splitlines()[0])["angle_mae_deg"] == pytest.approx(m["angle_mae_deg"]["all"], abs=1e-3)
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path / "empty"))
    res = CliRunner().invoke(app, ["evaluate", "--ann", str(labelled_crops), "--out", str(tmp_path / "rep2")])
    assert res.exit_code == 2 and "model not found" in res.output and not (tmp_path / "rep2").exists()
