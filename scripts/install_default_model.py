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

import yaml

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


PRUNED_PCK_TOLERANCE = 0.01  # issue 3: the pruned student may lose at most 1 PCK@0.1 point


def _plain(m: dict[str, Any]) -> dict[str, Any]:
    """The no-flip figures of an evaluation (``gaitpose evaluate --flip-test`` puts them aside)."""
    return {**m, **m.get("without_flip", {})} if m.get("flip_test") else m


def _flip_pck(m: dict[str, Any]) -> Any:
    return m.get("with_flip", {}).get("PCK@0.1")


def install(work: Path, models: Path) -> None:
    student_dir = models / "student"
    loc_dir = models / "localizer"
    student_dir.mkdir(parents=True, exist_ok=True)
    loc_dir.mkdir(parents=True, exist_ok=True)

    raw = {name: _load(work / f"eval_{name}" / "metrics.json")
           for name in ("unpruned_onnx", "unpruned_int8", "pruned", "int8")}
    ev = {name: _plain(m) for name, m in raw.items()}
    # The pruned student is the default when it keeps the accuracy the issue asks for (within one
    # PCK@0.1 point of its parent on the held-out split); otherwise the unpruned one is, and the
    # other ships beside it.
    pruned_ok = (ev["pruned"].get("PCK@0.1") is not None and ev["unpruned_onnx"].get("PCK@0.1") is not None
                 and ev["pruned"]["PCK@0.1"] >= ev["unpruned_onnx"]["PCK@0.1"] - PRUNED_PCK_TOLERANCE)
    # Each build: its FP32 and INT8 files in the work folder, their evaluations, the INT8 report and
    # the name it ships under when it is not the default.
    builds = {
        "pruned": ("model.onnx", "model.int8.onnx", "pruned", "int8", "model.int8.report.json", "model.pruned.onnx"),
        "unpruned": ("unpruned.onnx", "unpruned.int8.onnx", "unpruned_onnx", "unpruned_int8",
                     "unpruned.int8.report.json", "model.unpruned.onnx"),
    }
    d_key, o_key = ("pruned", "unpruned") if pruned_ok else ("unpruned", "pruned")
    default, default_int8, d_eval, d_int8_eval, d_report, _ = builds[d_key]
    other, _, o_eval, _, o_report, other_name = builds[o_key]
    ev_default, ev_default_int8, ev_other = ev[d_eval], ev[d_int8_eval], ev[o_eval]
    raw_default, raw_default_int8, raw_other = raw[d_eval], raw[d_int8_eval], raw[o_eval]
    q, q_other = _load(work / d_report), _load(work / o_report)
    for stale in ("model.pruned.onnx", "model.unpruned.onnx", "model.int8.onnx"):
        (student_dir / stale).unlink(missing_ok=True)
    shutil.copyfile(work / default, student_dir / "model.onnx")
    shutil.copyfile(work / other, student_dir / other_name)
    if (work / default_int8).exists():
        shutil.copyfile(work / default_int8, student_dir / "model.int8.onnx")
    shutil.copyfile(work / "localizer.onnx", loc_dir / "model.onnx")

    prune = _load(work / "pruned" / "report.json")
    control = _load(work / "eval_control" / "metrics.json")
    labels_info = _load(work / "labels.json").get("info", {})
    cfg_path = work / "student" / "config.yaml"
    train_cfg = yaml.safe_load(cfg_path.read_text()) if cfg_path.exists() else {}
    splits = {}
    for name in ("train", "val", "test"):
        d = _load(work / "split_all" / f"{name}.json")
        if d:
            recs = sorted({img.get("recording") for img in d["images"]})
            splits[name] = {"recordings": recs, "images": len(d["images"]), "annotations": len(d["annotations"])}

    metric_keys = ("AP", "AP50", "PCK@0.05", "PCK@0.1", "PCK@0.1_body", "PCK@0.1_feet", "mean_px_error",
                   "mean_px_error_feet")
    s_meta = _onnx_meta_dict(student_dir / "model.onnx")
    student_json: dict[str, Any] = {
        "files": {
            "model.onnx": {"sha256": file_sha256(student_dir / "model.onnx"),
                           "bytes": (student_dir / "model.onnx").stat().st_size, "default": True,
                           "precision": "fp32" + (", network-slimming pruned to half the MACs" if pruned_ok else "")},
        },
        "meta": s_meta,
        "params": ev_default.get("params"),
        "gflops": ev_default.get("gflops"),
        "test_metrics": {k: ev_default.get(k) for k in metric_keys},
        "test_metrics_flip_test": raw_default.get("with_flip"),
        "splits": splits,
        "int8": {"verdict": q.get("verdict"), "speedup_median": q.get("speedup_median"),
                 "pck_drop_points": q.get("pck_drop_points")},
    }
    if (student_dir / "model.int8.onnx").exists():
        student_json["files"]["model.int8.onnx"] = {
            "sha256": file_sha256(student_dir / "model.int8.onnx"),
            "bytes": (student_dir / "model.int8.onnx").stat().st_size,
            "precision": "int8 (QDQ, head in float) of model.onnx", "default": False,
            "test_metrics": {k: ev_default_int8.get(k) for k in ("AP", "PCK@0.1", "PCK@0.1_feet")},
        }
    student_json["files"][other_name] = {
        "sha256": file_sha256(student_dir / other_name),
        "bytes": (student_dir / other_name).stat().st_size,
        "precision": "fp32, " + ("the unpruned parent" if pruned_ok else "network-slimming pruned to half the MACs"),
        "default": False,
        "test_metrics": {k: ev_other.get(k) for k in ("AP", "PCK@0.1", "PCK@0.1_feet")},
        "test_metrics_flip_test": raw_other.get("with_flip"),
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
    def row(name: str, m: dict[str, Any], size_kb: float | None, flip: Any) -> str:
        return (f"| {name} | {_f((m.get('params') or 0) / 1e6, 3)} M | {_f(m.get('gflops'), 3)} | "
                f"{_f(size_kb, 0)} KB | {_f(m.get('AP'))} | {_f(m.get('PCK@0.1'))} | {_f(m.get('PCK@0.1_body'))} | "
                f"{_f(m.get('PCK@0.1_feet'))} | {_f(m.get('PCK@0.1_side_agnostic'))} | "
                f"{_f(m.get('mean_px_error'), 1)} | {_f(flip)} |")

    def kb(p: Path) -> float | None:
        return p.stat().st_size / 1024 if p.exists() else None

    lat = prune.get("summary", {})
    h, w = s_meta["input_size"]
    pruned_line = (
        "- `student/model.onnx` (default): the SPPE student pruned by network slimming to half the MACs of its parent, "
        f"FP32, input {h}x{w} RGB, 21 heatmaps at stride {s_meta['stride']}."
        if pruned_ok else
        f"- `student/model.onnx` (default): the SPPE student, FP32, input {h}x{w} RGB, 21 heatmaps at stride "
        f"{s_meta['stride']}."
    )
    other_line = (
        "- `student/model.unpruned.onnx`: the unpruned parent (twice the MACs; kept for comparison and re-pruning)."
        if pruned_ok else
        "- `student/model.pruned.onnx`: the student pruned by network slimming to half the MACs. **Not the default**:\n"
        "  on this tiny training set it loses more than the 1 PCK point allowed (table below)."
    )
    epochs = train_cfg.get("epochs", "?")
    pcfg = prune.get("config", {})
    card = [
        "# gaitpose default models: model card",
        "",
        "Produced end to end by `scripts/build_default_model.sh` (extract -> MediaPipe pseudo-labels with mirror",
        "agreement -> split by recording -> train -> network-slimming prune to half the MACs -> ONNX -> INT8 check),",
        "on the CPU of a 2-core machine. **Not a medical device**: research and engineering use only.",
        "",
        "## Files",
        pruned_line,
        "- `student/model.int8.onnx`: the default statically quantised (QDQ, per-channel, head in float).",
        other_line,
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
        "four synchronised views of one man in a motion lab (`pose2sim_single_cam01..04`, 100 frames each;",
        "cam01/02 see him from the front, cam03/04 from behind) and an outdoor clip where a woman walks in side",
        "view (`sports2d_demo`, cut at 3.33 s and 5.33 s into `sports2d_t`, `sports2d_v` and `sports2d_b`).",
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
        f"The parent student trains once, from scratch, for a fixed {epochs} epochs on every non-test recording, and",
        "its final weights are kept: there is no validation recording to spare. " + (
            f"`gaitpose prune` then trains it {pcfg.get('sparsity_epochs', '?')} epochs with an L1 penalty on the "
            f"BN scales, removes the lowest-scale channels in {pcfg.get('steps', '?')} steps (each followed by "
            f"{pcfg.get('finetune_epochs', '?')} epochs of fine-tuning) down to half the MACs, and fine-tunes the "
            f"pruned network {pcfg.get('final_epochs', '?')} more epochs, distilled from the parent; that network is "
            "the default. It has seen about twice as many epochs as its parent. " + (
                "An equal-epochs control (`CONTROL=1`: the parent trained as many further epochs at the same "
                "learning rate, distilled from itself, not pruned) scored "
                f"{_f(_plain(control).get('PCK@0.1'))} PCK@0.1 on test, against "
                f"{_f(ev_default.get('PCK@0.1'))} for the pruned network." if control else
                "No equal-epochs control was run for this build (`CONTROL=1`).") if pruned_ok else ""),
        "An earlier recipe held `cam03` out for",
        "checkpoint selection; that left no view from behind in training, and the student swapped left and right",
        "on the test view from behind (test PCK@0.1 0.725, side-agnostic 0.931).",
        "The test recordings (cam04, `sports2d_b`) are used for nothing but the figures below.",
        "",
        "## Accuracy against the teacher on the held-out test split",
        "Top-down with the label boxes; PCK normalised by the box's longer side. All columns but the last",
        "without flip test, as `gaitpose analyze` runs by default; the last with flip test (`--flip-test`).",
        "Side-agnostic: PCK@0.1 where each left/right pair may match either way round (the gap to PCK@0.1 is",
        "what left/right swaps cost).",
        "",
        "| model | params | GMACs | file | AP | PCK@0.1 | body | feet | side-agnostic | mean px error "
        "| PCK@0.1 flip test |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        row("**student (default, FP32 ONNX)**", ev_default, kb(student_dir / "model.onnx"), _flip_pck(raw_default)),
        row("student INT8", ev_default_int8, kb(student_dir / "model.int8.onnx"), _flip_pck(raw_default_int8)),
        row("unpruned parent FP32" if pruned_ok else "pruned student FP32", ev_other, kb(student_dir / other_name),
            _flip_pck(raw_other)),
        "",
        "## Latency (ONNX Runtime, one crop, this 2-core CPU)",
    ]
    if lat:
        card.append(f"Pruning (from `gaitpose prune`, parent vs pruned, side by side): `{json.dumps(lat)}`")
    card.append(f"Default FP32 vs INT8 per crop (ms): `{json.dumps(q.get('latency_ms', {}))}`")
    card += [
        "",
        f"INT8 of the default, `gaitpose quantize`'s verdict: {q.get('verdict', 'not measured')}; PCK drop "
        f"{q.get('pck_drop_points')} points (INT8 against FP32 on the training recordings: it measures what "
        "quantisation moves, not generalisation). `gaitpose analyze` loads the FP32 file; pass",
        "`--model models/student/model.int8.onnx` for INT8.",
        f"INT8 of the other model: {q_other.get('verdict', 'not measured')}",
        "",
        "## Known limits",
        "- Tiny public training set (a few hundred frames, two people, two scenes); expect to retrain on a clinic's",
        "  own recordings with `gaitpose-data` + `gaitpose train` before relying on it.",
        "- Labels are a teacher's pseudo-labels, not ground truth: accuracy here is agreement with MediaPipe.",
        "- Most remaining errors are left/right swaps of whole limbs (views from behind, side view mid-stance);",
        "  `gaitpose analyze` corrects leg swaps over time, a single image cannot. Whether a model gets the sides",
        "  right on the test view from behind is close to one coin toss, so PCK@0.1 on this split varies strongly",
        f"  between training seeds of the same recipe (README, Results: {_f(ev_default.get('PCK@0.1'))} for this "
        "model; 0.70-0.83 for the other networks of three seeds, measured on 2026-11-30); the side-agnostic column is",
        "  the steadier figure.",
        "- Side-view walking and lab movements only; no children, assistive devices or pathological gait seen.",
        "- Not a medical device.",
        "",
    ]
    sample = work / ("eval_pruned" if pruned_ok else "eval_unpruned_onnx") / "overlay.png"
    if sample.exists():
        import cv2

        img = cv2.imread(str(sample))
        cv2.imwrite(str(student_dir / "sample_predictions.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    (models / "MODEL_CARD.md").write_text("\n".join(card))
    print(f"installed models into {models}")


if __name__ == "__main__":
    install(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else Path("models"))
