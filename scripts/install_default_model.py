"""Copy a finished build (scripts/build_default_model.sh) into models/ with meta.json and MODEL_CARD.md.

Every figure in the card is read from the build's own reports (evaluation, pruning, INT8), so
the card cannot drift from what was measured.

    python scripts/install_default_model.py runs/default [models]
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from gaitpose.fsutil import file_sha256
from gaitpose.infer.pose import load_onnx_meta
from gaitpose.skeleton import KEYPOINTS


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _onnx_meta_dict(path: Path) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(load_onnx_meta(path))


def install(work: Path, models: Path) -> None:
    student_dir = models / "student"
    loc_dir = models / "localizer"
    student_dir.mkdir(parents=True, exist_ok=True)
    loc_dir.mkdir(parents=True, exist_ok=True)

    # The default is the unpruned student: on this tiny data set the pruned one loses too much
    # accuracy (see the card). Both ship, with the INT8 version of the default.
    q = _load(work / "unpruned.int8.report.json")
    q_pruned = _load(work / "model.int8.report.json")
    shutil.copyfile(work / "unpruned.onnx", student_dir / "model.onnx")
    shutil.copyfile(work / "model.onnx", student_dir / "model.pruned.onnx")
    if (work / "unpruned.int8.onnx").exists():
        shutil.copyfile(work / "unpruned.int8.onnx", student_dir / "model.int8.onnx")
    shutil.copyfile(work / "localizer.onnx", loc_dir / "model.onnx")

    ev_pruned = _load(work / "eval_pruned" / "metrics.json")
    ev_unpruned = _load(work / "eval_unpruned_onnx" / "metrics.json")
    ev_int8 = _load(work / "eval_unpruned_int8" / "metrics.json")
    ev_pruned_int8 = _load(work / "eval_int8" / "metrics.json")
    prune = _load(work / "pruned" / "report.json")
    labels_info = _load(work / "labels.json").get("info", {})
    splits = {}
    for name in ("train", "val", "test"):
        d = _load(work / "split2" / f"{name}.json")
        if d:
            recs = sorted({img.get("recording") for img in d["images"]})
            splits[name] = {"recordings": recs, "images": len(d["images"]), "annotations": len(d["annotations"])}

    s_meta = _onnx_meta_dict(student_dir / "model.onnx")
    student_json = {
        "files": {
            "model.onnx": {"sha256": file_sha256(student_dir / "model.onnx"),
                           "bytes": (student_dir / "model.onnx").stat().st_size, "precision": "fp32", "default": True},
        },
        "meta": s_meta,
        "params": ev_unpruned.get("params"),
        "gflops": ev_unpruned.get("gflops"),
        "test_metrics": {k: ev_unpruned.get(k) for k in ("AP", "AP50", "PCK@0.05", "PCK@0.1", "PCK@0.1_body",
                                                        "PCK@0.1_feet", "mean_px_error", "mean_px_error_feet")},
        "splits": splits,
        "int8": {"verdict": q.get("verdict"), "speedup_median": q.get("speedup_median"),
                 "pck_drop_points": q.get("pck_drop_points")},
    }
    if (student_dir / "model.int8.onnx").exists():
        student_json["files"]["model.int8.onnx"] = {
            "sha256": file_sha256(student_dir / "model.int8.onnx"),
            "bytes": (student_dir / "model.int8.onnx").stat().st_size,
            "precision": "int8 (QDQ, head in float)", "default": bool(q.get("recommend_int8")),
        }
    student_json["files"]["model.pruned.onnx"] = {
        "sha256": file_sha256(student_dir / "model.pruned.onnx"),
            "bytes": (student_dir / "model.pruned.onnx").stat().st_size,
        "precision": "fp32, network-slimming pruned to half the MACs", "default": False,
        "test_metrics": {k: ev_pruned.get(k) for k in ("AP", "PCK@0.1", "PCK@0.1_feet")},
    }
    (student_dir / "meta.json").write_text(json.dumps(student_json, indent=2) + "\n")

    l_meta = _onnx_meta_dict(loc_dir / "model.onnx")
    loc_summary = _load(work / "localizer" / "summary.json")
    (loc_dir / "meta.json").write_text(json.dumps({
        "files": {"model.onnx": {"sha256": file_sha256(loc_dir / "model.onnx"),
                                 "bytes": (loc_dir / "model.onnx").stat().st_size}},
        "meta": l_meta,
        "training": loc_summary,
    }, indent=2, default=str) + "\n")

    # ---- model card ---------------------------------------------------------------------------
    def row(name: str, m: dict[str, Any], size_kb: float | None) -> str:
        return (f"| {name} | {_f((m.get('params') or 0) / 1e6, 3)} M | {_f(m.get('gflops'), 3)} | "
                f"{_f(size_kb, 0)} KB | {_f(m.get('AP'))} | {_f(m.get('PCK@0.1'))} | {_f(m.get('PCK@0.1_body'))} | "
                f"{_f(m.get('PCK@0.1_feet'))} | {_f(m.get('mean_px_error'), 1)} |")

    def kb(p: Path) -> float | None:
        return p.stat().st_size / 1024 if p.exists() else None

    lat = prune.get("summary", {})
    h, w = s_meta["input_size"]
    card = [
        "# gaitpose default models: model card",
        "",
        "Produced end to end by `scripts/build_default_model.sh` (extract -> MediaPipe pseudo-labels with mirror",
        "agreement -> split by recording -> train -> network-slimming prune to half the MACs -> ONNX -> INT8 check),",
        "on the CPU of a 2-core machine. **Not a medical device**: research and engineering use only.",
        "",
        "## Files",
        f"- `student/model.onnx` (default): the SPPE student, FP32, input {h}x{w} RGB, 21 heatmaps at stride "
        f"{s_meta['stride']}.",
        "- `student/model.int8.onnx`: the same model statically quantised (QDQ, per-channel, head in float).",
        "- `student/model.pruned.onnx`: the student pruned by network slimming to half the MACs. **Not the default**:",
        "  on this tiny training set it loses too much accuracy (table below; the target was at most 1 PCK point).",
        "- `localizer/model.onnx`: CenterNet-style person localiser (centre heatmap + box size) on the full frame, "
        f"input {l_meta['input_size'][0]}x{l_meta['input_size'][1]} letterboxed.",
        "- `*/meta.json`: sha256, sizes, embedded runtime metadata and the figures below.",
        "- `student/sample_predictions.jpg`: default student (red) vs teacher labels (green) on test crops.",
        "",
        "## Keypoints",
        "COCO-17 in COCO order, then " + ", ".join(KEYPOINTS[17:]) + " (21 in all; `gaitpose/skeleton.py`).",
        "",
        "## Training data and licence",
        "Pseudo-labels from MediaPipe BlazePose full (0.10.21, offline) on the six recordings cut from the",
        "BSD-3-licensed demo videos of `sports2d` 0.8.34 and `pose2sim` 0.10.49 (copyright perfanalytics):",
        "four synchronised views of one man in a motion lab (`pose2sim_single_cam01..04`, 100 frames each)",
        "and an outdoor clip where a woman walks in side view (`sports2d_demo`, cut at 3.33 s and 5.33 s into",
        "`sports2d_t`, `sports2d_v` and `sports2d_b`).",
        f"Labelling: {labels_info.get('teacher', 'mediapipe')}, mirror agreement on; per recording statistics are "
        "in `runs/default/labels.json` (info).",
        "",
        "| split | recordings | images | labelled persons |",
        "|---|---|---|---|",
    ]
    for name, s in splits.items():
        card.append(f"| {name} | {', '.join(s['recordings'])} | {s['images']} | {s['annotations']} |")
    card += [
        "",
        "The split is by recording, but the same man appears in all four lab views and the same woman in all",
        "Sports2D parts: the test split measures generalisation to a new view / a later time, not to a new person.",
        "Training ran in two stages (`scripts/build_default_model.sh`): 80 epochs from scratch validated on",
        "`sports2d_v`, then 30 epochs of fine-tuning with `sports2d_v` added to training, validated on",
        "`pose2sim_single_cam03`. Stage A trained on cam03, so the stage-B validation figure used to pick the",
        "checkpoint is optimistic; the test recordings (cam04, `sports2d_b`) were held out of both stages.",
        "",
        "## Accuracy against the teacher on the held-out test split",
        "Top-down with the label boxes, no flip test; PCK normalised by the box's longer side.",
        "",
        "| model | params | GMACs | file | AP | PCK@0.1 | body | feet | mean px error |",
        "|---|---|---|---|---|---|---|---|---|",
        row("**student (default, FP32 ONNX)**", ev_unpruned, kb(student_dir / "model.onnx")),
        row("student INT8", ev_int8, kb(student_dir / "model.int8.onnx")),
        row("pruned student FP32", ev_pruned, kb(student_dir / "model.pruned.onnx")),
        row("pruned student INT8 (not shipped)", ev_pruned_int8, kb(work / "model.int8.onnx")),
        "",
        "## Latency (ONNX Runtime, one crop, this 2-core CPU)",
    ]
    if lat:
        card.append("Pruning (from `gaitpose prune`; accuracy on the stage-B validation recording, which the unpruned")
        card.append(f"model had seen in stage A, so the drop is overstated there): `{json.dumps(lat)}`")
    card.append(f"Default FP32 vs INT8 per crop (ms): `{json.dumps(q.get('latency_ms', {}))}`")
    card += [
        "",
        f"INT8 of the default: quantize's verdict is '{q.get('verdict', 'not measured')}' (median speed-up "
        f"{q.get('speedup_median')}, PCK drop {q.get('pck_drop_points')} points). `gaitpose analyze` still loads",
        "the FP32 file by default: the speed-up is small and varies between runs on shared 2-core machines;",
        "pass `--model models/student/model.int8.onnx` to use INT8.",
        f"INT8 of the pruned model: {q_pruned.get('verdict', 'not measured')}",
        "",
        "## Known limits",
        "- Tiny public training set (a few hundred frames, two people, two scenes); expect to retrain on a clinic's",
        "  own recordings with `gaitpose-data` + `gaitpose train` before relying on it.",
        "- Labels are a teacher's pseudo-labels, not ground truth: accuracy here is agreement with MediaPipe.",
        "- Side-view walking and lab movements only; no children, assistive devices or pathological gait seen.",
        "- Not a medical device.",
        "",
    ]
    sample = work / "eval_unpruned_onnx" / "overlay.png"
    if sample.exists():
        import cv2

        img = cv2.imread(str(sample))
        cv2.imwrite(str(student_dir / "sample_predictions.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    (models / "MODEL_CARD.md").write_text("\n".join(card))
    print(f"installed models into {models}")


if __name__ == "__main__":
    install(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else Path("models"))
