"""Evaluate a pose model (.pt checkpoint or .onnx) on a COCO label file, top-down with label boxes.

Predictions use each annotation's own box, as COCO val with ground-truth boxes does, so the
numbers measure the pose network alone, not a person detector. Both model kinds go through the
serving runtime's numpy preprocessing and decoding (see ``predictors``); an .onnx model is loaded
by the same factory that ``gaitpose analyze`` uses, so a heatmap student and the general default
are evaluated alike. Without a model the evaluation runs on the one ``gaitpose analyze`` uses by
default (``default_pose_model``).
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gaitpose.codec import decode_heatmaps, flip_back
from gaitpose.errors import InputError
from gaitpose.eval.metrics import compute_metrics
from gaitpose.gait.angles import JOINTS
from gaitpose.geometry import affine_points, invert_affine
from gaitpose.infer.pose import OnnxPoseEstimator
from gaitpose.jsonutil import dumps
from gaitpose.labels import PoseRecord, load_records
from gaitpose.skeleton import FOOT_INDICES, KEYPOINTS, SKELETON

log = logging.getLogger(__name__)

HEADLINE = ("AP", "AP50", "AP75", "AR", "PCK@0.05", "PCK@0.1", "PCKt@0.2", "PCK@0.1_body", "PCK@0.1_feet",
            "PCK@0.05_feet", "PCK@0.1_side_agnostic", "mean_px_error", "mean_px_error_body", "mean_px_error_feet")
GAIT = ("angle_mae_deg", "angle_mae_deg_side_agnostic", "angle_count", "implausible_angle_share",
        "implausible_angle_share_labels", "angle_mae_deg_per_recording")
"""Per-joint dicts kept beside HEADLINE for each way of running the model (with/without flip)."""


def default_pose_model(model_dir: str | os.PathLike[str] | None = None) -> Path:
    """The pose model ``gaitpose analyze`` runs when given no ``--model`` (in ``model_dir``, default
    the shipped models).

    Asked of the shared model registry (``gaitpose.registry.resolve_pose_model``) that analyze and
    the service ask, so the commands cannot drift apart; an InputError names the missing file.
    """
    from gaitpose.registry import resolve_pose_model

    return resolve_pose_model(None, model_dir)


def _onnx_estimator(path: Path, threads: int | None) -> Any:
    """The serving runtime's estimator for an .onnx file: ``gaitpose.infer.blazepose.load_pose_estimator``
    (which tells a heatmap student from the general BlazePose model) when present, else the
    heatmap student's ``OnnxPoseEstimator``."""
    try:
        from gaitpose.infer.blazepose import load_pose_estimator
    except ImportError:
        return OnnxPoseEstimator(path, threads=threads)
    if threads and "threads" in inspect.signature(load_pose_estimator).parameters:
        return load_pose_estimator(path, threads=threads)
    return load_pose_estimator(path)


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """RGB uint8 frame; a missing or unreadable file is an InputError naming it."""
    path = Path(path)
    image = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(path, "image file does not exist" if not path.exists() else "not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_depth_mm(path: str | os.PathLike[str]) -> np.ndarray:
    """Depth frame in millimetres (16-bit PNG or .npy, 0 = no reading) as float32."""
    path = Path(path)
    if path.suffix == ".npy":
        if not path.exists():
            raise InputError(path, "depth file does not exist")
        return np.load(path).astype(np.float32)
    depth = cv2.imread(os.fspath(path), cv2.IMREAD_ANYDEPTH)
    if depth is None:
        raise InputError(path, "depth file does not exist" if not path.exists() else "not a readable depth image")
    return depth.astype(np.float32)


def load_predictor(model_path: str | os.PathLike[str], threads: int | None = None) -> tuple[Any, int, int]:
    """(predictor, params, MACs) for an .onnx model or a .pt checkpoint."""
    path = Path(model_path)
    if not path.exists():
        raise InputError(path, "model file does not exist")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from gaitpose.eval.predictors import count_onnx_params_macs

        predictor = _onnx_estimator(path, threads)
        try:
            params, macs = count_onnx_params_macs(path)
        except Exception as exc:  # graph counting is best effort; fall back to exporter metadata
            log.warning("could not count MACs in %s (%s); using embedded metadata", path, exc)
            extra = getattr(getattr(predictor, "meta", None), "extra", None) or {}
            params = int(extra.get("params", 0))
            macs = int(extra.get("macs", float(extra.get("gflops", 0.0)) * 1e9))
        return predictor, params, macs
    if suffix in (".pt", ".pth"):
        import torch

        from gaitpose.eval.predictors import TorchPredictor
        from gaitpose.nn.student import count_params_macs

        if threads:
            torch.set_num_threads(int(threads))
        predictor = TorchPredictor.from_checkpoint(path)
        params, macs = count_params_macs(predictor.model, predictor.meta.input_size, predictor.meta.in_channels)
        return predictor, params, macs
    raise InputError(path, f"unknown model type '{suffix}'; expected a .pt checkpoint or an .onnx model")


def predict_records(
    predictor: Any, records: Sequence[PoseRecord], batch_size: int = 32, flip_test: bool = False
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Full-image keypoints and scores for each record: {"plain": (kp, sc)[, "flip": (kp, sc)]}.

    With ``flip_test`` the network runs on the mirrored batch as well and both decodings are
    returned, so one pass gives the metrics with and without flip testing.
    """
    n = len(records)
    if not hasattr(predictor, "run_heatmaps"):
        return _predict_records_whole(predictor, records, flip_test)
    k = len(predictor.meta.keypoint_names)
    out = {"plain": (np.zeros((n, k, 2), np.float32), np.zeros((n, k), np.float32))}
    if flip_test:
        out["flip"] = (np.zeros((n, k, 2), np.float32), np.zeros((n, k), np.float32))
    stride = predictor.meta.stride
    batch_size = max(1, int(batch_size))
    for start in range(0, n, batch_size):
        chunk = records[start : start + batch_size]
        crops, mats = [], []
        for r in chunk:
            depth = read_depth_mm(r.depth_path) if predictor.meta.in_channels == 4 and r.depth_path else None
            x, m = predictor.preprocess(read_rgb(r.image_path), r.bbox, depth)
            crops.append(x)
            mats.append(invert_affine(m))
        batch = np.stack(crops)
        hm = predictor.run_heatmaps(batch)
        variants = {"plain": hm}
        if flip_test:
            variants["flip"] = 0.5 * (hm + flip_back(predictor.run_heatmaps(np.ascontiguousarray(batch[..., ::-1]))))
        for name, heat in variants.items():
            coords, scores = decode_heatmaps(heat, stride)
            for j, (c, s, inv) in enumerate(zip(coords, scores, mats, strict=True)):
                out[name][0][start + j] = affine_points(c, inv)
                out[name][1][start + j] = s
    return out


def _predict_records_whole(
    predictor: Any, records: Sequence[PoseRecord], flip_test: bool
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``predict_records`` for an estimator without heatmaps (e.g. the general BlazePose model):
    its own ``predict(image, boxes)`` per record, the call ``gaitpose analyze`` makes."""
    takes_flip = "flip_test" in inspect.signature(predictor.predict).parameters
    variants = {"plain": False, **({"flip": True} if flip_test else {})}
    if flip_test and not takes_flip:
        raise InputError(getattr(predictor, "path", None), "this model kind has no flip test; drop --flip-test")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, flip in variants.items():
        kps, scs = [], []
        for r in records:
            kw = {"flip_test": flip} if takes_flip else {}
            res = predictor.predict(read_rgb(r.image_path), [r.bbox], **kw)
            if res:
                kps.append(np.asarray(res[0].keypoints, np.float32))
                scs.append(np.asarray(res[0].scores, np.float32))
            else:  # no person found in the box: every joint missed
                kps.append(np.full((len(r.keypoints), 2), -1e6, np.float32))
                scs.append(np.zeros(len(r.keypoints), np.float32))
        out[name] = (np.stack(kps), np.stack(scs))
    return out


def evaluate_predictions(
    pred_keypoints: np.ndarray, pred_scores: np.ndarray, records: Sequence[PoseRecord]
) -> dict[str, Any]:
    """Metrics for predictions (N, 21, 2) full-image pixels + scores (N, 21), one per record."""
    return compute_metrics(pred_keypoints, pred_scores, records)


def _evaluate(
    model_path: str | os.PathLike[str] | None,
    ann_path: str | os.PathLike[str],
    flip_test: bool,
    batch_size: int,
    threads: int | None,
) -> tuple[dict[str, Any], list[PoseRecord], dict[str, tuple[np.ndarray, np.ndarray]]]:
    ann_path = Path(ann_path)
    try:
        records = load_records(ann_path)
    except FileNotFoundError:
        raise InputError(ann_path, "label file does not exist") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(ann_path, str(exc).removeprefix(f"{ann_path}: ")) from None
    if not records:
        raise InputError(ann_path, "label file has no labelled people to evaluate")
    if model_path is None:
        model_path = default_pose_model()
    predictor, params, macs = load_predictor(model_path, threads)
    preds = predict_records(predictor, records, batch_size, flip_test)
    without = evaluate_predictions(*preds["plain"], records)
    primary = without
    result: dict[str, Any] = {}
    if flip_test:
        primary = evaluate_predictions(*preds["flip"], records)
    result.update(primary)
    result["flip_test"] = bool(flip_test)
    kept = (*HEADLINE, *GAIT, "PCK@0.1_per_recording")
    result["without_flip"] = {k: without[k] for k in kept if k in without}
    if flip_test:
        result["with_flip"] = {k: primary[k] for k in kept if k in primary}
    result["params"] = int(params)
    result["gflops"] = macs / 1e9
    meta = getattr(predictor, "meta", None)
    result["input_size"] = list(getattr(meta, "input_size", ()) or ())
    result["in_channels"] = int(getattr(meta, "in_channels", 3))
    result["model"] = str(model_path)
    result["annotations"] = str(ann_path)
    return result, records, preds


def evaluate_model(
    model_path: str | os.PathLike[str] | None,
    ann_path: str | os.PathLike[str],
    *,
    flip_test: bool = False,
    batch_size: int = 32,
    threads: int | None = None,
) -> dict[str, Any]:
    """Metrics of a .pt or .onnx model (None: ``gaitpose analyze``'s default) on a label file
    (headline metrics follow ``flip_test``)."""
    return _evaluate(model_path, ann_path, flip_test, batch_size, threads)[0]


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def metrics_markdown(metrics: dict[str, Any]) -> str:
    """Human-readable report of an evaluation."""
    size = metrics.get("input_size") or []
    at = f" at {size[0]}x{size[1]}" if len(size) == 2 else ""
    lines = [
        "# Pose evaluation",
        "",
        f"- model: `{Path(metrics['model']).name}` ({metrics['params']:,} params, {metrics['gflops']:.3f} GFLOPs"
        f"{at}, {metrics['in_channels']} channels)",
        f"- labels: `{Path(metrics['annotations']).name}`, {metrics['num_samples']} people, "
        f"{metrics['num_keypoints_labelled']} labelled keypoints",
        f"- boxes: the label boxes (top-down); flip test: {'yes' if metrics['flip_test'] else 'no'}",
        "",
        "| metric | without flip | with flip |",
        "|---|---|---|",
    ]
    wf = metrics.get("with_flip", {})
    for key in HEADLINE:
        lines.append(f"| {key} | {_fmt(metrics['without_flip'].get(key))} | {_fmt(wf.get(key))} |")
    lines += ["", "PCK@0.1_side_agnostic lets each left/right pair match either way round: the gap to PCK@0.1",
              "is what left/right swaps cost.", "", "## PCK@0.1 per recording", "",
              "| recording | without flip | with flip |", "|---|---|---|"]
    per_wf = wf.get("PCK@0.1_per_recording", {})
    for rec, value in metrics["without_flip"].get("PCK@0.1_per_recording", {}).items():
        lines.append(f"| {rec} | {_fmt(value)} | {_fmt(per_wf.get(rec))} |")
    lines += ["", "## Sagittal angles against the labels", "",
              "Through the gait analysis's own formula (`gaitpose.gait.angles.sagittal_angles`), walking direction",
              "from the labelled feet. Implausible: outside the physiological ranges "
              + ", ".join(f"{j} {lo:g} to {hi:g}" for j, (lo, hi) in metrics.get("angle_ranges_deg", {}).items())
              + " deg.", "",
              "| angle | MAE (deg) without flip | with flip | implausible, predictions | implausible, labels "
              "| joint-frames |", "|---|---|---|---|---|---|"]
    wo = metrics["without_flip"]
    for name in (*JOINTS, "hip", "knee", "ankle", "all"):
        lines.append(f"| {name} | {_fmt(wo.get('angle_mae_deg', {}).get(name))} | "
                     f"{_fmt(wf.get('angle_mae_deg', {}).get(name))} | "
                     f"{_fmt(metrics.get('implausible_angle_share', {}).get(name))} | "
                     f"{_fmt(metrics.get('implausible_angle_share_labels', {}).get(name))} | "
                     f"{metrics.get('angle_count', {}).get(name, '-')} |")
    agn = metrics.get("angle_mae_deg_side_agnostic") or {}
    lines += ["", "Leg swaps: MAE with each frame's legs allowed either way round (the gait analysis repairs "
              "swaps over time): " + ", ".join(f"{j} {_fmt(agn.get(j))}" for j in ("hip", "knee", "ankle", "all"))
              + " deg.", "", "Per recording (sagittal angles mean something in side views only), without flip:", "",
              "| recording | hip MAE | knee MAE | ankle MAE | all MAE | implausible, predictions | labels |",
              "|---|---|---|---|---|---|---|"]
    for rec, v in (wo.get("angle_mae_deg_per_recording") or {}).items():
        lines.append(f"| {rec} | {_fmt(v['hip'])} | {_fmt(v['knee'])} | {_fmt(v['ankle'])} | {_fmt(v['all'])} | "
                     f"{_fmt(v['implausible'])} | {_fmt(v['implausible_labels'])} |")
    lines += ["", "## Mean pixel error per keypoint", "", "| keypoint | error (px) | foot |", "|---|---|---|"]
    for i, name in enumerate(KEYPOINTS):
        lines.append(f"| {name} | {_fmt(metrics['px_error_per_keypoint'].get(name))} | "
                     f"{'yes' if i in FOOT_INDICES else ''} |")
    return "\n".join(lines) + "\n"


def _draw(image: np.ndarray, kp: np.ndarray, valid: np.ndarray, colour: tuple[int, int, int], r: int) -> None:
    for a, b in SKELETON:
        if valid[a] and valid[b]:
            cv2.line(image, tuple(int(v) for v in kp[a]), tuple(int(v) for v in kp[b]), colour, max(1, r // 2),
                     cv2.LINE_AA)
    for i in range(len(kp)):
        if valid[i]:
            cv2.circle(image, (int(kp[i][0]), int(kp[i][1])), r, colour, -1, cv2.LINE_AA)


def overlay_png(records: Sequence[PoseRecord], pred: np.ndarray, max_samples: int = 4, height: int = 320) -> bytes:
    """Side-by-side crops: labels in green, predictions in red (PNG bytes)."""
    if not records:
        raise ValueError("no records to draw")
    picks = np.linspace(0, len(records) - 1, num=min(max_samples, len(records))).round().astype(int)
    tiles = []
    for i in dict.fromkeys(int(p) for p in picks):
        rec = records[i]
        image = cv2.cvtColor(read_rgb(rec.image_path), cv2.COLOR_RGB2BGR)
        r = max(2, int(max(rec.bbox[2], rec.bbox[3]) / 120))
        _draw(image, rec.keypoints, rec.scores > 0, (0, 200, 0), r)
        _draw(image, pred[i], np.ones(len(pred[i]), bool), (0, 0, 230), r)
        x, y, w, h = rec.bbox
        x0, y0 = max(0, int(x - 0.15 * w)), max(0, int(y - 0.1 * h))
        x1, y1 = min(image.shape[1], int(x + 1.15 * w)), min(image.shape[0], int(y + 1.1 * h))
        tile = image[y0:max(y1, y0 + 2), x0:max(x1, x0 + 2)]
        scale = height / tile.shape[0]
        tiles.append(cv2.resize(tile, (max(1, int(tile.shape[1] * scale)), height)))
    canvas = np.concatenate(tiles, axis=1)
    cv2.putText(canvas, "green: labels  red: predictions", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", canvas)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def write_report(
    model_path: str | os.PathLike[str] | None,
    ann_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    flip_test: bool = False,
    batch_size: int = 32,
    threads: int | None = None,
) -> dict[str, Any]:
    """Evaluate and write metrics.json, metrics.md and overlay.png into ``out_dir`` (all or nothing)."""
    from gaitpose.fsutil import staged_dir

    metrics, records, preds = _evaluate(model_path, ann_path, flip_test, batch_size, threads)
    with staged_dir(out_dir) as tmp:
        (tmp / "metrics.json").write_text(dumps(metrics, indent=2), encoding="utf-8")
        (tmp / "metrics.md").write_text(metrics_markdown(metrics), encoding="utf-8")
        kp = preds["flip" if flip_test else "plain"][0]
        (tmp / "overlay.png").write_bytes(overlay_png(records, kp))
    return metrics
