"""The general model (converted BlazePose) beside MediaPipe and the student: parity, accuracy, speed.

Run::

    .venv/bin/python -m benchmarks.general_model --labels LABELS.json [--videos DIR] [--out out.json]

where LABELS.json are teacher labels of the shared videos made with
``gaitpose-data extract ../shared/data/videos/*.mp4 -o FRAMES && gaitpose-data label FRAMES -o LABELS.json``.
It prints, side by side for the general model and the student:

* parity with MediaPipe itself: the converted landmark model in ``BlazePoseEstimator`` against
  MediaPipe's own ``PoseLandmarkByRoiCpu`` graph (its ImageToTensor crop, tflite inference,
  landmark decoding and heatmap refinement) given the *same* ROI on the same frames, so the
  difference is the conversion and the re-implemented decoding only (max / mean px);
* accuracy against the teacher labels, with each model driven the way ``gaitpose analyze``
  drives it (frames in order, the label box as the tracker's box): PCK@0.1, feet PCK@0.1,
  PCK@0.05, feet PCK@0.05, per recording, and on Sports2D frames 40-200 the sagittal knee/ankle
  angle MAE against the teacher's keypoints through the same formula and the share of
  implausible angles (``gaitpose.eval.metrics.angle_metrics``);
* speed: per-crop latency on one ORT thread for both models, and per video the frame loop of
  ``gaitpose analyze`` (decode thread + tracker + model, as ``analyze_video`` builds it) with each
  model, beside decoding alone and MediaPipe's own full-frame ``Pose`` loop with decoding
  (``benchmarks.teacher_vs_analyze``), all in ms per frame.

MediaPipe is needed only for the parity and MediaPipe-speed parts (skipped when absent).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.infer.blazepose import BlazePoseEstimator, Roi
from gaitpose.skeleton import BLAZEPOSE33_TO_GAITPOSE, FOOT_INDICES

REPO = Path(__file__).resolve().parents[1]
GENERAL = REPO / "models" / "general" / "blazepose_full.onnx"
STUDENT = REPO / "models" / "student" / "model.onnx"
LOCALIZER = REPO / "models" / "localizer" / "model.onnx"


class MediaPipeRoiReference:
    """MediaPipe's own landmark subgraph (``PoseLandmarkByRoiCpu``) on a caller-given ROI.

    The reference for parity: MediaPipe crops the ROI, runs the tflite model with its XNNPACK
    delegate, decodes and refines the landmarks and projects them back, exactly as inside
    ``mp.solutions.pose``, but with the ROI fixed by the caller instead of by its detector or
    tracker, so both sides see the same region.
    """

    GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
node {
  calculator: "PoseLandmarkByRoiCpu"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:landmarks"
}
"""

    def __init__(self) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        import mediapipe as mp
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python import packet_creator, packet_getter
        from mediapipe.python._framework_bindings import resource_util

        resource_util.set_resource_dir(str(Path(mp.__file__).resolve().parents[1]))
        self._mp, self._pc, self._pg = mp, packet_creator, packet_getter
        config = text_format.Parse(self.GRAPH, calculator_pb2.CalculatorGraphConfig())
        self._graph = mp.CalculatorGraph(graph_config=config)
        self._out: list[Any] = []
        self._graph.observe_output_stream("landmarks", lambda _name, p: self._out.append(packet_getter.get_proto(p)))
        self._graph.start_run(input_side_packets={"model_complexity": packet_creator.create_int(1)})
        self._t = 0

    def __call__(self, image_rgb: np.ndarray, roi: Roi) -> np.ndarray | None:
        """(33, 2) landmarks in full-image pixels (the teacher's convention: normalised x W - 0.5), or None."""
        from mediapipe.framework.formats import rect_pb2

        h, w = image_rgb.shape[:2]
        rect = rect_pb2.NormalizedRect(x_center=float(roi.center[0]) / w, y_center=float(roi.center[1]) / h,
                                       width=float(roi.side) / w, height=float(roi.side) / h,
                                       rotation=float(np.radians(roi.angle)))
        self._out.clear()
        frame = self._pc.create_image_frame(image_format=self._mp.ImageFormat.SRGB,
                                            data=np.ascontiguousarray(image_rgb))
        self._graph.add_packet_to_input_stream("image", frame.at(self._t))
        self._graph.add_packet_to_input_stream("roi", self._pc.create_proto(rect).at(self._t))
        self._t += 1
        self._graph.wait_until_idle()
        if not self._out:
            return None
        lm = self._out[-1].landmark
        return np.array([[p.x * w - 0.5, p.y * h - 0.5] for p in lm], dtype=np.float32)

    def close(self) -> None:
        self._graph.close()


def read_frames(video: str | os.PathLike[str], indices: Sequence[int] | None = None) -> list[np.ndarray]:
    """RGB frames of a video (all, or those at ``indices``), decoded with OpenCV."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    want = None if indices is None else set(int(i) for i in indices)
    out, i = [], 0
    ok, f = cap.read()
    while ok:
        if want is None or i in want:
            out.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
        i += 1
        ok, f = cap.read()
    cap.release()
    return out


def roi_inside(roi: Roi, image_wh: tuple[int, int]) -> bool:
    """Whether the (rotated) ROI square lies inside the image (no border pixels in the crop)."""
    r = roi.side * 0.5 * np.sqrt(2.0)
    return bool(r <= roi.center[0] <= image_wh[0] - r and r <= roi.center[1] <= image_wh[1] - r)


def parity_track(
    frames: Sequence[np.ndarray], start_box: np.ndarray, estimator: BlazePoseEstimator,
    reference: MediaPipeRoiReference,
) -> dict[str, Any]:
    """Track a person through ``frames`` with the estimator; per frame, compare it with MediaPipe on its ROI.

    Returns the |difference| in pixels over the 21 gaitpose keypoints of all compared frames
    (max, 99th percentile, mean, median), how many ROIs crossed the image border (both sides
    replicate the edge pixels there), ``reference_missing``: frames where MediaPipe saw no pose
    (its flag < 0.5) but the estimator did, and ``no_pose_both``: frames where neither did.
    """
    from gaitpose.geometry import expand_box, keypoints_to_box

    estimator.reset()
    box = np.asarray(start_box, np.float32)
    diffs: list[np.ndarray] = []
    over_border = missing = both_none = 0
    idx = np.asarray(BLAZEPOSE33_TO_GAITPOSE)
    for img in frames:
        res = estimator._predict_one(img, box, False)
        ref = reference(img, res.roi)
        if ref is None:  # MediaPipe's pose flag < 0.5: it outputs nothing for this ROI
            if res.pose_flag < 0.5:
                both_none += 1
            else:
                missing += 1
        else:
            diffs.append(np.linalg.norm(res.keypoints - ref[idx], axis=1))
            over_border += not roi_inside(res.roi, (img.shape[1], img.shape[0]))
        kbox = keypoints_to_box(res.keypoints)
        if kbox is not None:
            box = expand_box(kbox, 1.15)
    out: dict[str, Any] = {"frames": len(diffs), "roi_over_border": over_border, "reference_missing": missing,
                           "no_pose_both": both_none}
    if diffs:
        a = np.stack(diffs)
        out.update(max_px=float(a.max()), p99_px=float(np.quantile(a, 0.99)), mean_px=float(a.mean()),
                   median_px=float(np.median(a)))
    return out


def predict_in_order(estimator: Any, records: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints and scores per record, frames in order with the label box as the tracker's box."""
    from gaitpose.eval.evaluate import read_rgb

    if hasattr(estimator, "reset"):
        estimator.reset()
    kps, scs = [], []
    last_rec = None
    for r in records:
        if r.recording != last_rec and hasattr(estimator, "reset"):
            estimator.reset()
        last_rec = r.recording
        res = estimator.predict(read_rgb(r.image_path), [r.bbox])[0]
        kps.append(res.keypoints)
        scs.append(res.scores)
    return np.stack(kps).astype(np.float32), np.stack(scs).astype(np.float32)


def accuracy(estimator: Any, records: Sequence[Any]) -> dict[str, Any]:
    """PCK figures overall and per recording, and Sports2D 40-200 angle errors, against teacher labels."""
    from gaitpose.eval.metrics import angle_metrics, pck, pck_per_recording

    kp, _ = predict_in_order(estimator, records)
    out: dict[str, Any] = {
        "PCK@0.1": pck(kp, records, 0.1), "PCK@0.1_feet": pck(kp, records, 0.1, indices=FOOT_INDICES),
        "PCK@0.05": pck(kp, records, 0.05), "PCK@0.05_feet": pck(kp, records, 0.05, indices=FOOT_INDICES),
        "PCK@0.1_per_recording": pck_per_recording(kp, records, 0.1), "records": len(records),
    }
    walk = [i for i, r in enumerate(records) if r.recording.startswith("sports2d") and 40 <= r.frame_index <= 200]
    if walk:
        am = angle_metrics(kp[walk], [records[i] for i in walk])
        out["sports2d_40_200"] = {
            "records": len(walk),
            "knee_mae_deg": am["angle_mae_deg"]["knee"], "ankle_mae_deg": am["angle_mae_deg"]["ankle"],
            "hip_mae_deg": am["angle_mae_deg"]["hip"],
            "implausible_share": am["implausible_angle_share"]["all"],
            "implausible_share_labels": am["implausible_angle_share_labels"]["all"],
        }
    return out


def crop_latency_ms(estimator: Any, image: np.ndarray, box: np.ndarray, repeats: int = 50) -> dict[str, float]:
    """Per-crop latency of ``estimator.predict`` (crop + ORT + decode) on one frame: median and min ms."""
    for _ in range(5):
        estimator.predict(image, [box])
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        estimator.predict(image, [box])
        ts.append(time.perf_counter() - t)
    return {"median_ms": 1000 * float(np.median(ts)), "min_ms": 1000 * float(np.min(ts))}


def loop_ms_per_frame(video: Path, model: str | os.PathLike[str], localizer: Path = LOCALIZER) -> dict[str, Any]:
    """``gaitpose analyze``'s frame loop alone (decode thread + tracker + localiser + pose model), ms per frame.

    Built as ``analyze_video`` builds it: planar frames decoded ahead on their own thread, ORT with
    its default threads and no spinning, ``track_video``. Outputs (gait analysis, report, overlay)
    are not part of the loop and not timed.
    """
    from gaitpose.infer.blazepose import load_pose_estimator
    from gaitpose.infer.localizer import OnnxLocalizer
    from gaitpose.infer.track import default_decode_threads, track_video
    from gaitpose.io import open_recording
    from gaitpose.io.prefetch import prefetch

    est = load_pose_estimator(model, spinning=False)
    loc = OnnxLocalizer(localizer, spinning=False)
    with open_recording(video) as rec:
        frames = prefetch(rec.color_images(default_decode_threads()), depth=4)
        t = time.perf_counter()
        track = track_video(frames, est, loc, total_frames=rec.num_frames)
        seconds = time.perf_counter() - t
    n = max(1, track.n_frames)
    return {"ms_per_frame": 1000 * seconds / n, "frames": track.n_frames,
            "frames_with_pose": int(track.accepted.sum()), "keypoints": track.keypoints, "accepted": track.accepted}


def loop_accuracy(loop: dict[str, Any], records: Sequence[Any]) -> dict[str, float]:
    """PCK of the analyze loop's own keypoints (its tracker's boxes, not the labels') on the labelled frames.

    A frame where the loop found no pose counts as missed on every labelled joint.
    """
    from gaitpose.eval.metrics import pck

    kp = np.stack([loop["keypoints"][r.frame_index] if r.frame_index < len(loop["keypoints"])
                   and loop["accepted"][r.frame_index] else np.full((21, 2), -1e6, np.float32) for r in records])
    kp = np.where(np.isfinite(kp), kp, -1e6)
    return {"PCK@0.1": pck(kp, records, 0.1), "PCK@0.1_feet": pck(kp, records, 0.1, indices=FOOT_INDICES),
            "PCK@0.05_feet": pck(kp, records, 0.05, indices=FOOT_INDICES), "records": len(records)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", required=True, help="teacher labels of the shared videos (gaitpose-data label)")
    ap.add_argument("--videos", default=str(REPO.parent / "shared" / "data" / "videos"))
    ap.add_argument("--general", default=str(GENERAL))
    ap.add_argument("--student", default=str(STUDENT))
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()

    from gaitpose.infer.blazepose import load_pose_estimator
    from gaitpose.labels import load_records

    records = load_records(args.labels)
    general = load_pose_estimator(args.general, threads=1)
    student = load_pose_estimator(args.student, threads=1)
    result: dict[str, Any] = {"machine": f"{os.cpu_count()} CPUs, shared with other jobs while measured"}

    # Parity with MediaPipe's own graph on the same ROIs, tracked through each shared video.
    try:
        ref = MediaPipeRoiReference()
    except ImportError:
        ref = None
    if ref is not None:
        par: dict[str, Any] = {}
        for rec in sorted({r.recording for r in records}):
            first = next(r for r in records if r.recording == rec)
            video = Path(args.videos) / f"{rec}.mp4"
            if not video.exists():
                continue
            frames = read_frames(video)[first.frame_index:]
            par[rec] = parity_track(frames, first.bbox, general, ref)
        ref.close()
        result["parity_vs_mediapipe"] = par

    result["accuracy"] = {"general": accuracy(general, records), "student": accuracy(student, records)}

    from gaitpose.eval.evaluate import read_rgb

    r0 = next(r for r in records if r.recording.startswith("sports2d"))
    img = read_rgb(r0.image_path)
    result["latency_1_thread"] = {"general": crop_latency_ms(general, img, r0.bbox),
                                  "student": crop_latency_ms(student, img, r0.bbox)}
    loops: dict[str, Any] = {}
    for video in sorted(Path(args.videos).glob("*.mp4")):
        row: dict[str, Any] = {"decode_only_ms": None, "mediapipe_fullframe_ms": None}
        try:
            from benchmarks.teacher_vs_analyze import time_decode, time_teacher_fullframe

            d = time_decode(video)
            row["decode_only_ms"] = 1000 * d.seconds / max(1, d.frames)
            m = time_teacher_fullframe(video)
            row["mediapipe_fullframe_ms"] = 1000 * m.seconds / max(1, m.frames)
        except ImportError:
            pass
        recs = [r for r in records if r.recording == video.stem]
        for name, model in (("general", args.general), ("student", args.student)):
            loop = loop_ms_per_frame(video, model)
            row[f"analyze_loop_{name}_ms"] = loop["ms_per_frame"]
            if recs:
                row[f"analyze_loop_{name}_accuracy"] = loop_accuracy(loop, recs)
        loops[video.stem] = row
    result["loop_ms_per_frame"] = loops
    print(format_table(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, default=_jsonable) + "\n")


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return None  # per-frame arrays are not part of the figures
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)


def format_table(result: dict[str, Any]) -> str:
    """The figures as a Markdown table (general vs student) plus parity and MediaPipe lines."""
    g, s = result["accuracy"]["general"], result["accuracy"]["student"]
    rows = [("PCK@0.1", "PCK@0.1"), ("feet PCK@0.1", "PCK@0.1_feet"), ("PCK@0.05", "PCK@0.05"),
            ("feet PCK@0.05", "PCK@0.05_feet")]
    lines = ["| figure | general (BlazePose ONNX) | student |", "|---|---|---|"]
    for name, key in rows:
        lines.append(f"| {name} | {g[key]:.3f} | {s[key]:.3f} |")
    for rec in g["PCK@0.1_per_recording"]:
        lines.append(f"| PCK@0.1 {rec} | {g['PCK@0.1_per_recording'][rec]:.3f} | "
                     f"{s['PCK@0.1_per_recording'][rec]:.3f} |")
    if "sports2d_40_200" in g:
        for name, key in (("Sports2D 40-200 knee MAE (deg)", "knee_mae_deg"),
                          ("Sports2D 40-200 ankle MAE (deg)", "ankle_mae_deg"),
                          ("Sports2D 40-200 hip MAE (deg)", "hip_mae_deg"),
                          ("Sports2D 40-200 implausible share", "implausible_share")):
            lines.append(f"| {name} | {g['sports2d_40_200'][key]:.3f} | {s['sports2d_40_200'][key]:.3f} |")
    lat = result["latency_1_thread"]
    lines.append(f"| per-crop latency, 1 ORT thread, median ms | {lat['general']['median_ms']:.2f} | "
                 f"{lat['student']['median_ms']:.2f} |")
    lines.append(f"| per-crop latency, 1 ORT thread, min ms | {lat['general']['min_ms']:.2f} | "
                 f"{lat['student']['min_ms']:.2f} |")
    out = "\n".join(lines)
    if result.get("parity_vs_mediapipe"):
        out += ("\n\nParity with MediaPipe's own PoseLandmarkByRoiCpu on the same ROIs, tracked through each video"
                " (px over 21 keypoints):\n| video | frames | mean | median | p99 | max |\n|---|---|---|---|---|---|")
        for rec, p in result["parity_vs_mediapipe"].items():
            if p["frames"]:
                out += (f"\n| {rec} | {p['frames']} | {p['mean_px']:.3f} | {p['median_px']:.3f} | {p['p99_px']:.2f} | "
                        f"{p['max_px']:.1f} |")
    if result.get("loop_ms_per_frame"):
        out += ("\n\n| video | decode only | MediaPipe full-frame loop | analyze loop, general | analyze loop, student"
                " |"
                "\n|---|---|---|---|---|")

        def ms(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.1f} ms"

        for k, v in result["loop_ms_per_frame"].items():
            out += (f"\n| {k} | {ms(v['decode_only_ms'])} | {ms(v['mediapipe_fullframe_ms'])} | "
                    f"{ms(v['analyze_loop_general_ms'])} | {ms(v['analyze_loop_student_ms'])} |")
        out += ("\n\nAccuracy of the analyze loop itself (its tracker's boxes) against the teacher labels:"
                "\n| video | general PCK@0.1 / feet PCK@0.1 / feet PCK@0.05 | student PCK@0.1 / feet PCK@0.1 / feet "
                "PCK@0.05 |\n|---|---|---|")
        for k, v in result["loop_ms_per_frame"].items():
            if "analyze_loop_general_accuracy" not in v:
                continue
            cells = []
            for name in ("general", "student"):
                a = v[f"analyze_loop_{name}_accuracy"]
                cells.append(f"{a['PCK@0.1']:.3f} / {a['PCK@0.1_feet']:.3f} / {a['PCK@0.05_feet']:.3f}")
            out += f"\n| {k} | {cells[0]} | {cells[1]} |"
    out += f"\n\nMachine: {result['machine']}."
    return out


if __name__ == "__main__":
    main()
