"""``gaitpose bench``'s outputs: bench.json, bench.png and bench.md from one run's results.

The figures come from :func:`benchmarks.suite.run_suite`; this only lays them out (the headline
targets first, then each section's table), each file written atomically.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from gaitpose.fsutil import atomic_path, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

__all__ = ["fmt", "render_markdown", "section_ok", "write_outputs", "write_plot"]


def section_ok(d: Any) -> bool:
    """A section that ran: a dict without an ``error`` key."""
    return isinstance(d, dict) and "error" not in d


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
        (x["threads"] for x in res["latency"]["stats"]), default=1)] if section_ok(res.get("latency")) else []
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


def fmt(v: Any, nd: int = 2) -> str:
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
        an = (f"{fmt(r.get('analyze_ms'))} | {fmt(r.get('ratio'))} |" if "error" not in r
              else f"- | {r['error']} |")
        lines.append(f"| {name} | {r['codec']} | {size} | {r['frames']} | {fmt(r['decode_ms'])} | "
                     f"{fmt(r['teacher_ms'])} | {an} {fmt(r['ceiling'])} | {r['teacher_found']}, "
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
        lines.append(f"| {h['name']} | {h['what']} | {fmt(h['measured'], 3)} | {op} {h['target']} | "
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
    if section_ok(latd):
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
        if section_ok(p):
            lines.append(f"| {name} | {p['frames']} | {p.get('setup_s', 0):.2f} | {p['seconds']:.2f} | "
                         f"{p.get('post_s', 0):.2f} | {p['ms_per_frame']:.2f} | {p['fps']:.1f} | "
                         f"{p.get('fps_total', 0):.1f} | {p['detected_frames']} | {p['note']} |")
        else:
            lines.append(f"| {name} | - | - | - | - | - | - | - | - | not measured: {(p or {}).get('error', '')} |")
    tc = pipes.get("teacher_crops")
    if section_ok(tc):
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
    if section_ok(c):
        lines += [f"walking segment: frames {c['segment'][0]}-{c['segment'][1]}", "",
                  "| | cadence (steps/min) | heel strikes |", "|---|---|---|",
                  f"| student | {fmt(c['student']['cadence_spm'])} | {len(c['student']['heel_strikes'])} |",
                  f"| teacher | {fmt(c['teacher']['cadence_spm'])} | {len(c['teacher']['heel_strikes'])} |",
                  "", f"cadence difference: {fmt(c['cadence_diff_pct'])} % (target within 3 %: "
                  f"{_pf(c['cadence_pass'] if c['cadence_diff_pct'] is not None else None)}); "
                  f"max heel-strike difference: {fmt(c['max_abs_frame_diff'])} frames (target within 2: "
                  f"{_pf(c['heel_strike_pass'] if c['max_abs_frame_diff'] is not None else None)})"]
        if c["heel_strike_diffs"]:
            lines += ["", "| foot | student frame | teacher frame | diff |", "|---|---|---|---|"]
            for d in c["heel_strike_diffs"]:
                lines.append(f"| {d['foot']} | {d['student_frame']} | {fmt(d['teacher_frame'])} | {fmt(d['diff'])} |")
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
            per_rec = ", ".join(f"{r} {fmt(v, 3)}" for r, v in (a.get("PCK@0.1_per_recording") or {}).items())
            lines.append(f"| {k} | {fmt(a.get('PCK@0.05'), 3)} | {fmt(a.get('PCK@0.1'), 3)} | "
                         f"{fmt(a.get('PCK@0.2'), 3)} | {fmt(a.get('PCK@0.1_body'), 3)} | "
                         f"{fmt(a.get('PCK@0.1_feet'), 3)} | {fmt(a.get('PCK@0.1_side_agnostic'), 3)} | {per_rec} | "
                         f"{fmt(a.get('AP'), 3)} | {fmt(a.get('mean_px_error'))} | {a.get('num_samples')} |")
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
            lines.append(f"| {k} | {fmt(a.get('PCK@0.05_feet'), 3)} | {fmt(mae.get('hip'))} | {fmt(mae.get('knee'))} | "
                         f"{fmt(mae.get('ankle'))} | {fmt(mae.get('all'))} | "
                         f"{fmt((a.get('angle_mae_deg_side_agnostic') or {}).get('all'))} | "
                         f"{fmt(bad, 3)} ({fmt(bad_l, 3)}) |")
    else:
        lines.append(acc.get("note") or f"not measured: {acc.get('error', '')}")
    if res.get("plot"):
        lines += ["", f"![latency]({res['plot']})"]
    return "\n".join(lines) + "\n"
