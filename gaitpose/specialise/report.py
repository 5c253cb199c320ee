"""The last stage and what it writes: ``model.onnx`` beside its other precision, ``meta.json``,
``MODEL_CARD.md``, ``report.html`` and its figures."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.fsutil import file_sha256, write_bytes_atomic, write_json_atomic, write_text_atomic
from gaitpose.specialise.context import RunContext
from gaitpose.specialise.options import MAX_PRUNE_LOSS, SPEEDUP_TARGET


class ReportStage(RunContext):
    """Stage 11: ``report``."""

    def _report(self) -> dict[str, Any]:
        ev = self.results["evaluate"]
        chosen = Path(ev["chosen"])
        write_bytes_atomic(self.out / "model.onnx", chosen.read_bytes())
        other = Path(self.results["int8"]["int8"]) if chosen == Path(self.results["export"]["fp32"]) \
            else Path(self.results["export"]["fp32"])
        other_name = "model.int8.onnx" if other.name.endswith("int8.onnx") else "model.fp32.onnx"
        for stale in ("model.int8.onnx", "model.fp32.onnx"):
            if stale != other_name:
                (self.out / stale).unlink(missing_ok=True)
        write_bytes_atomic(self.out / other_name, other.read_bytes())
        figs = self.out / "figures"
        figs.mkdir(exist_ok=True)
        fig_names = _figures(ev, figs)
        curves = self.work / "train" / "curves.png"
        if curves.exists():
            shutil.copyfile(curves, figs / "training_curves.png")
            fig_names.append("training_curves.png")
        summary = self._summary(other_name)
        # the domain check's reference for model.onnx (a byte copy of the file it was measured on)
        block = dict(self.results["domain"]["reference"], model_file="model.onnx")
        summary["domain_reference"] = {"model.onnx": block}
        write_json_atomic(self.out / "meta.json", summary, indent=2)
        write_text_atomic(self.out / "MODEL_CARD.md", model_card(summary))
        write_text_atomic(self.out / "report.html", report_html(summary, fig_names))
        return {"files": ["model.onnx", other_name, "meta.json", "MODEL_CARD.md", "report.html"]}

    def _summary(self, other_name: str) -> dict[str, Any]:
        ev = self.results["evaluate"]
        opts = self.opts
        return {
            "command": "gaitpose specialise",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "files": {
                "model.onnx": {"sha256": file_sha256(self.out / "model.onnx"),
                               "bytes": (self.out / "model.onnx").stat().st_size,
                               "precision": "int8" if self.results["int8"]["recommend_int8"] else "fp32"},
                other_name: {"sha256": file_sha256(self.out / other_name),
                             "bytes": (self.out / other_name).stat().st_size},
            },
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()
                        if k not in ("recordings", "held_out", "out")},
            "recordings": {"ids": self.inputs.ids, "paths": [str(p) for p in self.inputs.paths],
                           "subjects": self.inputs.subjects,
                           "train": self.results["split"]["train_recordings"],
                           "held_out": self.results["split"]["test_recordings"]},
            "labels": self.results["label"],
            "split": self.results["split"]["counts"],
            "train": self.results["train"],
            "prune": self.results["prune"],
            "polish": self.results.get("polish", {}),
            "export": {"parity": self.results["export"]["parity"]},
            "int8": self.results["int8"],
            "evaluation": ev,
            "timings_s": {k: round(v, 1) for k, v in self.timings.items()},
            "budget_s": self.clock.budget_s,
            "resumed_stages": list(self.skipped),
            "machine": {"cpus": os.cpu_count(), "device": self.results["train"].get("device")},
        }


def _figures(ev: dict[str, Any], figs: Path) -> list[str]:
    """Bar charts of accuracy, angle error and per-crop latency, specialised vs the general default."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(ev["metrics"])
    width = 0.8 / max(len(names), 1)

    def save(fig: Any, file: str) -> str:
        fig.tight_layout()
        fig.savefig(figs / file)
        plt.close(fig)
        return file

    def grouped(file: str, keys: list[str], value: Any, ylabel: str, ylim: tuple[float, float] | None = None,
                **ticks: Any) -> str:
        """One bar per model in each group of ``keys``; ``value(metrics, key)`` is a bar's height."""
        fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
        for i, n in enumerate(names):
            ax.bar(np.arange(len(keys)) + i * width, [value(ev["metrics"][n], k) for k in keys], width, label=n)
        ax.set_xticks(np.arange(len(keys)) + width * (len(names) - 1) / 2, keys, **ticks)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        return save(fig, file)

    out = [
        grouped("accuracy.png", ["PCK@0.1", "PCK@0.1_body", "PCK@0.1_feet"],
                lambda m, k: float(m.get(k) or 0.0), "agreement with the teacher", ylim=(0, 1)),
        grouped("angles.png", ["hip", "knee", "ankle", "all"],
                lambda m, k: float(m["angle_mae_deg"].get(k) or 0.0), "angle MAE vs teacher (deg)", fontsize=8),
    ]
    if ev.get("latency_ms"):
        fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
        lat = ev["latency_ms"]
        ax.bar(list(lat), [lat[k] for k in lat], color=["tab:blue", "tab:gray"][: len(lat)])
        ax.set_ylabel("ms per crop (1 thread)")
        out.append(save(fig, "latency.png"))
    return out


def _f(v: Any, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _metrics_table(ev: dict[str, Any]) -> list[list[str]]:
    rows = [["model", "PCK@0.1", "body", "feet", "side-agnostic", "angle MAE (deg)", "ms per crop"]]
    for n, m in ev["metrics"].items():
        rows.append([n, _f(m.get("PCK@0.1")), _f(m.get("PCK@0.1_body")), _f(m.get("PCK@0.1_feet")),
                     _f(m.get("PCK@0.1_side_agnostic")), _f(m["angle_mae_deg"].get("all"), 2),
                     _f(ev.get("latency_ms", {}).get(n), 2)])
    return rows


def _worse_than_start(ev: dict[str, Any]) -> str | None:
    """A sentence when the specialised model agrees less with the teacher on the held-out recordings
    than the network it started from (the clinic should know before it uses the model)."""
    m = ev["metrics"]
    if "starting network" not in m or "specialised" not in m:
        return None
    a, b = m["specialised"].get("PCK@0.1"), m["starting network"].get("PCK@0.1")
    if a is None or b is None or a >= b - 0.01:
        return None
    return (f"on the held-out recordings the specialised model agrees less with the teacher than the network "
            f"it started from (PCK@0.1 {a:.3f} vs {b:.3f}). The training recordings do not cover what the "
            "held-out ones show (e.g. a camera view); add recordings of every view, or keep using the starting "
            "network.")


def model_card(s: dict[str, Any]) -> str:
    """MODEL_CARD.md: what the model is, what it was trained and measured on, and its limits."""
    ev, tr, pr = s["evaluation"], s["train"], s["prune"]
    par = s["export"]["parity"]
    failed = s["labels"].get("failed") or {}
    general_note = (" The general default is the teacher's own network (BlazePose), so its agreement with "
                    "the teacher's labels is high by construction; it is the reference, not a competitor."
                    if "blazepose" in str(ev.get("general") or "") else "")
    plan = tr["plan"]
    rows = _metrics_table(ev)
    table = "\n".join("| " + " | ".join(r) + " |" for r in [rows[0], ["---"] * len(rows[0]), *rows[1:]])
    lines = [
        "# Model card: clinic-specialised gaitpose student",
        "",
        f"Built by `gaitpose specialise` on {s['date']} ({s['machine']['cpus']} CPU cores, device "
        f"{s['machine']['device']}, wall-time budget {s['budget_s'] / 60:.0f} min).",
        "",
        "**Not a medical device.** The model agrees with a teacher (MediaPipe BlazePose) on this clinic's "
        "recordings; it has not been validated against motion capture or on patients.",
        "",
        "## Data",
        f"- Training recordings: {', '.join(s['recordings']['train'])}",
        f"- Held-out recordings (never trained on): {', '.join(s['recordings']['held_out'])}",
        f"- Pseudo-labels: MediaPipe BlazePose full on a crop of the one subject per recording and its mirror "
        f"image, every {s['labels']['stride']} frame(s); labelled frames per recording: "
        + ", ".join(f"{k} {v['frames_labelled']}/{v['frames']}" for k, v in s["labels"]["recordings"].items()),
        *(["- Left out (labelling failed): " + "; ".join(failed.values())] if failed else []),
        "",
        "## Training",
        f"- Start: {tr['init'] or 'random weights (no pretrained student was available)'}",
        f"- {plan['epochs']} epochs at input {plan['input_size'][0]}x{plan['input_size'][1]} on "
        f"{tr['train_samples']} labelled crops"
        + (f", distilled from the starting network (weight {tr['distill_weight']:g}) beside the pseudo-labels"
           if tr.get("distill_weight") else ""),
        "- Pruning: " + (f"to {plan['target_macs']:.2f} of the MACs (measured x{pr['summary']['macs_ratio']:.2f}), "
                         f"{pr['plan']}" if pr.get("pruned") else
                         ("skipped: the budget ran out" if pr.get("skipped_for_time")
                          else (f"tried to {plan['target_macs']:.2f} of the MACs and rejected: on the training "
                                f"recordings PCK@0.1 fell from {_f(pr.get('train_pck_before'))} to "
                                f"{_f(pr.get('train_pck_after'))} (at most {100 * MAX_PRUNE_LOSS:g} point allowed); "
                                "the unpruned network ships") if pr.get("rejected")
                          else "none: the network fits the per-crop budget")),
        *([f"- Polish: {s['polish'].get('epochs')} more epochs of the pruned network with the time left, "
           "distilled from the unpruned one" + (f" (weight {s['polish']['distill_weight']:g})"
                                                if s["polish"].get("distill_weight") is not None else "")]
          if (s.get("polish") or {}).get("polished") else []),
        "- Export: ONNX opset 17; torch/ONNX Runtime parity " + (
            f"on {par['num_crops']} real crops: max |diff| {par['max_abs_diff']:.1e}, max keypoint shift "
            f"{par['max_kp_dist_px']:.3f} px ({'ok' if par['ok'] else 'FAILED'})" if par else "not checked"),
        f"- INT8: {s['int8']['verdict']}",
        "",
        f"## Evaluation on the held-out recordings ({', '.join(ev['test_recordings'])})",
        "",
        f"Agreement with the teacher's labels (PCK@0.1 of the box size); the comparison model is "
        f"{ev['general_label']} ({ev['general'] or 'none found'}). Latency: ONNX Runtime, batch 1, 1 thread, "
        "median, both models measured in the same run on the machine above (shared machines give noisy "
        "absolute times; the ratio is measured side by side)." + general_note,
        "",
        table,
        "",
        f"Per-crop speed-up against the general default: "
        f"{_f(ev.get('speedup_vs_general'), 2)}x (target >= {SPEEDUP_TARGET:g}x).",
        "",
        *([f"**Warning:** {worse}", ""] if (worse := _worse_than_start(ev)) else []),
        "## Limits",
        "- Accuracy is agreement with the teacher's pseudo-labels on other recordings of the same room, "
        "not accuracy against ground truth, and not on new patients.",
        "- One subject per recording; people other than the subject are not labelled.",
        "- Stage timings (s): " + ", ".join(f"{k} {v}" for k, v in s["timings_s"].items()),
    ]
    return "\n".join(lines) + "\n"


def report_html(s: dict[str, Any], figures: Sequence[str]) -> str:
    """A self-contained page (figures beside it under ``figures/``) with the card's numbers."""
    import html

    ev = s["evaluation"]
    rows = _metrics_table(ev)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    imgs = "".join(f'<figure><img src="figures/{html.escape(f)}" alt="{html.escape(f)}"></figure>' for f in figures)
    speed = _f(ev.get("speedup_vs_general"), 2)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gaitpose specialise report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em}}img{{max-width:100%}}</style></head><body>
<h1>Specialised model</h1>
<p>Trained on {html.escape(', '.join(s['recordings']['train']))}; evaluated on the held-out
{html.escape(', '.join(ev['test_recordings']))} against {html.escape(ev['general_label'])}.
Per-crop speed-up: <b>{speed}x</b>. INT8: {html.escape(s['int8']['verdict'])}.</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{imgs}
<p>Stage timings (s): {html.escape(', '.join(f'{k} {v}' for k, v in s['timings_s'].items()))}.
See MODEL_CARD.md for the data, training and limits.</p>
</body></html>
"""
