"""The whole job as a user runs it: ``gaitpose analyze`` vs MediaPipe on every frame, process start to exit.

Why this and not the in-process loops: a user waits for the whole process, interpreter start,
imports, model loading, the frame loop and every output file included. Both jobs run here as
separate processes, timed from outside with the same clock, alternating (MediaPipe, analyze,
MediaPipe, ...) so a burst of load from other processes hits both alike; the figure is the median
wall time of each. ``ratio`` = MediaPipe / analyze (higher is better; the target is >= 3).

- analyze: the installed ``gaitpose`` console script, ``gaitpose analyze VIDEO --out DIR --model M``
  with its defaults (no overlay video; report, plots, stills, metrics, keypoints);
- MediaPipe: ``python -m benchmarks.teacher_vs_analyze teacher-fullframe VIDEO``: decode every frame
  and run ``mp.solutions.pose.Pose(model_complexity=1)`` on it, nothing written.

``python -m benchmarks.whole_job VIDEO [VIDEO ...] --model models/student/model.onnx [--reps 3]``
prints a markdown table.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gaitpose.errors import InputError

__all__ = ["analyze_command", "whole_job_headline", "whole_job_markdown", "whole_job_on_video", "whole_job_section"]

TARGET_RATIO = 3.0


def analyze_command(video: Path, out: Path, model: Path | None, localizer: Path | None) -> list[str]:
    """``gaitpose analyze`` as a user types it (the console script beside this interpreter when installed)."""
    script = Path(sys.executable).with_name("gaitpose")
    cmd = [str(script)] if script.exists() else [sys.executable, "-c", "from gaitpose.cli import main; main()"]
    cmd += ["analyze", str(video), "--out", str(out), "--overwrite"]
    if model is not None:
        cmd += ["--model", str(model)]
    if localizer is not None:
        cmd += ["--localizer", str(localizer)]
    return cmd


def _timed(cmd: Sequence[str], what: str, video: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, all threads) of one process."""
    import resource

    env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False, env=env,
                          stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InputError(video, f"{what} run failed: {tail[0][:300]}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def whole_job_on_video(
    video: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    localizer: str | os.PathLike[str] | None = None,
    reps: int = 3,
    work_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Median wall seconds of MediaPipe's and analyze's whole job on ``video`` (``reps`` each, alternating)."""
    video = Path(video)
    if not video.is_file():
        raise InputError(video, "video file does not exist")
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="gaitpose-wholejob-"))
    mp_cmd = [sys.executable, "-m", "benchmarks.teacher_vs_analyze", "teacher-fullframe", str(video)]
    an_cmd = analyze_command(video, work / "analyze", Path(model) if model else None,
                             Path(localizer) if localizer else None)
    mp_runs: list[float] = []
    an_runs: list[float] = []
    mp_cpu: list[float] = []
    an_cpu: list[float] = []
    load = []
    try:
        for _ in range(max(1, int(reps))):
            load.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
            for cmd, what, walls, cpus in ((mp_cmd, "MediaPipe", mp_runs, mp_cpu),
                                           (an_cmd, "gaitpose analyze", an_runs, an_cpu)):
                wall, cpu = _timed(cmd, what, video)
                walls.append(wall)
                cpus.append(cpu)
    finally:
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    mp_s, an_s = statistics.median(mp_runs), statistics.median(an_runs)
    return {
        "video": str(video), "reps": len(an_runs),
        "mediapipe_s": round(mp_s, 3), "analyze_s": round(an_s, 3), "ratio": round(mp_s / an_s, 3),
        "mediapipe_runs": [round(v, 3) for v in mp_runs], "analyze_runs": [round(v, 3) for v in an_runs],
        "mediapipe_cpu_s": round(statistics.median(mp_cpu), 3), "analyze_cpu_s": round(statistics.median(an_cpu), 3),
        "loadavg_1min": [None if v is None else round(v, 2) for v in load],
        "analyze_command": " ".join(an_cmd[-8:] if len(an_cmd) > 8 else an_cmd),
    }


def whole_job_section(
    videos: Sequence[str | os.PathLike[str]],
    *,
    model: str | os.PathLike[str] | None,
    localizer: str | os.PathLike[str] | None = None,
    reps: int = 3,
) -> dict[str, Any]:
    """:func:`whole_job_on_video` on each video (errors recorded per video, not raised)."""
    rows: dict[str, Any] = {}
    seen: set[str] = set()
    for v in videos:
        key = Path(v).name
        if key in seen:
            continue
        seen.add(key)
        try:
            rows[key] = whole_job_on_video(v, model=model, localizer=localizer, reps=reps)
        except InputError as exc:
            rows[key] = {"video": str(v), "error": str(exc)}
    ok = [r["ratio"] for r in rows.values() if "ratio" in r]
    return {"videos": rows, "target_ratio": TARGET_RATIO,
            "worst_ratio": min(ok) if ok else None, "videos_meeting_target": sum(r >= TARGET_RATIO for r in ok)}


def whole_job_markdown(section: dict[str, Any] | None) -> list[str]:
    """The bench.md table of :func:`whole_job_section` (empty when not measured)."""
    if not isinstance(section, dict) or not section.get("videos"):
        return []
    lines = ["", "## Whole job as a user runs it (process start to exit)", "",
             "`gaitpose analyze VIDEO --out DIR --model M` (defaults: no overlay video) vs MediaPipe Pose on every "
             "frame, each a fresh process timed from outside, alternating; median of the runs (CPU: user + system "
             "seconds of all the process's threads, less sensitive to other load on a shared machine). "
             f"Target: MediaPipe / analyze >= {TARGET_RATIO:g}.", "",
             "| video | MediaPipe s | analyze s | MediaPipe / analyze | runs (MediaPipe; analyze) | CPU s (MediaPipe; "
             "analyze) |",
             "|---|---|---|---|---|---|"]
    for name, r in section["videos"].items():
        if "error" in r:
            lines.append(f"| {name} | - | - | - | {r['error']} | |")
            continue
        mp_runs = ", ".join(f"{v:.2f}" for v in r["mediapipe_runs"])
        runs = f"{mp_runs}; {', '.join(f'{v:.2f}' for v in r['analyze_runs'])}"
        lines.append(f"| {name} | {r['mediapipe_s']:.2f} | {r['analyze_s']:.2f} | **{r['ratio']:.2f}x** | {runs} | "
                     f"{r['mediapipe_cpu_s']:.2f}; {r['analyze_cpu_s']:.2f} |")
    return lines


def whole_job_headline(section: dict[str, Any] | None) -> dict[str, Any] | None:
    """The bench headline row (same shape as ``benchmarks.bench_headline.target``): the worst video's ratio."""
    if not isinstance(section, dict) or section.get("worst_ratio") is None:
        return None
    ok = [r for r in section["videos"].values() if "ratio" in r]
    worst = min(ok, key=lambda r: r["ratio"])
    return {"name": "analyze_whole_job_vs_mediapipe_worst_video", "measured": worst["ratio"],
            "target": TARGET_RATIO, "pass": worst["ratio"] >= TARGET_RATIO,
            "what": "whole job as a user runs it (gaitpose analyze, process start to exit, default outputs) vs "
                    "MediaPipe on every frame (its whole process), on each video: the lowest MediaPipe / analyze",
            "note": f"{section['videos_meeting_target']} of {len(ok)} videos at {TARGET_RATIO:g}x or more; worst "
                    f"{Path(worst['video']).name}; see 'Whole job as a user runs it'"}


def _main(argv: list[str]) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m benchmarks.whole_job", description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--model", type=Path, help="pose ONNX model (default: analyze's default)")
    ap.add_argument("--localizer", type=Path)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args(argv)
    sec = whole_job_section(a.videos, model=a.model, localizer=a.localizer, reps=a.reps)
    print("\n".join(whole_job_markdown(sec)))
    if a.json:
        a.json.write_text(json.dumps(sec, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
