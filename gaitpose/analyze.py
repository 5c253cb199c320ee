"""``analyze_video``: one gait video in, a folder of keypoints, events, metrics, plots, overlay and report out.

Runtime only (ONNX Runtime, numpy, cv2, PyAV, scipy, matplotlib): no torch anywhere on this path,
so it runs on an edge box and in the service's worker processes, which call exactly
:func:`analyze_video`.

Pipeline: decode colour frames -> subject tracker (box from the previous frame's keypoints, person
localiser only when needed) -> SPPE per frame -> gait analytics (``gaitpose.gait.analysis``) ->
outputs, all written inside ``fsutil.staged_dir`` so a failure never leaves a half-written folder.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError, NoPersonError
from gaitpose.fsutil import check_out_dir, file_sha256, staged_dir, write_json_atomic, write_text_atomic
from gaitpose.geometry import expand_box, keypoints_to_box
from gaitpose.infer.localizer import OnnxLocalizer
from gaitpose.infer.pose import OnnxPoseEstimator
from gaitpose.infer.tracker import SubjectTracker
from gaitpose.io.planar import ImageLike
from gaitpose.io.prefetch import prefetch
from gaitpose.registry import LOCALIZER_MODEL, MODEL_DIR_ENV, POSE_MODEL, default_model_dir  # noqa: F401
from gaitpose.registry import resolve_model as _resolve
from gaitpose.skeleton import KEYPOINTS, NUM_KEYPOINTS

log = logging.getLogger(__name__)

OUTPUT_FILES = (
    "keypoints.json", "keypoints.csv", "events.csv", "metrics.json",
    "angles.png", "angles_cycle.png", "report.html", "overlay.mp4",
)


def parse_roi(text: str | Sequence[float] | None) -> np.ndarray | None:
    """``"X,Y,W,H"`` (pixels of the first frame) -> array; None passes through."""
    if text is None:
        return None
    try:
        vals = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        raise ValueError(f"--roi must be X,Y,W,H numbers, got {text!r}") from None
    if len(vals) != 4 or vals[2] <= 0 or vals[3] <= 0:
        raise ValueError(f"--roi must be X,Y,W,H with positive W and H, got {text!r}")
    return np.asarray(vals, dtype=np.float64)



@dataclass
class PoseTrack:
    """Per-frame output of the pose pass (NaN keypoints / box where the subject was not found)."""

    keypoints: np.ndarray  # (T, 21, 2)
    scores: np.ndarray  # (T, 21), 0 where not found
    boxes: np.ndarray  # (T, 4)
    times_s: np.ndarray  # (T,)
    accepted: np.ndarray  # (T,) bool: pose confident enough to count as the subject
    frame_size: tuple[int, int] = (0, 0)
    localizer_calls: int = 0
    pose_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.times_s)


def track_video(
    frames: Any,
    estimator: OnnxPoseEstimator,
    localizer: OnnxLocalizer,
    *,
    roi: np.ndarray | None = None,
    total_frames: int = 0,
    progress: Callable[[float], None] | None = None,
    progress_span: tuple[float, float] = (0.0, 1.0),
    lookback: int = 15,
    flip_test: bool = False,
) -> PoseTrack:
    """Run tracker + SPPE over ``frames`` (ColorFrame / PlanarColorFrame-like objects with t_ms and image).

    Look-back: the localiser usually finds a patient who walks into view a few frames late (half
    of the body is still outside the frame), which would cost the first step. The last
    ``lookback`` frames without a pose are kept, and when the subject is acquired the track is
    run backwards through them from the acquired keypoints until the pose becomes weak.
    ``flip_test``: average each crop's heatmaps with its mirror image's (fewer left/right swaps,
    about twice the pose-network time).
    """
    kps: list[np.ndarray] = []
    scs: list[np.ndarray] = []
    bxs: list[np.ndarray] = []
    ts: list[float] = []
    acc: list[bool] = []
    tracker: SubjectTracker | None = None
    size = (0, 0)
    t0 = time.perf_counter()
    lo, hi = progress_span
    nan_kp = np.full((NUM_KEYPOINTS, 2), np.nan, np.float32)
    missed: deque[tuple[int, ImageLike]] = deque(maxlen=max(0, int(lookback)))
    backfilled = 0
    for f in frames:
        image = f.image  # planar frame or RGB array: cropped, never converted whole
        if tracker is None:
            size = (int(image.shape[1]), int(image.shape[0]))
            tracker = SubjectTracker(size, roi=roi)
        was_searching = tracker.searching()

        def detect(image: ImageLike = image) -> list:
            return localizer.detect(image)

        box = tracker.next_box(detect)
        if box is None and roi is not None and not tracker.started:
            box = tracker.start_from_roi()
        res = None
        if box is not None:
            res = estimator.predict(image, [box], flip_test=flip_test)[0]
            if tracker.is_weak(res.scores):
                box2 = tracker.redetect(detect)
                if box2 is not None:
                    res2 = estimator.predict(image, [box2], flip_test=flip_test)[0]
                    if float(res2.scores.mean()) > float(res.scores.mean()):
                        res = res2
        if res is None:
            kps.append(nan_kp)
            scs.append(np.zeros(NUM_KEYPOINTS, np.float32))
            bxs.append(np.full(4, np.nan, np.float32))
            acc.append(False)
            tracker.update(None, None)
        else:
            kps.append(res.keypoints.astype(np.float32))
            scs.append(res.scores.astype(np.float32))
            bxs.append(res.box.astype(np.float32))
            acc.append(not tracker.is_weak(res.scores))
            tracker.update(res.keypoints, res.scores)
        if acc[-1]:
            if was_searching and missed:
                backfilled += _look_back(missed, res, estimator, tracker, kps, scs, bxs, acc, flip_test)
            missed.clear()
        elif missed.maxlen:
            missed.append((len(acc) - 1, image))
        ts.append(float(f.t_ms) / 1000.0)
        if progress is not None and total_frames:
            progress(lo + (hi - lo) * min(1.0, len(ts) / total_frames))
    elapsed = time.perf_counter() - t0
    n = len(ts)
    return PoseTrack(
        keypoints=np.stack(kps) if n else np.zeros((0, NUM_KEYPOINTS, 2), np.float32),
        scores=np.stack(scs) if n else np.zeros((0, NUM_KEYPOINTS), np.float32),
        boxes=np.stack(bxs) if n else np.zeros((0, 4), np.float32),
        times_s=np.asarray(ts, np.float64),
        accepted=np.asarray(acc, bool),
        frame_size=size,
        localizer_calls=tracker.localizer_calls if tracker else 0,
        pose_seconds=elapsed,
        extra={"backfilled_frames": backfilled},
    )


def _look_back(
    missed: deque[tuple[int, ImageLike]],
    found: Any,
    estimator: OnnxPoseEstimator,
    tracker: SubjectTracker,
    kps: list[np.ndarray],
    scs: list[np.ndarray],
    bxs: list[np.ndarray],
    acc: list[bool],
    flip_test: bool = False,
) -> int:
    """Track backwards from a just-acquired pose through earlier frames that had none; returns frames filled."""
    filled = 0
    keypoints, scores = found.keypoints, found.scores
    for i, image in reversed(missed):
        kbox = keypoints_to_box(keypoints, scores >= tracker.kp_threshold)
        if kbox is None:
            break
        res = estimator.predict(image, [expand_box(kbox, tracker.pad)], flip_test=flip_test)[0]
        if tracker.is_weak(res.scores):
            break
        kps[i], scs[i] = res.keypoints.astype(np.float32), res.scores.astype(np.float32)
        bxs[i], acc[i] = res.box.astype(np.float32), True
        keypoints, scores = res.keypoints, res.scores
        filled += 1
    return filled


# --- depth -----------------------------------------------------------------------------------


def _depth_for_frames(rec: Any, times_s: np.ndarray, warnings: list[str]) -> tuple[list | None, dict | None]:
    """Depth frames paired to every colour frame (registered into the colour camera) and colour intrinsics."""
    from gaitpose.sync import can_register, pair_nearest, register_depth

    intr = dict(getattr(rec, "intrinsics", {}) or {})
    color_cam = intr.get("color")
    if not color_cam:
        warnings.append("depth given but the recording has no colour intrinsics; lengths are not in metres")
        return None, None
    idx, _err, report = pair_nearest(times_s * 1000.0, rec.depth_timestamps())
    need = {int(j): [] for j in idx if j >= 0}
    for i, j in enumerate(idx):
        if j >= 0:
            need[int(j)].append(i)
    out: list[np.ndarray | None] = [None] * len(times_s)
    registered = can_register(intr)
    cw, ch = int(color_cam.get("width", 0)), int(color_cam.get("height", 0))
    if not registered and rec.depth_size != (cw, ch):
        warnings.append("depth is not registered to colour and no extrinsics are known; lengths are not in metres")
        return None, None
    for d in rec.depth_frames():
        if d.index not in need:
            continue
        depth = d.depth
        if registered and (depth.shape[1], depth.shape[0]) == (intr["depth"]["width"], intr["depth"]["height"]):
            e = intr["depth_to_color"]
            depth = register_depth(depth, intr["depth"], color_cam, e.get("rotation"), e.get("translation_m"))
        for i in need[d.index]:
            out[i] = depth
    if report.dropped:
        warnings.append(f"{report.dropped} of {report.n_color} colour frames had no depth frame within "
                        f"{report.tolerance_ms:.0f} ms")
    cam = {k: float(color_cam[k]) for k in ("fx", "fy", "cx", "cy")}
    return out, cam


# --- writers ---------------------------------------------------------------------------------


def _f(v: float, nd: int = 3) -> float | None:
    return None if not np.isfinite(v) else round(float(v), nd)


def write_keypoints_json(path: Path, track: PoseTrack) -> None:
    """COCO results style: one entry per frame where the subject was found."""
    out = []
    for t in range(track.n_frames):
        if not np.isfinite(track.boxes[t]).all():
            continue
        kp = np.concatenate([track.keypoints[t], track.scores[t][:, None]], axis=1)
        out.append({
            "image_id": t,
            "category_id": 1,
            "keypoints": [round(float(v), 2) for v in kp.reshape(-1)],
            "score": round(float(track.scores[t].mean()), 4),
            "time_s": round(float(track.times_s[t]), 4),
            "box": [round(float(v), 1) for v in track.boxes[t]],
        })
    write_json_atomic(path, out)


def write_keypoints_csv(path: Path, track: PoseTrack) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["frame", "time_s", *[f"{n}_{c}" for n in KEYPOINTS for c in ("x", "y", "score")]])
    for t in range(track.n_frames):
        row: list[Any] = [t, f"{track.times_s[t]:.4f}"]
        for k in range(NUM_KEYPOINTS):
            x, y = track.keypoints[t, k]
            if np.isfinite(x) and np.isfinite(y):
                row += [f"{x:.2f}", f"{y:.2f}", f"{track.scores[t, k]:.3f}"]
            else:
                row += ["", "", ""]
        w.writerow(row)
    write_text_atomic(path, buf.getvalue())


def write_events_csv(path: Path, events: Sequence[Any]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["foot", "event", "frame", "time_s"])
    for e in events:
        w.writerow([e.foot, e.event, int(e.frame), f"{float(e.time_s):.4f}"])
    write_text_atomic(path, buf.getvalue())


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# --- the job ---------------------------------------------------------------------------------


def _warm_imports() -> None:
    """Import the gait and plotting stacks (scipy, matplotlib) ahead of their first use."""
    try:
        import gaitpose.gait.analysis  # noqa: F401
        from gaitpose.report.plots import warm_up

        warm_up()
    except Exception:  # an import error will surface, with its traceback, where the module is used
        log.debug("warm-up import failed", exc_info=True)


def default_decode_threads() -> int | None:
    """Decoder threads for the frame loop: one on a machine with two cores or fewer, else FFmpeg's choice.

    Why one: on two cores the decoder owns one core and the models the other. With two decoder
    threads FFmpeg fights the models for the second core: measured on the five shared videos, the
    frame loop got 2-20 % faster on two of them and 2-26 % slower on the others.
    """
    return 1 if (os.cpu_count() or 1) <= 2 else None


def analyze_video(
    video: Path,
    out_dir: Path,
    *,
    depth: Path | None = None,
    model: Path | None = None,
    localizer: Path | None = None,
    height_cm: float | None = None,
    threads: int | None = None,
    progress: Callable[[float], None] | None = None,
    overlay: bool = True,
    roi: Sequence[float] | str | None = None,
    timestamps: Path | None = None,
    prefetch_frames: int = 4,
    decode_threads: int | None = None,
    overlay_size: int | None = 960,
    flip_test: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Analyse one gait video; returns a JSON-able summary (frames, fps, elapsed, output paths, headline metrics).

    Raises :class:`InputError` for an unreadable/corrupt video or model (no output folder left) and
    :class:`NoPersonError` when nobody is found. When a person is found but no walking is, all
    outputs are still written and ``summary["walking_found"]`` is False with warnings explaining why.
    ``depth`` (+ ``timestamps``) pair a plain video with a separately stored depth sequence
    (``gaitpose.io.open_recording``); a Kinect MKV / RealSense bag brings its own depth.
    ``decode_threads``: video decoder threads; by default one on a machine with two cores or fewer
    (the decoder then owns one core and the models the other), FFmpeg's choice otherwise.
    ``overlay_size``: long side of the overlay video in pixels (None or 0: the video's own size).
    ``flip_test``: also run the pose network on each mirrored crop and average (fewer left/right
    swaps, about twice the pose-network time).
    """
    t_start = time.perf_counter()
    video, out_dir = Path(video), Path(out_dir)
    report = progress or (lambda _p: None)
    check_out_dir(out_dir, overwrite)  # before any decoding: refuse an --out that would lose files
    roi_arr = parse_roi(roi)
    model_path = _resolve(model, POSE_MODEL, "pose", "--model")
    loc_path = _resolve(localizer, LOCALIZER_MODEL, "localizer", "--localizer")
    if height_cm is not None and not (50.0 <= float(height_cm) <= 250.0):
        raise ValueError(f"--height-cm must be between 50 and 250, got {height_cm}")
    # scipy and matplotlib take about a second to import on a small CPU; do it on a thread while
    # the frames decode (the main thread's imports below wait for it if it is not done yet).
    threading.Thread(target=_warm_imports, name="gaitpose-imports", daemon=True).start()
    from gaitpose.io import open_recording

    rec = open_recording(video, depth=depth, timestamps=timestamps)  # InputError for missing/empty/corrupt files
    # No busy-waiting threads: workers share the CPU with other jobs (see infer.pose._session).
    estimator = OnnxPoseEstimator(model_path, threads=threads, spinning=False)
    loc = OnnxLocalizer(loc_path, threads=threads, spinning=False)
    report(0.0)
    warnings: list[str] = []
    with rec:
        t_setup = time.perf_counter() - t_start
        # Decoding runs a few frames ahead on its own thread, overlapping with inference.
        if decode_threads is None:
            decode_threads = default_decode_threads()
        frames = prefetch(rec.color_images(decode_threads), depth=prefetch_frames)
        track = track_video(frames, estimator, loc, roi=roi_arr,
                            total_frames=rec.num_frames, progress=report, progress_span=(0.0, 0.8),
                            flip_test=flip_test)
        if track.n_frames == 0:
            raise InputError(video, "no frames could be decoded")
        if not track.accepted.any():
            raise NoPersonError(video, f"no person found in {track.n_frames} frames")
        fps = float(rec.fps) if rec.fps else (1.0 / float(np.median(np.diff(track.times_s))))
        depth_frames, intrinsics = (None, None)
        if rec.has_depth:
            depth_frames, intrinsics = _depth_for_frames(rec, track.times_s, warnings)
        report(0.82)
        t_gait = time.perf_counter()
        from gaitpose.gait.analysis import analyze_gait
        kp = np.where(track.accepted[:, None, None], track.keypoints, np.nan).astype(np.float64)
        sc = np.where(track.accepted[:, None], track.scores, 0.0).astype(np.float64)
        result = analyze_gait(kp, sc, fps, depth_frames=depth_frames, intrinsics=intrinsics,
                              height_cm=height_cm)
        warnings = [*warnings, *list(result.warnings)]
        report(0.86)
        t_outputs = time.perf_counter()
        stage_s = {"setup": t_setup, "frames": track.pose_seconds, "gait": t_outputs - t_gait}
        with staged_dir(out_dir, overwrite=overwrite) as tmp:
            write_keypoints_json(tmp / "keypoints.json", track)
            write_keypoints_csv(tmp / "keypoints.csv", track)
            write_events_csv(tmp / "events.csv", result.events)
            from gaitpose.report import plot_angle_cycles, plot_angles, write_overlay, write_report

            plot_angles(result.angles, fps, result.events, tmp / "angles.png")
            plot_angle_cycles(result.cycles, tmp / "angles_cycle.png")
            report(0.9)
            overlay_frames = 0
            if overlay:
                draw_kp = np.where(np.isfinite(result.kpts), result.kpts, track.keypoints)
                # write_overlay decodes and scales on its own thread while this one draws and encodes.
                frames = (f.image for f in rec.color_images(decode_threads))
                overlay_frames = write_overlay(frames, draw_kp, track.scores, result.events, fps,
                                               tmp / "overlay.mp4", boxes=track.boxes, max_side=overlay_size,
                                               prefetch_frames=prefetch_frames)
            report(0.97)
            elapsed = time.perf_counter() - t_start
            stage_s["outputs"] = time.perf_counter() - t_outputs
            model_info = {
                "pose_model": model_path.name, "pose_model_sha256": file_sha256(model_path),
                "pose_model_version": estimator.meta.version, "pose_input_size": list(estimator.meta.input_size),
                "pose_in_channels": estimator.meta.in_channels, "pose_flip_test": bool(flip_test),
                "localizer_model": loc_path.name, "localizer_sha256": file_sha256(loc_path),
                "localizer_input_size": list(loc.meta.input_size),
            }
            processing = {
                "frames": track.n_frames, "fps": fps, "frame_size": list(track.frame_size),
                "frames_with_pose": int(track.accepted.sum()),
                "localizer_calls": track.localizer_calls,
                "backfilled_frames": int(track.extra.get("backfilled_frames", 0)),
                "localizer_calls_per_100_frames": 100.0 * track.localizer_calls / track.n_frames,
                "pose_seconds": track.pose_seconds,
                "throughput_fps": track.n_frames / max(track.pose_seconds, 1e-9),
                "threads": threads, "elapsed_s": elapsed, "depth": bool(depth_frames is not None),
                "height_cm": height_cm, "roi": None if roi_arr is None else roi_arr.tolist(),
                "overlay_frames": overlay_frames,
                "stage_seconds": {k: round(v, 3) for k, v in stage_s.items()},
            }
            metrics = _jsonable({
                **dict(result.metrics),
                "units": result.units,
                "warnings": warnings,
                "n_events": len(result.events),
                "swapped_frames": len(result.swapped_frames),
                "video": video.name,
                "model": model_info,
                "processing": processing,
            })
            write_json_atomic(tmp / "metrics.json", metrics, indent=2)
            write_report(
                tmp / "report.html", video_name=video.name,
                summary={**processing, "throughput_fps": processing["throughput_fps"]},
                metrics=metrics, events=result.events, warnings=warnings, model_info=model_info,
                angles_png=tmp / "angles.png", cycles_png=tmp / "angles_cycle.png",
                overlay_name="overlay.mp4" if overlay else None,
            )
            # mkdtemp/mkstemp create 0700/0600; results are meant to be read by other users and servers.
            for p in tmp.iterdir():
                p.chmod(0o644)
            tmp.chmod(0o755)
    report(1.0)
    files = {name: str(out_dir / name) for name in OUTPUT_FILES if (out_dir / name).exists()}
    summary = {
        "video": str(video), "out_dir": str(out_dir), "frames": track.n_frames, "fps": fps,
        "frames_with_pose": int(track.accepted.sum()), "localizer_calls": track.localizer_calls,
        "throughput_fps": processing["throughput_fps"], "elapsed_s": time.perf_counter() - t_start,
        "walking_found": bool(metrics.get("walking_found", False)), "units": result.units,
        "cadence_steps_per_min": metrics.get("cadence_steps_per_min"), "n_strides": metrics.get("n_strides"),
        "warnings": warnings, "files": files,
    }
    log.info("analysed %s: %d frames, %.1f frames/s, %d localiser calls", video.name, track.n_frames,
             summary["throughput_fps"], track.localizer_calls)
    return summary


def summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(_jsonable(summary), indent=2)


__all__ = ["OUTPUT_FILES", "PoseTrack", "analyze_video", "default_model_dir", "parse_roi", "track_video"]
