"""Keypoint metrics (numpy + pycocotools): OKS AP/AR, PCK, torso PCK, pixel errors.

All functions take predictions in full-image pixels, one per labelled record, in record order.
Only labelled joints (teacher score > 0) count. PCK is normalised by the longer side of the
annotation box, which stays meaningful for side-view walkers whose torso is foreshortened;
torso PCK is reported too because it is the usual normalisation in gait papers.

Gait-grade figures: box-normalised PCK@0.1 (about 30 px on a walker) cannot see a 5 px heel error
on a 15 px foot, but the ankle angle can. So the feet get PCK@0.05 too, and ``angle_metrics``
compares the sagittal hip/knee/ankle angles of predictions and labels through the gait analysis's
own formula (``gaitpose.gait.angles.sagittal_angles``) and counts predicted angles outside the
physiological ranges that the analysis uses.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from gaitpose.gait.angles import JOINTS, sagittal_angles
from gaitpose.labels import PoseRecord
from gaitpose.skeleton import FLIP_INDEX, FOOT_INDICES, INDEX, KEYPOINTS, NUM_KEYPOINTS, OKS_SIGMAS, coco_category

BODY_INDICES: tuple[int, ...] = tuple(i for i in range(NUM_KEYPOINTS) if i not in FOOT_INDICES)


def _stack_gt(records: Sequence[PoseRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gt = np.stack([r.keypoints for r in records]).astype(np.float64)  # (N, K, 2)
    valid = np.stack([r.scores > 0 for r in records])  # (N, K)
    boxes = np.stack([r.bbox for r in records]).astype(np.float64)  # (N, 4)
    return gt, valid, boxes


def _check(pred: np.ndarray, records: Sequence[PoseRecord]) -> np.ndarray:
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != (len(records), NUM_KEYPOINTS, 2):
        raise ValueError(f"predictions have shape {pred.shape}, expected ({len(records)}, {NUM_KEYPOINTS}, 2)")
    return pred


def keypoint_distances(pred: np.ndarray, records: Sequence[PoseRecord]) -> tuple[np.ndarray, np.ndarray]:
    """(distance in pixels (N, K), labelled mask (N, K))."""
    pred = _check(pred, records)
    gt, valid, _ = _stack_gt(records)
    return np.linalg.norm(pred - gt, axis=-1), valid


def torso_sizes(records: Sequence[PoseRecord]) -> np.ndarray:
    """Mean of the two shoulder-to-opposite-hip diagonals; NaN when neither is labelled."""
    out = np.full(len(records), np.nan)
    pairs = ((INDEX["left_shoulder"], INDEX["right_hip"]), (INDEX["right_shoulder"], INDEX["left_hip"]))
    for n, r in enumerate(records):
        d = [
            float(np.linalg.norm(r.keypoints[a] - r.keypoints[b]))
            for a, b in pairs
            if r.scores[a] > 0 and r.scores[b] > 0
        ]
        if d and max(d) > 1.0:
            out[n] = float(np.mean(d))
    return out


def box_scales(records: Sequence[PoseRecord]) -> np.ndarray:
    """Longer side of each annotation box: the PCK normaliser."""
    return np.array([max(float(r.bbox[2]), float(r.bbox[3])) for r in records])


def pck(
    pred: np.ndarray,
    records: Sequence[PoseRecord],
    threshold: float,
    norm: str = "bbox",
    indices: Sequence[int] | None = None,
) -> float:
    """Fraction of labelled joints within ``threshold`` x (box longer side | torso size)."""
    dist, valid = keypoint_distances(pred, records)
    if norm == "bbox":
        scale = box_scales(records)
    elif norm == "torso":
        scale = torso_sizes(records)
    else:
        raise ValueError(f"unknown PCK normalisation {norm!r}")
    ok = valid & np.isfinite(scale)[:, None]
    if indices is not None:
        mask = np.zeros(NUM_KEYPOINTS, dtype=bool)
        mask[list(indices)] = True
        ok &= mask[None]
    if not ok.any():
        return float("nan")
    hit = dist <= threshold * np.where(np.isfinite(scale), scale, 0.0)[:, None]
    return float(hit[ok].mean())


def pck_side_agnostic(pred: np.ndarray, records: Sequence[PoseRecord], threshold: float) -> float:
    """PCK (box-normalised) where each left/right pair may be matched either way round.

    Per person and pair, the assignment (as predicted, or swapped) that finds more of the two
    joints counts. The gap between this and plain PCK is the share of joints lost to left/right
    swaps, the typical error of a small model on views from behind and on side views; a gait
    pipeline can repair swaps over time, a single image cannot. Two predictions on the same
    joint still count once.
    """
    pred = _check(pred, records)
    gt, valid, _ = _stack_gt(records)
    if not valid.any():
        return float("nan")
    scale = box_scales(records)[:, None]
    hit = (np.linalg.norm(pred - gt, axis=-1) <= threshold * scale) & valid
    swapped = (np.linalg.norm(pred[:, FLIP_INDEX] - gt, axis=-1) <= threshold * scale) & valid
    best = hit.copy()
    for a in range(NUM_KEYPOINTS):
        b = int(FLIP_INDEX[a])
        if b <= a:
            continue
        use_swap = swapped[:, a].astype(int) + swapped[:, b] > hit[:, a].astype(int) + hit[:, b]
        best[use_swap, a] = swapped[use_swap, a]
        best[use_swap, b] = swapped[use_swap, b]
    return float(best[valid].mean())


def pck_per_recording(pred: np.ndarray, records: Sequence[PoseRecord], threshold: float) -> dict[str, float]:
    """Box-normalised PCK of each recording: a held-out split mixes views that fail differently."""
    pred = _check(pred, records)
    out: dict[str, float] = {}
    for rec in sorted({r.recording for r in records}):
        idx = [i for i, r in enumerate(records) if r.recording == rec]
        out[rec] = pck(pred[idx], [records[i] for i in idx], threshold)
    return out


def per_keypoint_error(pred: np.ndarray, records: Sequence[PoseRecord]) -> dict[str, float | None]:
    """Mean pixel error of each keypoint over the records where it is labelled (None if never)."""
    dist, valid = keypoint_distances(pred, records)
    out: dict[str, float | None] = {}
    for k, name in enumerate(KEYPOINTS):
        out[name] = float(dist[valid[:, k], k].mean()) if valid[:, k].any() else None
    return out


def walking_directions(records: Sequence[PoseRecord]) -> np.ndarray:
    """+1 / -1 per record: the way the labelled feet point (heel -> big toe along image x).

    A single frame has no motion, but in a side view the feet point where the subject walks.
    Records whose feet are not labelled take their recording's majority, else +1. The direction
    only mirrors the angles: errors are the same either way, but the sign of flexion (and so
    which angles are implausible) depends on it.
    """
    pairs = [(INDEX[f"{s}_heel"], INDEX[f"{s}_toe"]) for s in ("left", "right")]
    raw = np.zeros(len(records))
    for n, r in enumerate(records):
        dx = [float(r.keypoints[t, 0] - r.keypoints[h, 0]) for h, t in pairs if r.scores[h] > 0 and r.scores[t] > 0]
        raw[n] = np.sign(np.sum(dx)) if dx else 0.0
    out = raw.copy()
    for rec in {r.recording for r in records}:
        idx = [i for i, r in enumerate(records) if r.recording == rec]
        fallback = np.sign(raw[idx].sum()) or 1.0
        out[idx] = np.where(raw[idx] == 0, fallback, raw[idx])
    return out


def angle_metrics(
    pred: np.ndarray,
    records: Sequence[PoseRecord],
    ranges: dict[str, tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """Sagittal angle error against the labels and share of implausible predicted angles.

    For each record and joint angle (hip/knee/ankle, left/right) both the label's and the
    prediction's angle go through ``sagittal_angles`` with the record's walking direction
    (``walking_directions``). A joint-frame counts where the label has every point its angle
    needs. Returns ``angle_mae_deg`` (per joint and side, per joint, and ``all``; NaN where
    nothing was comparable), ``angle_count``, ``implausible_angle_share`` of the predictions and,
    as the floor the labels themselves set, ``implausible_angle_share_labels``; ranges default to
    the gait analysis's physiological ranges. ``angle_mae_deg_side_agnostic`` (hip, knee, ankle,
    all) lets each frame's prediction count with its legs the other way round when that fits
    better: the gap to ``angle_mae_deg`` is what left/right leg swaps cost, which the gait analysis
    repairs over time (``gaitpose.gait.swap``) and a single frame cannot.
    """
    from gaitpose.gait.angles import PLAUSIBLE_RANGES_DEG

    pred = _check(pred, records)
    ranges = dict(PLAUSIBLE_RANGES_DEG if ranges is None else ranges)
    gt, valid, _ = _stack_gt(records)
    gt = np.where(valid[..., None], gt, np.nan)
    direction = walking_directions(records)
    a_gt = sagittal_angles(gt, direction)
    a_pred = sagittal_angles(pred, direction)
    a_swap = sagittal_angles(pred[:, FLIP_INDEX], direction)
    mae: dict[str, float] = {}
    count: dict[str, int] = {}
    bad: dict[str, float] = {}
    bad_gt: dict[str, float] = {}
    errs: dict[str, np.ndarray] = {}
    outside: dict[str, np.ndarray] = {}
    outside_gt: dict[str, np.ndarray] = {}
    for name in JOINTS:
        ok = np.isfinite(a_gt[name])
        p = a_pred[name][ok]
        e = np.abs((p - a_gt[name][ok] + 180.0) % 360.0 - 180.0)  # a wrap at +-180 is a small error
        e = np.where(np.isfinite(e), e, 180.0)  # a prediction with no angle is as wrong as can be
        lo, hi = ranges[name.rsplit("_", 1)[0]]
        errs[name] = e
        outside[name] = ~((p >= lo) & (p <= hi))
        outside_gt[name] = ~((a_gt[name][ok] >= lo) & (a_gt[name][ok] <= hi))
        count[name] = int(ok.sum())
        mae[name] = float(e.mean()) if e.size else float("nan")
        bad[name] = float(outside[name].mean()) if e.size else float("nan")
        bad_gt[name] = float(outside_gt[name].mean()) if e.size else float("nan")
    agnostic: dict[str, list[np.ndarray]] = {}
    for joint in ("hip", "knee", "ankle"):
        sides = []
        for source in (a_pred, a_swap):  # per frame: both legs as predicted, or both swapped
            e = [np.abs((source[f"{joint}_{s}"] - a_gt[f"{joint}_{s}"] + 180.0) % 360.0 - 180.0)
                 for s in ("left", "right")]
            sides.append(np.stack(e))  # (2, N), NaN where the label has no angle
        same, swapped = sides
        use_swap = np.nansum(swapped, axis=0) < np.nansum(same, axis=0)
        best = np.where(use_swap[None], swapped, same)
        agnostic[joint] = [best[np.isfinite(best)]]
    side_agnostic = {j: float(v[0].mean()) if v[0].size else float("nan") for j, v in agnostic.items()}
    every = np.concatenate([v[0] for v in agnostic.values()])
    side_agnostic["all"] = float(every.mean()) if every.size else float("nan")
    for joint in ("hip", "knee", "ankle", "all"):
        names = JOINTS if joint == "all" else (f"{joint}_left", f"{joint}_right")
        e = np.concatenate([errs[n] for n in names])
        mae[joint] = float(e.mean()) if e.size else float("nan")
        count[joint] = int(e.size)
        bad[joint] = float(np.concatenate([outside[n] for n in names]).mean()) if e.size else float("nan")
        bad_gt[joint] = float(np.concatenate([outside_gt[n] for n in names]).mean()) if e.size else float("nan")
    return {
        "angle_mae_deg": mae,
        "angle_mae_deg_side_agnostic": side_agnostic,
        "angle_count": count,
        "implausible_angle_share": bad,
        "implausible_angle_share_labels": bad_gt,
        "angle_ranges_deg": {k: [float(v[0]), float(v[1])] for k, v in ranges.items()},
    }


def angle_metrics_per_recording(pred: np.ndarray, records: Sequence[PoseRecord]) -> dict[str, dict[str, float]]:
    """Angle MAE (hip, knee, ankle, all) and implausible share per recording: sagittal angles mean
    something in side views only, and a held-out split mixes views."""
    pred = _check(pred, records)
    out: dict[str, dict[str, float]] = {}
    for rec in sorted({r.recording for r in records}):
        idx = [i for i, r in enumerate(records) if r.recording == rec]
        m = angle_metrics(pred[idx], [records[i] for i in idx])
        out[rec] = {**{j: m["angle_mae_deg"][j] for j in ("hip", "knee", "ankle", "all")},
                    "implausible": m["implausible_angle_share"]["all"],
                    "implausible_labels": m["implausible_angle_share_labels"]["all"]}
    return out


def _coco_gt(records: Sequence[PoseRecord]) -> dict[str, Any]:
    images: dict[int, dict[str, Any]] = {}
    anns = []
    for n, r in enumerate(records):
        images.setdefault(r.image_id, {"id": r.image_id, "width": r.width, "height": r.height, "file_name": ""})
        v = np.where(r.scores > 0, 2, 0)
        kp = np.concatenate([np.where(v[:, None] > 0, r.keypoints, 0.0), v[:, None]], axis=1)
        anns.append(
            {
                "id": n + 1,
                "image_id": r.image_id,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [float(x) for x in r.bbox],
                "area": float(r.bbox[2] * r.bbox[3]),
                "num_keypoints": int(v.astype(bool).sum()),
                "keypoints": [float(x) for x in kp.reshape(-1)],
            }
        )
    return {"images": list(images.values()), "annotations": anns, "categories": [coco_category()]}


def oks_ap(pred: np.ndarray, pred_scores: np.ndarray, records: Sequence[PoseRecord]) -> dict[str, float]:
    """COCO keypoint AP/AR with gaitpose's 21 OKS sigmas (pycocotools COCOeval).

    Each prediction is scored with the mean of its keypoint confidences, as top-down COCO
    evaluation does with ground-truth boxes.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    pred = _check(pred, records)
    pred_scores = np.asarray(pred_scores, dtype=np.float64).reshape(len(records), NUM_KEYPOINTS)
    gt = COCO()
    gt.dataset = _coco_gt(records)
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    results = []
    for r, p, s in zip(records, pred, pred_scores, strict=True):
        kp = np.concatenate([p, s[:, None]], axis=1)
        results.append(
            {
                "image_id": r.image_id,
                "category_id": 1,
                "keypoints": [float(x) for x in kp.reshape(-1)],
                "score": float(np.clip(s.mean(), 1e-6, None)),
            }
        )
    keys = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")
    if not results or not any(a["num_keypoints"] > 0 for a in gt.dataset["annotations"]):
        return dict.fromkeys(keys, float("nan"))
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(OKS_SIGMAS, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: float(v) for k, v in zip(keys, ev.stats, strict=True)}


def compute_metrics(pred: np.ndarray, pred_scores: np.ndarray, records: Sequence[PoseRecord]) -> dict[str, Any]:
    """All accuracy metrics for one set of predictions (see module docstring)."""
    if len(records) == 0:
        raise ValueError("no labelled records to evaluate")
    out: dict[str, Any] = dict(oks_ap(pred, pred_scores, records))
    out["PCK@0.05"] = pck(pred, records, 0.05)
    out["PCK@0.1"] = pck(pred, records, 0.1)
    out["PCK@0.2"] = pck(pred, records, 0.2)
    out["PCKt@0.2"] = pck(pred, records, 0.2, norm="torso")
    out["PCKt@0.5"] = pck(pred, records, 0.5, norm="torso")
    out["PCK@0.1_body"] = pck(pred, records, 0.1, indices=BODY_INDICES)
    out["PCK@0.1_feet"] = pck(pred, records, 0.1, indices=FOOT_INDICES)
    out["PCK@0.05_body"] = pck(pred, records, 0.05, indices=BODY_INDICES)
    out["PCK@0.05_feet"] = pck(pred, records, 0.05, indices=FOOT_INDICES)
    out.update(angle_metrics(pred, records))
    out["angle_mae_deg_per_recording"] = angle_metrics_per_recording(pred, records)
    out["PCK@0.1_side_agnostic"] = pck_side_agnostic(pred, records, 0.1)
    out["PCK@0.1_per_recording"] = pck_per_recording(pred, records, 0.1)
    errors = per_keypoint_error(pred, records)
    dist, valid = keypoint_distances(pred, records)
    out["mean_px_error"] = float(dist[valid].mean()) if valid.any() else float("nan")
    feet_mask = np.zeros(NUM_KEYPOINTS, dtype=bool)
    feet_mask[list(FOOT_INDICES)] = True
    fv = valid & feet_mask[None]
    bv = valid & ~feet_mask[None]
    out["mean_px_error_feet"] = float(dist[fv].mean()) if fv.any() else float("nan")
    out["mean_px_error_body"] = float(dist[bv].mean()) if bv.any() else float("nan")
    out["px_error_per_keypoint"] = errors
    out["px_error_feet"] = {KEYPOINTS[i]: errors[KEYPOINTS[i]] for i in FOOT_INDICES}
    out["num_samples"] = len(records)
    out["num_keypoints_labelled"] = int(valid.sum())
    return out
