"""Per-frame latency and throughput: the MediaPipe teacher vs ``gaitpose analyze`` on the same video.

Three pipelines, each timed end to end with decoding included, one after the other in one run
(and decoding alone, the floor under analyze's loop):

- ``teacher_fullframe``: ``mp.solutions.pose.Pose(model_complexity=1)`` in its default tracking
  mode on every decoded frame, which is how a user would run MediaPipe on a video;
- ``teacher_crops``: the crop-based teacher path the labeller uses (frames extracted, subject
  chosen by the HOG track, the teacher on a tight subject crop, plus its mirrored crop);
- ``analyze``: ``gaitpose.analyze.analyze_video`` with the overlay video switched off (the overlay
  is an optional output encode, not part of the keypoint pipeline).

The teacher-crop run also yields the teacher's keypoints for the subject, which
``benchmarks.cadence_vs_teacher`` feeds through the same gait code as the student's.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError
from gaitpose.skeleton import BLAZEPOSE33_TO_GAITPOSE, NUM_KEYPOINTS

log = logging.getLogger(__name__)


@dataclass
class PipelineTiming:
    """Wall time of one pipeline over a video.

    ``seconds`` is the per-frame loop (decode + inference on every frame): ``ms_per_frame`` and
    ``fps`` are the steady-state throughput. ``setup_s`` (imports, model load) and ``post_s``
    (for ``analyze``: gait analysis, plots, report) are one-off costs per video; ``fps_total``
    counts them too, i.e. frames over the wall time of the whole job.
    """

    name: str
    frames: int
    seconds: float
    detected_frames: int
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    setup_s: float = 0.0
    post_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.setup_s + self.seconds + self.post_s

    @property
    def fps_total(self) -> float:
        return self.frames / self.total_s if self.total_s > 0 else 0.0

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / max(self.frames, 1)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ms_per_frame"] = round(self.ms_per_frame, 3)
        d["fps"] = round(self.fps, 3)
        d["total_s"] = round(self.total_s, 3)
        d["fps_total"] = round(self.fps_total, 3)
        return d


@dataclass
class KeypointTrack:
    """Per-frame keypoints of one person in full-image pixels; frames without a detection are NaN."""

    frame_index: np.ndarray  # (T,) int, consecutive video frame indices
    keypoints: np.ndarray  # (T, 21, 2)
    scores: np.ndarray  # (T, 21), 0 where missing
    fps: float


def time_teacher_fullframe(video: str | os.PathLike[str], max_frames: int | None = None) -> PipelineTiming:
    """Decode + ``mp.solutions.pose`` on every full frame, default settings (tracking, smoothing)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    from gaitpose.io.video import VideoRecording

    rec = VideoRecording(video, decode_depth_track=False)
    n = found = 0
    t_setup = time.perf_counter()
    import mediapipe as mp

    with mp.solutions.pose.Pose(model_complexity=1) as pose:
        t0 = time.perf_counter()
        setup_s = t0 - t_setup
        for f in rec.color_frames():
            if max_frames is not None and n >= max_frames:
                break
            res = pose.process(f.rgb)
            found += res.pose_landmarks is not None
            n += 1
        seconds = time.perf_counter() - t0
    return PipelineTiming("teacher_fullframe", n, seconds, found,
                          note="mp.solutions.pose Pose(model_complexity=1), tracking mode, decode included",
                          setup_s=setup_s)


def time_decode(video: str | os.PathLike[str], decode_threads: int | None = None) -> PipelineTiming:
    """Decoding alone, through the reader and with the decoder threads that ``analyze`` uses.

    Why: analyze decodes on one core while the models run on the other, so its frame loop can be
    no faster than this. The teacher's ms per frame over this figure is the highest
    analyze-vs-teacher ratio that layout allows on this machine, whatever the pose model costs.
    """
    from gaitpose.infer.track import default_decode_threads
    from gaitpose.io.video import VideoRecording

    threads = default_decode_threads() if decode_threads is None else decode_threads
    rec = VideoRecording(video, decode_depth_track=False)
    n = 0
    t0 = time.perf_counter()
    for _frame in rec.color_images(threads):
        n += 1
    seconds = time.perf_counter() - t0
    return PipelineTiming("decode", n, seconds, n,
                          note=f"{rec.codec} decode to 4:2:0 planes, {threads or 'FFmpeg-chosen'} decoder thread(s)",
                          extra={"codec": rec.codec, "size": list(rec.size), "fps": rec.fps,
                                 "decode_threads": threads})


def throughput_on_video(
    video: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str],
    localizer: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Decoding alone, the teacher's loop and analyze's steady loop on one video, back to back.

    All three run in this process (imports and models already loaded), so the figures are the
    per-frame loops only; ``ratio`` is teacher ms / analyze ms and ``ceiling`` teacher ms / decode
    ms. A video where analyze finds nobody gets its error instead of the analyze figures.
    """
    dec = time_decode(video)
    teacher = time_teacher_fullframe(video)
    row: dict[str, Any] = {
        "video": str(video), "codec": dec.extra["codec"], "size": dec.extra["size"], "fps": dec.extra["fps"],
        "frames": dec.frames, "decode_ms": round(dec.ms_per_frame, 3), "teacher_ms": round(teacher.ms_per_frame, 3),
        "teacher_found": teacher.detected_frames,
        "ceiling": round(teacher.ms_per_frame / dec.ms_per_frame, 3) if dec.ms_per_frame > 0 else None,
    }
    try:
        timing, _ = time_analyze(video, Path(work_dir), model=model, localizer=localizer, threads=1, preimport=True)
    except InputError as exc:  # NoPersonError is one
        row["error"] = str(exc)
        return row
    row.update({"analyze_ms": round(timing.ms_per_frame, 3), "analyze_found": timing.detected_frames,
                "ratio": round(teacher.ms_per_frame / timing.ms_per_frame, 3) if timing.seconds > 0 else None})
    return row


def teacher_fullframe_keypoints(pose_result: Any, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """BlazePose landmarks -> gaitpose 21 keypoints in pixels (helper for callers of full-frame Pose)."""
    if pose_result.pose_landmarks is None:
        return np.full((NUM_KEYPOINTS, 2), np.nan, np.float32), np.zeros(NUM_KEYPOINTS, np.float32)
    lm = pose_result.pose_landmarks.landmark
    kp = np.array([[lm[i].x * width, lm[i].y * height] for i in BLAZEPOSE33_TO_GAITPOSE], np.float32)
    vis = np.array([lm[i].visibility for i in BLAZEPOSE33_TO_GAITPOSE], np.float32)
    return kp, np.clip(vis, 0.0, 1.0)


def run_teacher_crops(
    video: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    mirror: bool = True,
) -> tuple[PipelineTiming, KeypointTrack]:
    """The labeller's crop-based teacher path on a video: extract frames, choose the subject, label.

    Returns the timing (extraction + labelling, i.e. decode, JPEG round trip, HOG subject
    selection, teacher on the crop and, with ``mirror``, on the mirrored crop) and the subject's
    teacher keypoints per frame. ``mirror=True`` is what the shipped labels were made with.
    """
    from data_tools.extract import ExtractOptions, extract_recording
    from data_tools.label import LabelOptions, label_recording, load_frame_store
    from data_tools.teachers import make_teacher

    frames_dir = Path(work_dir) / "teacher_frames"
    rid = "bench"
    t0 = time.perf_counter()
    summary = extract_recording(video, frames_dir, recording_id=rid,
                                options=ExtractOptions(start_s=start_s, end_s=end_s))
    if summary.error:
        raise InputError(video, summary.error)
    t_extract = time.perf_counter() - t0
    rows = load_frame_store(frames_dir)[rid]
    teacher = make_teacher("mediapipe")
    try:
        t1 = time.perf_counter()
        part = label_recording(frames_dir, rid, rows, teacher, LabelOptions(mirror=mirror))
        t_label = time.perf_counter() - t1
    finally:
        teacher.close()
    fps = _fps_from_rows(rows)
    frame_idx = np.array([int(r["frame_index"]) for r in rows])
    kp = np.full((len(rows), NUM_KEYPOINTS, 2), np.nan, np.float32)
    sc = np.zeros((len(rows), NUM_KEYPOINTS), np.float32)
    pos = {int(f): i for i, f in enumerate(frame_idx)}
    for ann in part["annotations"]:
        i = pos[int(ann["frame_index"])]
        a = np.asarray(ann["keypoints"], np.float32).reshape(-1, 3)
        vis = a[:, 2] > 0
        kp[i] = np.where(vis[:, None], a[:, :2], np.nan)
        sc[i] = np.where(vis, np.asarray(ann.get("keypoint_scores", vis.astype(float)), np.float32), 0.0)
    stats = part["stats"]
    timing = PipelineTiming(
        "teacher_crops", len(rows), t_extract + t_label, int(stats["frames_labelled"]),
        note=("labeller path: extract (decode + JPEG write) + HOG subject track + MediaPipe on the subject crop"
              + (" and its mirror" if mirror else "")),
        extra={"extract_s": round(t_extract, 3), "label_s": round(t_label, 3),
               "teacher_calls": stats["teacher_calls"], "teacher_s": stats["teacher_seconds"],
               "teacher_ms_per_call": round(1000 * stats["teacher_seconds"] / max(stats["teacher_calls"], 1), 3)},
    )
    return timing, KeypointTrack(frame_idx, kp, sc, fps)


def _fps_from_rows(rows: list[dict[str, Any]]) -> float:
    if len(rows) < 2:
        return 30.0
    t = np.array([float(r["t_color_ms"]) for r in rows])
    f = np.array([int(r["frame_index"]) for r in rows])
    dt = np.diff(t) / np.maximum(np.diff(f), 1)
    return float(1000.0 / np.median(dt)) if np.median(dt) > 0 else 30.0


def time_analyze(
    video: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    localizer: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    overlay: bool = False,
    preimport: bool = False,
) -> tuple[PipelineTiming, Any]:
    """``analyze_video`` end to end; returns the timing and analyze's own result (``AnalysisResult``).

    ``overlay``: also encode the overlay video (the whole job a user runs). ``preimport``: import
    the gait and plotting stacks (scipy, matplotlib) before the clock starts. analyze normally
    imports them on a thread during the frame loop, which shortens the whole job but slows the
    loop while it runs; with ``preimport`` the loop time is the steady-state throughput that a
    long recording sees.
    """
    from gaitpose.analyze import _warm_imports, analyze_video
    from gaitpose.io.video import VideoRecording

    if preimport:
        _warm_imports()
    n = VideoRecording(video, decode_depth_track=False).num_frames
    kwargs: dict[str, Any] = {"overlay": overlay}
    if model is not None:
        kwargs["model"] = model
    if localizer is not None:
        kwargs["localizer"] = localizer
    if threads is not None:
        kwargs["threads"] = threads
    t0 = time.perf_counter()
    result = analyze_video(Path(video), Path(out_dir), **kwargs)
    wall = time.perf_counter() - t0
    detected = int(result.processing.frames_with_pose)
    stages = _analyze_stages(Path(out_dir))
    loop = float(stages.get("frames", wall))
    setup = float(stages.get("setup", 0.0))
    what = "all outputs incl. overlay video" if overlay else "overlay video off"
    if preimport:
        what += ", scipy/matplotlib imported before timing"
    return PipelineTiming("analyze", n, loop, detected,
                          note=f"gaitpose analyze_video, {what}, decode included",
                          extra={"threads": threads, "stage_seconds": stages, "wall_s": round(wall, 3)},
                          setup_s=setup, post_s=max(0.0, wall - loop - setup)), result


def _analyze_stages(out_dir: Path) -> dict[str, float]:
    """``processing.stage_seconds`` from analyze's metrics.json (empty if absent)."""
    try:
        return dict(json.loads((out_dir / "metrics.json").read_text())["processing"]["stage_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def load_analyze_keypoints(out_dir: str | os.PathLike[str], fps: float | None = None) -> KeypointTrack:
    """The subject's keypoints from ``analyze``'s ``keypoints.json``.

    The file is COCO-results style: one entry per frame where the subject was found, with
    ``image_id`` = frame index and ``keypoints`` = flat x, y, score triplets. Frames not listed are
    missing (NaN), so the track has one row per frame from 0 to the last listed frame.
    """
    path = Path(out_dir) / "keypoints.json"
    if not path.exists():
        raise InputError(path, "analyze wrote no keypoints.json")
    try:
        entries = json.loads(path.read_text())
        if not isinstance(entries, list):
            raise ValueError("expected a list of per-frame entries")
        n = 1 + max((int(e["image_id"]) for e in entries), default=-1)
        kp = np.full((n, NUM_KEYPOINTS, 2), np.nan, np.float32)
        sc = np.zeros((n, NUM_KEYPOINTS), np.float32)
        for e in entries:
            a = np.asarray(e["keypoints"], np.float32).reshape(NUM_KEYPOINTS, 3)
            i = int(e["image_id"])
            ok = np.isfinite(a[:, :2]).all(-1) & (a[:, 2] > 0)
            kp[i] = np.where(ok[:, None], a[:, :2], np.nan)
            sc[i] = np.where(ok, a[:, 2], 0.0)
        if fps is None:
            times = [(int(e["image_id"]), float(e["time_s"])) for e in entries if "time_s" in e]
            fps = 30.0
            if len(times) >= 2:
                (f0, t0), (f1, t1) = times[0], times[-1]
                if t1 > t0 and f1 > f0:
                    fps = (f1 - f0) / (t1 - t0)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"unexpected keypoints.json layout ({exc})") from None
    return KeypointTrack(np.arange(n), kp, sc, float(fps))


def time_cold(pipeline: str, video: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None,
              **kwargs: Any) -> PipelineTiming:
    """Run one pipeline in a fresh Python process, as a user's job would run, and time it from outside.

    In-process timings hide imports and model loading that an earlier benchmark section already paid
    for (MediaPipe's graph, scipy, matplotlib, ONNX Runtime). Here the child reports its per-frame loop
    and post-loop times, and everything else of the child's wall time -- interpreter start, imports,
    model loading -- is counted as ``setup_s``, the same way for both pipelines.
    """
    import subprocess
    import sys

    args = [sys.executable, "-m", "benchmarks.teacher_vs_analyze", pipeline, str(video)]
    if out_dir is not None:
        args.append(str(out_dir))
    for k, v in kwargs.items():
        if v is True:
            args.append(f"--{k.replace('_', '-')}")
        elif v is not None and v is not False:
            args += [f"--{k.replace('_', '-')}", str(v)]
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InputError(video, f"{pipeline} run failed: {tail[0][:300]}")
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    loop, post = float(d["seconds"]), float(d.get("post_s", 0.0))
    return PipelineTiming(d["name"], int(d["frames"]), loop, int(d["detected_frames"]),
                          note=d["note"] + ", fresh process", extra={**d.get("extra", {}), "wall_s": round(wall, 3)},
                          setup_s=max(0.0, wall - loop - post), post_s=post)


def _child_main(argv: list[str]) -> int:
    """``python -m benchmarks.teacher_vs_analyze teacher-fullframe VIDEO`` or ``analyze VIDEO OUT [...]``."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m benchmarks.teacher_vs_analyze")
    ap.add_argument("pipeline", choices=["teacher-fullframe", "analyze"])
    ap.add_argument("video")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--max-frames", type=int)
    ap.add_argument("--model")
    ap.add_argument("--localizer")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--overlay", action="store_true", help="analyze: also write the overlay video")
    ap.add_argument("--preimport", action="store_true", help="analyze: import scipy/matplotlib before timing")
    a = ap.parse_args(argv)
    if a.pipeline == "teacher-fullframe":
        timing = time_teacher_fullframe(a.video, max_frames=a.max_frames)
    else:
        if a.out is None:
            ap.error("analyze needs an output folder")
        timing, _ = time_analyze(a.video, a.out, model=a.model, localizer=a.localizer, threads=a.threads,
                                 overlay=a.overlay, preimport=a.preimport)
    print(json.dumps(timing.to_dict()))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_child_main(sys.argv[1:]))
