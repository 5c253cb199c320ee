"""``analyze_video``: one gait video in, a folder of keypoints, events, metrics, plots and report out.

A thin orchestrator: every step lives in its own module and this one only wires them.

    video --open_recording--> frames --track_video (infer.track)--> PoseTrack
          [--check_domain (infer.domain): a specialised model outside its domain -> general model]
          --analyze_gait (gait.analysis)--> GaitResult --> AnalysisResult (result)
          --write_outputs (report.outputs)--> out_dir   [--overlay: overlay.mp4]

Runtime only (ONNX Runtime, numpy, cv2, PyAV, Pillow): no torch, SciPy or matplotlib anywhere on
this path, so it runs on an edge box and in the service's worker processes, which call exactly
:func:`analyze_video`. All files are written inside ``fsutil.staged_dir``, so a failure never
leaves a half-written folder.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError, NoPersonError
from gaitpose.fsutil import check_out_dir, staged_dir
from gaitpose.infer.track import PoseTrack, default_decode_threads, track_video
from gaitpose.options import check_height_cm, parse_roi
from gaitpose.registry import GENERAL_POSE_MODEL, LOCALIZER_MODEL, MODEL_DIR_ENV, POSE_MODEL, default_model_dir  # noqa: F401
from gaitpose.registry import resolve_model as _resolve
from gaitpose.report.stillcache import SubjectFrames
from gaitpose.result import OUTPUT_FILES, AnalysisResult, ModelInfo, Processing

log = logging.getLogger(__name__)

ProgressFn = Callable[[float], None]


def load_pose_estimator(path: Path, threads: int | None = None) -> Any:
    """The pose model for the frame loop: the one place that picks the estimator class for a file.

    No busy-waiting threads (``spinning=False``): workers share the CPU with other jobs. The kind
    embedded in the ONNX file picks the class (``blazepose``: the general model, ``sppe``: a student).
    """
    from gaitpose.infer.blazepose import load_pose_estimator as _load

    return _load(path, threads=threads, spinning=False)


def _warm_imports() -> None:
    """Import the gait and plotting stacks (numpy-only gait code, matplotlib) ahead of their first use."""
    try:
        import gaitpose.gait.analysis  # noqa: F401
        from gaitpose.report.plots import warm_up

        warm_up()
    except Exception:  # an import error will surface, with its traceback, where the module is used
        log.debug("warm-up import failed", exc_info=True)


def analyze_video(
    video: Path,
    out_dir: Path,
    *,
    depth: Path | None = None,
    model: Path | None = None,
    localizer: Path | None = None,
    height_cm: float | None = None,
    threads: int | None = None,
    progress: ProgressFn | None = None,
    overlay: bool = False,
    roi: Sequence[float] | str | None = None,
    timestamps: Path | None = None,
    prefetch_frames: int = 4,
    decode_threads: int | None = None,
    overlay_size: int | None = 960,
    flip_test: bool = False,
    overwrite: bool = False,
    fallback: bool = False,
    general_model: Path | None = None,
    reference: Any = None,
    reference_name: str = "",
    offset_s: float = 0.0,
) -> AnalysisResult:
    """Analyse one gait video into ``out_dir``; returns the typed :class:`AnalysisResult`.

    Raises :class:`InputError` for an unreadable/corrupt video or model, a bad option or an
    output folder that must not be replaced (no output folder left), and :class:`NoPersonError`
    when nobody is found. When a person is found but no walking is, all outputs are still written
    and ``result.walking_found`` is False with warnings explaining why.
    ``depth`` (+ ``timestamps``) pair a plain video with a separately stored depth sequence
    (``gaitpose.io.open_recording``); a Kinect MKV / RealSense bag brings its own depth.
    ``overlay``: also render ``overlay.mp4`` (re-decodes and encodes the video: the slowest output,
    so only on request; the web page draws the skeleton from ``keypoints.json`` itself).
    ``overlay_size``: its long side in pixels (None or 0: the video's own size).
    ``decode_threads``: decoder threads; by default one on a machine with two cores or fewer.
    ``flip_test``: also run the pose network on each mirrored crop and average (fewer left/right
    swaps, about twice the pose-network time).
    ``fallback``: when a specialised model's run is outside its domain (``gaitpose.infer.domain``),
    analyse the video again with the general model and keep only that run (a warning says so).
    ``general_model``: the model of that re-run (default: the registry's general model).
    ``reference``: a trial filmed with the video (:func:`gaitpose.analyze_files.read_reference`: its
    gait events and its model's angles; ``offset_s`` added to its clock): the comparison goes into
    ``validation.json``, ``metrics.json`` and the report, and ``result.validation``.
    """
    t_start = time.perf_counter()
    video, out_dir = Path(video), Path(out_dir)
    report = progress or (lambda _p: None)
    check_out_dir(out_dir, overwrite)  # before any decoding: refuse an --out that would lose files
    roi_arr = parse_roi(roi)
    height_cm = check_height_cm(height_cm)
    model_path = _resolve(model, POSE_MODEL, "pose", "--model")
    loc_path = _resolve(localizer, LOCALIZER_MODEL, "localizer", "--localizer")
    # matplotlib takes about half a second to import on a small CPU; do it on a thread while the
    # frames decode (the main thread's imports below wait for it if it is not done yet).
    threading.Thread(target=_warm_imports, name="gaitpose-imports", daemon=True).start()
    from gaitpose.infer.localizer import OnnxLocalizer
    from gaitpose.io import open_recording
    from gaitpose.io.prefetch import prefetch

    rec = open_recording(video, depth=depth, timestamps=timestamps)  # InputError for missing/empty/corrupt files
    estimator = load_pose_estimator(model_path, threads)
    from gaitpose.infer.domain import check_domain, domain_stats, reference_for

    domain_ref = reference_for(model_path, estimator)  # a broken meta.json fails now, before decoding
    general_path = None  # the fallback's model, found now: a missing one fails before decoding too
    if fallback and domain_ref.stats is not None:
        general_path = _resolve(general_model, GENERAL_POSE_MODEL, "general pose (for --fallback)", "--model")
    loc = OnnxLocalizer(loc_path, threads=threads, spinning=False)
    report(0.0)
    loop_share = 0.6 if overlay else 0.85
    decode_threads = default_decode_threads() if decode_threads is None else decode_threads
    with rec:
        t_setup = time.perf_counter() - t_start
        # Decoding runs a few frames ahead on its own thread, overlapping with inference.
        frames = prefetch(rec.color_images(decode_threads), depth=prefetch_frames)
        kept = SubjectFrames()  # subject crops for the report's stills: no second decode
        span = (0.0, loop_share * (0.3 if general_path is not None else 1.0))  # room for a re-run
        track = track_video(frames, estimator, loc, roi=roi_arr, total_frames=rec.num_frames, progress=report,
                            progress_span=span, flip_test=flip_test, keep_frame=kept)
        domain = check_domain(domain_stats(track, domain_ref.step_s), domain_ref, model_path.name)
        fallback_from = None
        if domain.out_of_domain and general_path is not None:  # the first run is dropped: nothing of it is written
            fallback_from, model_path = model_path.name, general_path
            estimator, kept = load_pose_estimator(model_path, threads), SubjectFrames()
            domain.fallback_to = model_path.name
            frames = prefetch(rec.color_images(decode_threads), depth=prefetch_frames)
            track = track_video(frames, estimator, loc, roi=roi_arr, total_frames=rec.num_frames, progress=report,
                                progress_span=(span[1], loop_share), flip_test=flip_test, keep_frame=kept)
        if track.n_frames == 0:
            raise InputError(video, "no frames could be decoded")
        if not track.accepted.any():
            hint = ""
            if domain.out_of_domain and fallback_from is None:  # a clinic's model that sees nobody where it is lost
                hint = (f" by the specialised model {model_path.name}, which is outside its domain here; "
                        "analyse with the general model (no --model) or use --fallback")
            raise NoPersonError(video, f"no person found in {track.n_frames} frames{hint}")
        fps = float(rec.fps) if rec.fps else (1.0 / float(np.median(np.diff(track.times_s))))
        warnings: list[str] = _domain_warnings(domain, domain_ref)
        depth_frames = intrinsics = None
        if rec.has_depth:
            from gaitpose.io.depth_pairing import depth_for_frames

            depth_frames, intrinsics = depth_for_frames(rec, track.times_s, warnings)
        t_gait = time.perf_counter()
        from gaitpose.gait.analysis import analyze_gait

        kp = np.where(track.accepted[:, None, None], track.keypoints, np.nan).astype(np.float64)
        sc = np.where(track.accepted[:, None], track.scores, 0.0).astype(np.float64)
        gait = analyze_gait(kp, sc, fps, depth_frames=depth_frames, intrinsics=intrinsics, height_cm=height_cm)
        validation = None
        if reference is not None:
            from gaitpose.gait.validation import reference_comparison

            validation = reference_comparison(gait, fps, reference.reference_events, reference.reference_angles,
                                              reference.fps, offset_s=offset_s, reference_name=reference_name)
        report(loop_share + 0.03)
        t_outputs = time.perf_counter()
        res = AnalysisResult(
            video=video, out_dir=out_dir, track=track, gait=gait,
            model=ModelInfo.of(model_path, estimator, loc_path, loc, flip_test, fallback_from),
            domain=domain.to_dict(),
            processing=Processing(
                frames=track.n_frames, fps=fps, frame_size=track.frame_size,
                frames_with_pose=int(track.accepted.sum()), localizer_calls=track.localizer_calls,
                backfilled_frames=int(track.extra.get("backfilled_frames", 0)), pose_seconds=track.pose_seconds,
                threads=threads, depth=depth_frames is not None, height_cm=height_cm,
                roi=None if roi_arr is None else roi_arr.tolist(),
                stage_seconds={"setup": t_setup, "frames": track.pose_seconds, "gait": t_outputs - t_gait},
            ),
            warnings=list(dict.fromkeys([*warnings, *gait.warnings])),  # each warning once
            validation=validation,
        )
        from gaitpose.report.outputs import write_outputs

        with staged_dir(out_dir, overwrite=overwrite) as tmp:
            write_outputs(tmp, res, started=t_start, kept=kept, overlay_size=overlay_size,
                          overlay_frames=(f.image for f in rec.color_images(decode_threads)) if overlay else None,
                          prefetch_frames=prefetch_frames, progress=lambda: report(loop_share + 0.08))
    res.files = [name for name in (*OUTPUT_FILES, "validation.json") if (out_dir / name).exists()]  # with --reference
    report(1.0)
    log.info("analysed %s: %d frames, %.1f frames/s, %d localiser calls", video.name, track.n_frames,
             res.processing.throughput_fps, track.localizer_calls)
    return res


def _domain_warnings(domain: Any, ref: Any) -> list[str]:
    """The domain check's line for the CLI, the report and the job record (none when in domain)."""
    if domain.fallback_to:
        return [domain.fallback_warning(domain.fallback_to)]
    if domain.out_of_domain:
        return [domain.warning()]
    return [f"domain check skipped: {ref.note}"] if getattr(ref, "stale", False) else []


__all__ = ["OUTPUT_FILES", "PoseTrack", "analyze_video", "default_model_dir", "load_pose_estimator", "parse_roi",
           "track_video"]
