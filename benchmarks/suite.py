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
import math
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

from gaitpose.errors import InputError
from gaitpose.fsutil import atomic_path, write_json_atomic, write_text_atomic

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


def _median(res: dict[str, Any], model: str, threads: int) -> float | None:
    lat = res.get("latency")
    if not isinstance(lat, dict):
        return None
    for s in lat.get("stats", []):
        if s["model"] == model and s["threads"] == threads:
            return float(s["median_ms"])
    return None


def _target(name: str, measured: float | None, target: float, what: str, higher_is_better: bool = True,
            note: str = "") -> dict[str, Any]:
    ok = None if measured is None or (isinstance(measured, float) and math.isnan(measured)) else (
        measured >= target if higher_is_better else measured <= target)
    return {"name": name, "what": what, "measured": measured, "target": target, "pass": ok, "note": note}


def headline(res: dict[str, Any], student_cost: Any) -> list[dict[str, Any]]:
    """Headline ratios against the targets; ``pass`` is None where not measured."""
    rows = []
    s1 = _median(res, "student_fp32", 1)
    for ref, key, tgt in (("simplebaseline_r50", "student_vs_simplebaseline_latency", 10.0),
                          ("rtmpose_t", "student_vs_rtmpose_t_latency", 2.0)):
        r1 = _median(res, ref, 1)
        ratio = r1 / s1 if (s1 and r1) else None
        rows.append(_target(key, _r(ratio), tgt, f"{ref} / student per-crop median latency, 1 thread",
                            note="" if ratio else "not measured"))
    s_int8 = _median(res, "student_int8", 1)
    if s_int8 and s1:
        rows.append(_target("student_int8_speedup", _r(s1 / s_int8), 1.0, "student FP32 / INT8 latency, 1 thread"))
    p = res.get("pipelines", {})
    a, t = p.get("analyze"), p.get("teacher_fullframe")
    t_ok = _ok(t) and bool(t.get("fps_total")) and bool(t.get("fps"))
    throughput_rows = (
        ("analyze_full_job_vs_teacher_throughput", "analyze_overlay", "fps_total",
         "whole job as a user runs it: analyze frames / s (setup, decode, pose, gait, plots, report, overlay "
         "video) vs MediaPipe full frame (setup, decode, pose)"),
        ("analyze_vs_teacher_throughput", "analyze", "fps_total",
         "whole job without the overlay video: analyze frames / s (setup, decode, pose, gait, plots, report) "
         "vs MediaPipe full frame (setup, decode, pose)"),
        ("analyze_vs_teacher_loop_throughput", "analyze_steady", "fps",
         "per-frame loop, steady state: analyze fps (scipy/matplotlib imported beforehand) / MediaPipe "
         "full-frame fps, decode included for both"),
    )
    for key, run, rate, what in throughput_rows:
        mine = p.get(run)
        ratio = mine[rate] / t[rate] if (_ok(mine) and t_ok) else None
        rows.append(_target(key, _r(ratio), 5.0, what, note="" if ratio else "not measured"))
    tv = [r for r in (res.get("throughput_by_video") or {}).values() if _ok(r) and r.get("ratio")]
    if tv:
        worst = min(tv, key=lambda r: r["ratio"])
        met = sum(r["ratio"] >= 5.0 for r in tv)
        rows.append(_target(
            "analyze_vs_teacher_loop_throughput_worst_video", _r(worst["ratio"]), 5.0,
            f"per-frame loop, steady state, on each of {len(tv)} videos in one process: the lowest "
            "analyze / MediaPipe ratio",
            note=f"{met} of {len(tv)} videos at 5x or more; worst {Path(worst['video']).name} (its decode-only "
                 f"ceiling {_f(worst['ceiling'])}x); see 'Throughput across videos'"))
    from benchmarks.whole_job import whole_job_headline

    if (wj := whole_job_headline(res.get("whole_job"))) is not None:
        rows.append(wj)
    tc = p.get("teacher_crops")
    if _ok(a) and _ok(tc) and tc["fps"]:
        rows.append(_target("analyze_vs_teacher_crops_throughput", _r(a["fps"] / tc["fps"]), 5.0,
                            "analyze fps / labeller crop-teacher fps"))
    acc = res.get("accuracy", {})
    pck = acc.get("student_fp32", {}).get("PCK@0.1") if isinstance(acc, dict) else None
    rows.append(_target("student_pck01", _r(pck), 0.90, "student FP32 PCK@0.1 vs teacher labels (held-out)",
                        note="" if pck is not None else (acc.get("note") or acc.get("error") or "not measured")))
    pckf = acc.get("student_fp32_flip", {}).get("PCK@0.1") if isinstance(acc, dict) else None
    if pckf is not None:
        rows.append(_target("student_flip_pck01", _r(pckf), 0.90,
                            "student FP32 with flip test (analyze --flip-test) PCK@0.1 vs teacher labels"))
    pck8 = acc.get("student_int8", {}).get("PCK@0.1") if isinstance(acc, dict) else None
    if pck8 is not None:
        rows.append(_target("student_int8_pck01", _r(pck8), 0.90, "student INT8 PCK@0.1 vs teacher labels"))
    c = res.get("cadence")
    if _ok(c):
        d = c["cadence_diff_pct"]
        rows.append(_target("cadence_diff_pct", None if d is None else _r(abs(d)), 3.0,
                            "|student - teacher| cadence, % of teacher", higher_is_better=False, note=c["note"]))
        rows.append(_target("heel_strike_max_frame_diff", c["max_abs_frame_diff"], 2,
                            "max |frame diff| of matched heel strikes", higher_is_better=False))
        rows[-1]["pass"] = c["heel_strike_pass"] if c["max_abs_frame_diff"] is not None else None
    else:
        rows.append(_target("cadence_diff_pct", None, 3.0, "cadence vs teacher", higher_is_better=False,
                            note=(c or {}).get("error", "not measured")))
    return rows


def _ok(d: Any) -> bool:
    return isinstance(d, dict) and "error" not in d


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(float(x), nd)


# ------------------------------------------------------------------------------------- output


def write_outputs(res: dict[str, Any], out: Path) -> None:
    """bench.json, bench.png and bench.md, each written atomically."""
    try:
        write_plot(res, out / "bench.png")
        res["plot"] = "bench.png"
    except Exception as exc:  # the numbers matter more than the picture
        log.error("bench plot failed: %s", exc)
        res["plot"] = None
    write_json_atomic(out / "bench.json", res, indent=2)
    write_text_atomic(out / "bench.md", render_markdown(res))


def write_plot(res: dict[str, Any], path: Path) -> None:
    """Latency (1 thread, median with p90) per model, and latency against MACs (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    cost = _costs(res)
    stats = [s for s in (res.get("latency") or {}).get("stats", []) if s["threads"] == min(
        (x["threads"] for x in res["latency"]["stats"]), default=1)] if _ok(res.get("latency")) else []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    if stats:
        names = [s["model"] for s in stats]
        med = [s["median_ms"] for s in stats]
        err = [[0] * len(stats), [s["p90_ms"] - s["median_ms"] for s in stats]]
        colours = ["tab:green" if n.startswith("student") else "tab:grey" for n in names]
        ax.barh(names, med, xerr=err, color=colours)
        ax.set_xscale("log")
        ax.set_xlim(left=min(med) * 0.5)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"per-crop latency, ms (median, bar to p90; {stats[0]['threads']} thread)")
        for i, m in enumerate(med):
            ax.text(m, i, f" {m:.2f}", va="center", fontsize=8)
    else:
        ax.text(0.5, 0.5, "latency not measured", ha="center", transform=ax.transAxes)
    ax.set_title("ONNX Runtime CPU, batch 1")
    ax = axes[1]
    pts = [(s["model"], cost[s["model"]]["macs"] / 1e9, s["median_ms"], cost[s["model"]]["params"] / 1e6)
           for s in stats if s["model"] in cost and cost[s["model"]].get("macs")]
    for name, g, ms, mp in pts:
        ax.scatter(g, ms, s=30 + 8 * mp, color="tab:green" if name.startswith("student") else "tab:grey")
        ax.annotate(f"{name} ({mp:.2f} M)", (g, ms), fontsize=8, xytext=(4, 4), textcoords="offset points")
    if pts:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.margins(x=0.6, y=0.3)  # room for the labels on log axes
    ax.set_xlabel("GMACs per crop")
    ax.set_ylabel("median latency, ms")
    ax.set_title("latency vs compute (marker size ~ params)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _costs(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cost: dict[str, dict[str, Any]] = {}
    refs = res.get("references")
    if isinstance(refs, list):
        for r in refs:
            cost[r["key"]] = r
    sc = res.get("student_cost")
    if isinstance(sc, dict):
        for k in ("student_fp32", "student_int8"):
            if isinstance(sc.get(k), dict):
                cost[k] = sc[k]
    return cost


def _f(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{nd}f}"
    return str(v)


def _pf(v: bool | None) -> str:
    return "not measured" if v is None else ("PASS" if v else "FAIL")


def _throughput_table(by_video: dict[str, Any] | None) -> list[str]:
    if not by_video:
        return []
    lines = ["", "## Throughput across videos (per-frame loops, steady state, one process)", "",
             "| video | codec | size | frames | decode alone ms | teacher ms | analyze ms | analyze / teacher "
             "| ceiling: teacher / decode | person found (teacher, analyze) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in by_video.items():
        if not isinstance(r, dict) or "decode_ms" not in r:
            lines.append(f"| {name} | - | - | - | - | - | - | - | - | not measured: {(r or {}).get('error', '')} |")
            continue
        size = f"{r['size'][0]}x{r['size'][1]}"
        an = (f"{_f(r.get('analyze_ms'))} | {_f(r.get('ratio'))} |" if "error" not in r
              else f"- | {r['error']} |")
        lines.append(f"| {name} | {r['codec']} | {size} | {r['frames']} | {_f(r['decode_ms'])} | "
                     f"{_f(r['teacher_ms'])} | {an} {_f(r['ceiling'])} | {r['teacher_found']}, "
                     f"{r.get('analyze_found', '-')} |")
    lines += ["", "Decoding alone uses the reader and decoder threads analyze uses. On two cores analyze decodes on "
              "one core while the models run on the other, so its loop cannot beat decoding alone: the ceiling "
              "column is the best analyze / teacher ratio that layout allows on this machine, at zero pose cost."]
    return lines


def render_markdown(res: dict[str, Any]) -> str:
    """The human report: headline targets first, then each section's table."""
    v = res["video"]
    m = res["machine"]
    lines = [
        "# gaitpose benchmark",
        "",
        f"- run: {res['started']}, {res.get('seconds', '?')} s{' (quick mode)' if res['quick'] else ''}",
        f"- machine: {m.get('cpu_model', m.get('processor'))}, {m.get('cpu_count')} logical CPUs, "
        f"onnxruntime {m.get('onnxruntime')}; load average at start {res.get('loadavg_start')}, "
        f"end {res.get('loadavg_end')} (shared machine: absolute ms are noisy, ratios measured side by side)",
        f"- video: `{Path(v['path']).name}` ({v['size'][0]}x{v['size'][1]}, {v['frames']} frames, {v['fps']:.1f} fps)",
        f"- student: `{res['shipped'].get('student_fp32')}`; INT8: `{res['shipped'].get('student_int8')}`; "
        f"localizer: `{res['shipped'].get('localizer')}`",
        "",
        "## Headline (targets)",
        "",
        "| check | what | measured | target | result | note |",
        "|---|---|---|---|---|---|",
    ]
    for h in res.get("headline", []):
        op = "<=" if h["name"] in ("cadence_diff_pct", "heel_strike_max_frame_diff") else ">="
        lines.append(f"| {h['name']} | {h['what']} | {_f(h['measured'], 3)} | {op} {h['target']} | "
                     f"{_pf(h['pass'])} | {h.get('note') or ''} |")
    # models
    lines += ["", "## Models (static cost at 256x192, batch 1)", ""]
    cost = _costs(res)
    if cost:
        lines += ["| model | params (M) | GMACs | ONNX size (MB) |", "|---|---|---|---|"]
        for k, c in cost.items():
            lines.append(f"| {c.get('title', k)} | {c['params'] / 1e6:.3f} | {c['macs'] / 1e9:.3f} | "
                         f"{c['file_bytes'] / 1e6:.2f} |")
    for sec in ("references", "student_cost"):
        if isinstance(res.get(sec), dict) and ("error" in res[sec] or "note" in res[sec]):
            lines.append(f"\n{sec}: {res[sec].get('error') or res[sec].get('note')}")
    lines += ["", "Reference nets are random-weight rebuilds in plain torch (architecture only; 21 keypoints),",
              "exported with opset 17. MACs count conv, deconv, linear and attention matmuls."]
    # latency
    lines += ["", "## Per-crop latency (ONNX Runtime CPU, batch 1, models interleaved)", ""]
    latd = res.get("latency")
    if _ok(latd):
        lines.append(f"{latd['reps']} timed runs per model and thread count after {latd['warmup']} warm-up runs, "
                     f"on {latd['crops']} real crops (boxes: {latd['box_source']}).")
        lines += ["", "| model | threads | median ms | p90 ms | mean ms | min ms |", "|---|---|---|---|---|---|"]
        for s in latd["stats"]:
            lines.append(f"| {s['model']} | {s['threads']} | {s['median_ms']:.2f} | {s['p90_ms']:.2f} | "
                         f"{s['mean_ms']:.2f} | {s['min_ms']:.2f} |")
    else:
        lines.append(f"not measured: {(latd or {}).get('error', 'no models')}")
    # pipelines
    lines += ["", "## Teacher vs analyze (per frame, decode included)", ""]
    pipes = res.get("pipelines", {})
    lines += ["| pipeline | frames | setup s | loop s | after s | ms / frame (loop) | frames / s (loop) | "
              "frames / s (whole job) | person found | note |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("teacher_fullframe", "teacher_crops", "analyze", "analyze_overlay", "analyze_steady"):
        p = pipes.get(name)
        if p is None and name in ("analyze_overlay", "analyze_steady"):
            continue  # not run in quick mode
        if _ok(p):
            lines.append(f"| {name} | {p['frames']} | {p.get('setup_s', 0):.2f} | {p['seconds']:.2f} | "
                         f"{p.get('post_s', 0):.2f} | {p['ms_per_frame']:.2f} | {p['fps']:.1f} | "
                         f"{p.get('fps_total', 0):.1f} | {p['detected_frames']} | {p['note']} |")
        else:
            lines.append(f"| {name} | - | - | - | - | - | - | - | - | not measured: {(p or {}).get('error', '')} |")
    tc = pipes.get("teacher_crops")
    if _ok(tc):
        e = tc["extra"]
        lines.append(f"\nteacher_crops ran on the walking segment frames {tc['segment']}: extract {e['extract_s']} s, "
                     f"label {e['label_s']} s, {e['teacher_calls']} teacher calls at "
                     f"{e['teacher_ms_per_call']} ms each.")
    lines.append("\n`analyze` is the job without the overlay video; `analyze_overlay` writes every output as "
                 "`gaitpose analyze` does by default; `analyze_steady` imports scipy/matplotlib before timing, so "
                 "its loop is the steady-state rate of a long recording (otherwise they load on a thread during "
                 "the loop). Each runs in a fresh process.")
    lines += _throughput_table(res.get("throughput_by_video"))
    from benchmarks.whole_job import whole_job_markdown

    lines += whole_job_markdown(res.get("whole_job"))
    # cadence
    lines += ["", "## Cadence and heel strikes: student vs teacher through the same gait code", ""]
    c = res.get("cadence")
    if _ok(c):
        lines += [f"walking segment: frames {c['segment'][0]}-{c['segment'][1]}", "",
                  "| | cadence (steps/min) | heel strikes |", "|---|---|---|",
                  f"| student | {_f(c['student']['cadence_spm'])} | {len(c['student']['heel_strikes'])} |",
                  f"| teacher | {_f(c['teacher']['cadence_spm'])} | {len(c['teacher']['heel_strikes'])} |",
                  "", f"cadence difference: {_f(c['cadence_diff_pct'])} % (target within 3 %: "
                  f"{_pf(c['cadence_pass'] if c['cadence_diff_pct'] is not None else None)}); "
                  f"max heel-strike difference: {_f(c['max_abs_frame_diff'])} frames (target within 2: "
                  f"{_pf(c['heel_strike_pass'] if c['max_abs_frame_diff'] is not None else None)})"]
        if c["heel_strike_diffs"]:
            lines += ["", "| foot | student frame | teacher frame | diff |", "|---|---|---|---|"]
            for d in c["heel_strike_diffs"]:
                lines.append(f"| {d['foot']} | {d['student_frame']} | {_f(d['teacher_frame'])} | {_f(d['diff'])} |")
        if c["note"]:
            lines.append(f"\nnote: {c['note']}")
    else:
        lines.append(f"not measured: {(c or {}).get('error', '')}")
    # accuracy
    lines += ["", "## Accuracy vs teacher labels (held-out split)", ""]
    acc = res.get("accuracy") or {}
    rows = [(k, acc[k]) for k in ("default", "student_fp32", "student_fp32_flip", "student_int8")
            if isinstance(acc.get(k), dict)]
    if rows:
        lines += [f"labels: `{acc['labels']}`", "",
                  "| model | PCK@0.05 | PCK@0.1 | PCK@0.2 | PCK@0.1 body | PCK@0.1 feet | PCK@0.1 side-agnostic "
                  "| PCK@0.1 per recording | AP | mean px err | people |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for k, a in rows:
            per_rec = ", ".join(f"{r} {_f(v, 3)}" for r, v in (a.get("PCK@0.1_per_recording") or {}).items())
            lines.append(f"| {k} | {_f(a.get('PCK@0.05'), 3)} | {_f(a.get('PCK@0.1'), 3)} | "
                         f"{_f(a.get('PCK@0.2'), 3)} | {_f(a.get('PCK@0.1_body'), 3)} | "
                         f"{_f(a.get('PCK@0.1_feet'), 3)} | {_f(a.get('PCK@0.1_side_agnostic'), 3)} | {per_rec} | "
                         f"{_f(a.get('AP'), 3)} | {_f(a.get('mean_px_error'))} | {a.get('num_samples')} |")
        lines += ["", "Side-agnostic PCK lets each left/right pair match either way round; the gap to PCK@0.1 "
                  "is what left/right swaps cost.", "",
                  "Gait-grade: feet (ankles, heels, big toes) PCK@0.05; sagittal angle MAE against the labels "
                  "(degrees, the gait analysis's formula); share of predicted angles outside physiological ranges "
                  "(labels' own share in brackets).", "",
                  "| model | feet PCK@0.05 | hip MAE | knee MAE | ankle MAE | all MAE | all MAE, legs either way "
                  "| implausible |",
                  "|---|---|---|---|---|---|---|---|"]
        for k, a in rows:
            mae = a.get("angle_mae_deg") or {}
            bad = (a.get("implausible_angle_share") or {}).get("all")
            bad_l = (a.get("implausible_angle_share_labels") or {}).get("all")
            lines.append(f"| {k} | {_f(a.get('PCK@0.05_feet'), 3)} | {_f(mae.get('hip'))} | {_f(mae.get('knee'))} | "
                         f"{_f(mae.get('ankle'))} | {_f(mae.get('all'))} | "
                         f"{_f((a.get('angle_mae_deg_side_agnostic') or {}).get('all'))} | "
                         f"{_f(bad, 3)} ({_f(bad_l, 3)}) |")
    else:
        lines.append(acc.get("note") or f"not measured: {acc.get('error', '')}")
    if res.get("plot"):
        lines += ["", f"![latency]({res['plot']})"]
    return "\n".join(lines) + "\n"
