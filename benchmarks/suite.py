"""``gaitpose bench``: every benchmark in one run, written as bench.md, bench.json and bench.png.

Why one run: the machine is shared, so figures measured at different times are not comparable.
Here the student, the references and the teacher are measured minutes apart on the same video
and the same crops, and the report records the load average before and after.

Each section is independent: a missing piece (no shipped model, no labels, no MediaPipe) makes
its section say so, and the rest still runs. Targets are reported as measured, pass or fail.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.bench_headline import headline
from benchmarks.bench_report import write_outputs
from gaitpose.errors import InputError

log = logging.getLogger(__name__)

TARGETS = {
    "student_vs_simplebaseline_latency": 10.0,  # student per-crop latency >= 10x lower
    "student_vs_rtmpose_t_latency": 2.0,  # >= 2x lower
    "analyze_vs_teacher_throughput": 5.0,  # >= 5x the teacher's frames per second
    "student_pck01": 0.90,  # PCK@0.1 vs teacher labels on the held-out split
}


@dataclass
class BenchConfig:
    """Inputs of one benchmark run (paths relative to the working directory unless absolute)."""

    out_dir: Path
    video: Path
    models_dir: Path = Path("models")
    labels: Path | None = None
    student: Path | None = None  # overrides models_dir/student/model.onnx
    quick: bool = False
    cache_dir: Path | None = None  # exported reference nets; default out_dir/.cache
    threads: tuple[int, ...] = (1, 2)
    crops: int = 8
    reps: int = 60
    warmup: int = 10
    pipeline_frames: int | None = None  # cap on the frames the teacher pipelines see (quick mode)
    throughput_videos: tuple[Path, ...] = ()  # decode / teacher / analyze loops measured on each
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.quick:
            self.threads = (1,)
            self.reps = min(self.reps, 12)
            self.warmup = min(self.warmup, 3)
            self.crops = min(self.crops, 4)
            self.pipeline_frames = self.pipeline_frames or 60  # HOG subject selection needs ~2 s


def default_video(repo_root: Path) -> Path:
    """The large shared Sports2D clip when it is beside the checkout, else the committed test clip."""
    shared = repo_root.parent / "shared" / "data" / "videos" / "sports2d_demo.mp4"
    return shared if shared.exists() else repo_root / "tests" / "data" / "sports2d_walk.mp4"


def default_throughput_videos(video: Path) -> tuple[Path, ...]:
    """``video`` and every other video beside it, e.g. all of ``../shared/data/videos``.

    Why several: analyze's loop is bound by decoding on two cores, and decoding costs differ by
    codec and bit rate far more than the pose model does, so one clip says little about another.
    """
    from gaitpose.io import VIDEO_SUFFIXES

    others = sorted(p for p in video.parent.glob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p != video)
    return (video, *others)


def find_models(models_dir: Path, student: Path | None) -> dict[str, Path | None]:
    """Shipped (or given) student FP32/INT8 and localizer paths; None where absent."""
    fp32 = student if student is not None else models_dir / "student" / "model.onnx"
    if student is not None and not student.exists():
        raise InputError(student, "student model file does not exist")
    int8 = fp32.with_name(fp32.stem + ".int8.onnx")
    loc = models_dir / "localizer" / "model.onnx"
    return {
        "student_fp32": fp32 if fp32.exists() else None,
        "student_int8": int8 if int8.exists() else None,
        "localizer": loc if loc.exists() else None,
    }


def _section(results: dict[str, Any], name: str, fn: Callable[[], Any]) -> Any:
    """Run one section; a failure is recorded in the section (one line + log) and the suite goes on."""
    t0 = time.perf_counter()
    try:
        value = fn()
    except InputError as exc:
        log.warning("bench section %s: %s", name, exc)
        results[name] = {"error": str(exc)}
        return None
    except Exception as exc:  # a benchmark section must not take the others down
        log.error("bench section %s failed:\n%s", name, traceback.format_exc())
        results[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        return None
    finally:
        log.info("bench section %s took %.1f s", name, time.perf_counter() - t0)
    results[name] = value
    return value


def _machine() -> dict[str, Any]:
    import onnxruntime as ort

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_suite(cfg: BenchConfig) -> dict[str, Any]:
    """Run every section and write bench.md / bench.json / bench.png into ``cfg.out_dir``."""
    from benchmarks import cadence_vs_teacher as cad
    from benchmarks import latency as lat
    from benchmarks import reference_nets as refs
    from benchmarks import teacher_vs_analyze as tva
    from gaitpose.io.video import VideoRecording

    if not cfg.video.exists():
        raise InputError(cfg.video, "video file does not exist")
    if cfg.labels is not None and not cfg.labels.exists():
        raise InputError(cfg.labels, "label file does not exist")
    for v in cfg.throughput_videos:
        if not Path(v).exists():
            raise InputError(v, "video file does not exist")
    rec = VideoRecording(cfg.video, decode_depth_track=False)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else out / ".cache"
    work = Path(tempfile.mkdtemp(prefix="gaitpose-bench-"))
    t_start = time.perf_counter()
    res: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "quick": cfg.quick,
        "video": {"path": str(cfg.video), "frames": rec.num_frames, "fps": rec.fps, "size": list(rec.size)},
        "machine": _machine(),
        "loadavg_start": _loadavg(),
    }
    models = find_models(cfg.models_dir, cfg.student)
    res["shipped"] = {k: (str(v) if v else None) for k, v in models.items()}
    segment = cad.default_segment(cfg.video, rec.num_frames)
    if cfg.pipeline_frames:
        segment = (segment[0], min(segment[1], segment[0] + cfg.pipeline_frames))
    res["segment"] = list(segment)
    try:
        # -- static cost of every model --------------------------------------------------
        ref_keys = ["rtmpose_t"] if cfg.quick else list(refs.REFERENCE_NETS)
        ref_models = _section(res, "references", lambda: [refs.export_reference(k, cache).to_dict()
                                                          for k in ref_keys]) or []
        student_cost = _section(res, "student_cost", lambda: _student_cost(models))
        # -- per-crop latency, models interleaved -----------------------------------------
        onnx_models: dict[str, str] = {}
        for k in ("student_fp32", "student_int8"):
            if models[k] is not None:
                onnx_models[k] = str(models[k])
        for r in ref_models:
            onnx_models[r["key"]] = r["onnx_path"]

        def latency_section() -> dict[str, Any]:
            src = _crop_source(cfg.video, cfg.crops, segment)
            stats = lat.measure_latency(onnx_models, src, cfg.threads, cfg.warmup, cfg.reps)
            return {"crops": len(src.frames), "box_source": src.box_source, "reps": cfg.reps,
                    "warmup": cfg.warmup, "stats": [s.to_dict() for s in stats]}

        _section(res, "latency", latency_section)
        # -- pipelines: teacher vs analyze --------------------------------------------------
        pipelines: dict[str, Any] = {}
        res["pipelines"] = pipelines
        # Both pipelines run in fresh processes, so each pays its own imports and model loading.
        _section(pipelines, "teacher_fullframe", lambda: tva.time_cold(
            "teacher-fullframe", cfg.video, max_frames=cfg.pipeline_frames).to_dict())
        teacher_track: dict[str, Any] = {}

        def teacher_crops() -> dict[str, Any]:
            fps = rec.fps or 30.0
            # half-frame margins: frame i sits at i / fps, so the bounds never fall on a frame time
            timing, track = tva.run_teacher_crops(cfg.video, work, start_s=max(segment[0] - 0.5, 0) / fps,
                                                  end_s=(segment[1] - 0.5) / fps, mirror=not cfg.quick)
            teacher_track["track"] = track
            d = timing.to_dict()
            d["segment"] = list(segment)
            return d

        _section(pipelines, "teacher_crops", teacher_crops)
        student_track: dict[str, Any] = {}

        def analyze(name: str, **kw: Any) -> dict[str, Any]:
            if models["student_fp32"] is None:
                raise InputError(cfg.models_dir / "student" / "model.onnx",
                                 "no student model (pass --student or ship one in models/)")
            analyze_out = work / name
            timing = tva.time_cold("analyze", cfg.video, analyze_out, model=models["student_fp32"],
                                   localizer=models["localizer"], threads=1, **kw)
            if name == "analyze":
                student_track["track"] = tva.load_analyze_keypoints(analyze_out)
            d = timing.to_dict()
            metrics = json.loads((analyze_out / "metrics.json").read_text())
            d["analyze_metrics"] = _small({k: metrics.get(k) for k in ("cadence_steps_per_min", "n_strides",
                                                                      "walking_found", "processing")})
            return d

        # Three runs of the same job, each in a fresh process: as a user runs it (every output,
        # overlay video included); without the overlay video; and with scipy/matplotlib imported
        # before the clock, so its frame loop is the steady-state throughput of a long recording.
        _section(pipelines, "analyze", lambda: analyze("analyze"))
        if not cfg.quick:
            _section(pipelines, "analyze_overlay", lambda: analyze("analyze_overlay", overlay=True))
            _section(pipelines, "analyze_steady", lambda: analyze("analyze_steady", preimport=True))
        # -- cadence and heel strikes vs the teacher ---------------------------------------------
        def cadence() -> dict[str, Any]:
            if "track" not in student_track or "track" not in teacher_track:
                missing = [n for n, d in (("student (analyze)", student_track), ("teacher", teacher_track))
                           if "track" not in d]
                raise InputError(None, f"no keypoints from {' and '.join(missing)}")
            return cad.compare_tracks(student_track["track"], teacher_track["track"], segment,
                                      fps=rec.fps).to_dict()

        _section(res, "cadence", cadence)
        # -- the same loops on every throughput video: decode alone, teacher, analyze -------------
        if cfg.throughput_videos:
            by_video: dict[str, Any] = {}
            res["throughput_by_video"] = by_video

            def on_video(i: int, v: Path) -> dict[str, Any]:
                if models["student_fp32"] is None:
                    raise InputError(cfg.models_dir / "student" / "model.onnx", "no student model")
                return tva.throughput_on_video(v, work / f"throughput_{i}", model=models["student_fp32"],
                                               localizer=models["localizer"])

            for i, v in enumerate(cfg.throughput_videos):
                _section(by_video, Path(v).name, lambda i=i, v=v: on_video(i, Path(v)))
        # -- the whole job as a user runs it on each throughput video (benchmarks.whole_job) --------
        if cfg.throughput_videos and models["student_fp32"] is not None:
            from benchmarks.whole_job import whole_job_section

            _section(res, "whole_job", lambda: whole_job_section(
                (cfg.video, *cfg.throughput_videos), model=models["student_fp32"], localizer=models["localizer"]))
        # -- accuracy ----------------------------------------------------------------------------
        _section(res, "accuracy", lambda: _accuracy(models, cfg.labels, cfg.models_dir))
        res["loadavg_end"] = _loadavg()
        res["seconds"] = round(time.perf_counter() - t_start, 1)
        res["headline"] = headline(res, student_cost)
        write_outputs(res, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res


def _crop_source(video: Path, count: int, segment: tuple[int, int]):
    """Crops from frames of the walking segment, where the subject is in view."""
    import numpy as np

    from benchmarks import latency as lat

    idx = np.unique(np.linspace(segment[0], max(segment[1] - 1, segment[0]), num=count).round().astype(int))
    frames, _ = lat.read_frames(video, indices=idx.tolist())
    boxes, how = lat.person_boxes(frames)
    return lat.CropSource(frames, boxes, how)


def _student_cost(models: dict[str, Path | None]) -> dict[str, Any]:
    from gaitpose.eval.predictors import count_onnx_params_macs

    out: dict[str, Any] = {}
    for k in ("student_fp32", "student_int8"):
        p = models[k]
        if p is None:
            out[k] = None
            continue
        params, macs = count_onnx_params_macs(p)
        out[k] = {"onnx_path": str(p), "params": int(params), "macs": int(macs), "file_bytes": p.stat().st_size}
    if out.get("student_fp32") is None:
        out["note"] = "no student model found"
    return out


def _accuracy(models: dict[str, Path | None], labels: Path | None, models_dir: Path | None = None) -> dict[str, Any]:
    if labels is None:
        return {"note": "not measured: no held-out labels given (--labels test.json)"}
    if models["student_fp32"] is None:
        return {"note": "not measured: no student model"}
    from gaitpose.eval.evaluate import evaluate_model

    keys = ("PCK@0.05", "PCK@0.1", "PCK@0.2", "PCK@0.1_body", "PCK@0.1_feet", "PCK@0.05_feet",
            "PCK@0.1_side_agnostic", "PCK@0.1_per_recording", "AP", "AP50", "mean_px_error", "mean_px_error_feet",
            "angle_mae_deg", "angle_mae_deg_side_agnostic", "implausible_angle_share",
            "implausible_angle_share_labels", "num_samples",
            "num_keypoints_labelled")
    out: dict[str, Any] = {"labels": str(labels)}
    for k in ("student_fp32", "student_int8"):
        if models[k] is None:
            continue
        m = evaluate_model(models[k], labels, flip_test=False)
        out[k] = {key: m.get(key) for key in keys}
    # The model `gaitpose analyze` runs without --model, when it is not the student measured above.
    from gaitpose.eval.evaluate import default_pose_model

    try:
        default = default_pose_model(models_dir)
    except Exception as exc:  # a missing default is reported, not fatal
        out["default_note"] = f"default model not measured: {exc}"
    else:
        if models["student_fp32"] is None or default.resolve() != Path(models["student_fp32"]).resolve():
            m = evaluate_model(default, labels, flip_test=False)
            out["default"] = {"model": str(default), **{key: m.get(key) for key in keys}}
    # The same model with flip test (``gaitpose analyze --flip-test``): what the crop and its mirror
    # image agree on, at twice the pose-network time.
    m = evaluate_model(models["student_fp32"], labels, flip_test=True)
    out["student_fp32_flip"] = {key: m.get(key) for key in keys}
    return out


def _small(result: Any) -> Any:
    """analyze's return value without bulky arrays, for bench.json."""
    if not isinstance(result, dict):
        return None
    keep: dict[str, Any] = {}
    for k, v in result.items():
        if isinstance(v, str | int | float | bool) or v is None:
            keep[k] = v
        elif isinstance(v, dict) and len(json.dumps(v, default=str)) < 4000:
            keep[k] = json.loads(json.dumps(v, default=str))
    return keep
