"""``gaitpose bench``'s headline: each target of the project, measured, with pass, fail or not measured.

Read from the results of :func:`benchmarks.suite.run_suite`; ``pass`` is None where a section did
not run, so a missing model never reads as a pass or a fail.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks.bench_report import fmt, section_ok

__all__ = ["headline", "target"]


def _median(res: dict[str, Any], model: str, threads: int) -> float | None:
    lat = res.get("latency")
    if not isinstance(lat, dict):
        return None
    for s in lat.get("stats", []):
        if s["model"] == model and s["threads"] == threads:
            return float(s["median_ms"])
    return None


def target(name: str, measured: float | None, target: float, what: str, higher_is_better: bool = True,
            note: str = "") -> dict[str, Any]:
    """One headline row; ``pass`` is None when ``measured`` is missing or NaN."""
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
        rows.append(target(key, _r(ratio), tgt, f"{ref} / student per-crop median latency, 1 thread",
                            note="" if ratio else "not measured"))
    s_int8 = _median(res, "student_int8", 1)
    if s_int8 and s1:
        rows.append(target("student_int8_speedup", _r(s1 / s_int8), 1.0, "student FP32 / INT8 latency, 1 thread"))
    p = res.get("pipelines", {})
    a, t = p.get("analyze"), p.get("teacher_fullframe")
    t_ok = section_ok(t) and bool(t.get("fps_total")) and bool(t.get("fps"))
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
        ratio = mine[rate] / t[rate] if (section_ok(mine) and t_ok) else None
        rows.append(target(key, _r(ratio), 5.0, what, note="" if ratio else "not measured"))
    tv = [r for r in (res.get("throughput_by_video") or {}).values() if section_ok(r) and r.get("ratio")]
    if tv:
        worst = min(tv, key=lambda r: r["ratio"])
        met = sum(r["ratio"] >= 5.0 for r in tv)
        rows.append(target(
            "analyze_vs_teacher_loop_throughput_worst_video", _r(worst["ratio"]), 5.0,
            f"per-frame loop, steady state, on each of {len(tv)} videos in one process: the lowest "
            "analyze / MediaPipe ratio",
            note=f"{met} of {len(tv)} videos at 5x or more; worst {Path(worst['video']).name} (its decode-only "
                 f"ceiling {fmt(worst['ceiling'])}x); see 'Throughput across videos'"))
    from benchmarks.whole_job import whole_job_headline

    if (wj := whole_job_headline(res.get("whole_job"))) is not None:
        rows.append(wj)
    tc = p.get("teacher_crops")
    if section_ok(a) and section_ok(tc) and tc["fps"]:
        rows.append(target("analyze_vs_teacher_crops_throughput", _r(a["fps"] / tc["fps"]), 5.0,
                            "analyze fps / labeller crop-teacher fps"))
    acc = res.get("accuracy", {})
    pck = acc.get("student_fp32", {}).get("PCK@0.1") if isinstance(acc, dict) else None
    rows.append(target("student_pck01", _r(pck), 0.90, "student FP32 PCK@0.1 vs teacher labels (held-out)",
                        note="" if pck is not None else (acc.get("note") or acc.get("error") or "not measured")))
    pckf = acc.get("student_fp32_flip", {}).get("PCK@0.1") if isinstance(acc, dict) else None
    if pckf is not None:
        rows.append(target("student_flip_pck01", _r(pckf), 0.90,
                            "student FP32 with flip test (analyze --flip-test) PCK@0.1 vs teacher labels"))
    pck8 = acc.get("student_int8", {}).get("PCK@0.1") if isinstance(acc, dict) else None
    if pck8 is not None:
        rows.append(target("student_int8_pck01", _r(pck8), 0.90, "student INT8 PCK@0.1 vs teacher labels"))
    c = res.get("cadence")
    if section_ok(c):
        d = c["cadence_diff_pct"]
        rows.append(target("cadence_diff_pct", None if d is None else _r(abs(d)), 3.0,
                            "|student - teacher| cadence, % of teacher", higher_is_better=False, note=c["note"]))
        rows.append(target("heel_strike_max_frame_diff", c["max_abs_frame_diff"], 2,
                            "max |frame diff| of matched heel strikes", higher_is_better=False))
        rows[-1]["pass"] = c["heel_strike_pass"] if c["max_abs_frame_diff"] is not None else None
    else:
        rows.append(target("cadence_diff_pct", None, 3.0, "cadence vs teacher", higher_is_better=False,
                            note=(c or {}).get("error", "not measured")))
    return rows


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(float(x), nd)
