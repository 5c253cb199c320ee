"""``gaitpose prune`` end to end: load, slim, fine-tune, save, export, measure, report.

The output folder is staged and moved into place at the end, so an interrupted run never leaves a
``pruned.pt`` without its report. Every number in the report is measured on what is shipped: the
ONNX export of each model (ONNX Runtime latency, accuracy through the serving estimator).
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any

from gaitpose.errors import InputError
from gaitpose.fsutil import staged_dir, write_json_atomic, write_text_atomic
from gaitpose.prune.slimming import FinetuneFn, PruneConfig, model_cost, run_sparsity, slim

log = logging.getLogger(__name__)


def train_finetuner(train_records: list, val_records: list, train_cfg: Any, work_dir: Path | None, *,
                    teacher: Any | None = None, distill_weight: float = 0.5) -> FinetuneFn:
    """A FinetuneFn backed by ``gaitpose.train.loop.train_model`` (logs under ``work_dir/<tag>``).

    With a ``teacher`` every fine-tune distils from it with ``distill_weight``: pseudo-labels alone
    leave the pruned net well below the original, whose heatmaps are a denser, consistent target.
    """
    import torch

    from gaitpose.train.loop import train_model

    def finetune(model: Any, epochs: int, regularizer: Any, tag: str) -> dict[str, Any]:
        out = None if work_dir is None else work_dir / tag
        result = train_model(model, train_records, val_records, train_cfg, out, regularizer=regularizer,
                             epochs=epochs, log_prefix=f"[{tag}] ", progress=False, distill_from=teacher,
                             distill_weight=distill_weight)
        # train_model may leave the net on an accelerator and in channels_last; pruning, export and
        # checkpoints want plain contiguous CPU tensors.
        model.cpu().to(memory_format=torch.contiguous_format)
        return {k: v for k, v in result.items() if k != "history"}

    return finetune


def measure_model(model: Any, meta: Any, onnx_path: Path, val_path: Path | None, *,
                  eval_limit: int | None) -> dict[str, Any]:
    """Params/MACs (torch) and val accuracy of one model via its ONNX export (latency is added later,
    for all models together, by :func:`add_latency`)."""
    from gaitpose.export.onnx_export import export_onnx
    from gaitpose.export.quantize import ACCURACY_KEYS, evaluate_onnx

    params, macs = model_cost(model)
    export_onnx(model, copy.deepcopy(meta), onnx_path)
    row: dict[str, Any] = {"params": params, "macs": macs, "onnx": onnx_path.name,
                           "onnx_kb": round(onnx_path.stat().st_size / 1024, 1)}
    if val_path is not None:
        metrics = evaluate_onnx(onnx_path, val_path, limit=eval_limit)
        row["accuracy"] = {k: metrics[k] for k in ACCURACY_KEYS if k in metrics}
    return row


def add_latency(rows: list[dict[str, Any]], onnx_dir: Path, threads: tuple[int, ...], runs: int) -> None:
    """ONNX Runtime latency of every row's model, measured interleaved so they compare fairly."""
    from gaitpose.export.latency import compare_latency

    lat = compare_latency({str(i): onnx_dir / r["onnx"] for i, r in enumerate(rows)}, threads, runs=runs)
    for i, r in enumerate(rows):
        r["latency_ms"] = lat[str(i)]


def run_prune(
    model_path: str | os.PathLike[str],
    train_path: str | os.PathLike[str],
    val_path: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    cfg: PruneConfig,
    *,
    sweep: list[float] | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    threads: tuple[int, ...] = (1, 2),
    latency_runs: int = 200,
    eval_limit: int | None = None,
    keep_finetune_logs: bool = True,
) -> dict[str, Any]:
    """Prune ``model_path`` to ``cfg.target_macs``; writes pruned.pt, report.json/.md (+ pareto.* for a sweep)."""
    from gaitpose.export.ckpt import load_student
    from gaitpose.export.onnx_export import meta_from_checkpoint
    from gaitpose.labels import load_records
    from gaitpose.nn.checkpoint import save_checkpoint
    from gaitpose.train.config import TrainConfig

    model, model_cfg, ckpt = load_student(model_path)
    if ckpt.get("pruned_state") is not None:
        log.warning("%s is already pruned; pruning further relative to its current size", model_path)
    train_records = load_records(train_path)
    if not train_records:
        raise InputError(train_path, "no usable training annotations")
    val_records = load_records(val_path) if val_path is not None else []
    raw_cfg = ckpt.get("train_cfg") if isinstance(ckpt.get("train_cfg"), dict) else {}
    try:
        train_cfg = TrainConfig.from_dict(raw_cfg) if raw_cfg else TrainConfig()
    except (TypeError, ValueError) as exc:
        raise InputError(model_path, f"checkpoint has an unusable training config ({exc})") from None
    # Training from scratch (--scratch-epochs) keeps the checkpoint's own schedule; fine-tuning a
    # trained net uses a quarter of its learning rate and a short warm-up.
    scratch_cfg = train_cfg.updated(
        input_size=tuple(model_cfg.input_size), in_channels=model_cfg.in_channels, stride=model_cfg.stride,
        batch_size=batch_size, device=device,
    )
    train_cfg = scratch_cfg.updated(lr=lr if lr is not None else scratch_cfg.lr * 0.25, warmup_epochs=0.2)
    meta = meta_from_checkpoint(model_cfg, ckpt, source_checkpoint=model_path)
    targets = sorted({round(float(t), 4) for t in (sweep or [])} | {round(cfg.target_macs, 4)}, reverse=True)
    for t in targets:
        if not 0.0 < t <= 1.0:
            raise ValueError(f"MACs targets must be in (0, 1], got {t}")

    # The teacher is the model as loaded, copied before any sparsity training or pruning touches it.
    teacher = copy.deepcopy(model).eval() if cfg.distill else None
    out_dir = Path(out_dir)
    with staged_dir(out_dir) as stage:
        work_dir = stage / "finetune" if keep_finetune_logs else None
        finetune = train_finetuner(train_records, val_records, train_cfg, work_dir, teacher=teacher,
                                   distill_weight=cfg.distill_weight)
        onnx_dir = stage / "onnx"
        onnx_dir.mkdir()
        before = measure_model(model, meta, onnx_dir / "original.onnx", Path(val_path) if val_path else None,
                               eval_limit=eval_limit)
        sparse = None
        report: dict[str, Any] = {"source": str(model_path), "train": str(train_path),
                                  "val": None if val_path is None else str(val_path),
                                  "config": cfg.to_dict(), "finetune_lr": train_cfg.lr, "before": before}
        if cfg.resolved_sparsity_epochs > 0:
            sparse = copy.deepcopy(model)
            report["sparsity"] = run_sparsity(sparse, cfg, finetune)
        results: dict[float, tuple[Any, dict[str, Any], dict[str, Any]]] = {}
        for t in targets:
            tcfg = PruneConfig(**{**cfg.to_dict(), "target_macs": t})
            pruned, history = slim(model, tcfg, finetune, sparse_model=sparse if sparse is not None else model)
            tag = f"macs{round(t * 100):03d}"
            row = measure_model(pruned, meta, onnx_dir / f"pruned_{tag}.onnx", Path(val_path) if val_path else None,
                                eval_limit=eval_limit)
            results[t] = (pruned, history, row)
        if cfg.scratch_epochs > 0:
            main = round(cfg.target_macs, 4)
            scratch_train = train_finetuner(train_records, val_records, scratch_cfg, work_dir, teacher=teacher,
                                            distill_weight=cfg.distill_weight)
            results[main] = _from_scratch(results[main], cfg.scratch_epochs, scratch_train, meta, onnx_dir,
                                          Path(val_path) if val_path else None, eval_limit)
        add_latency([before] + [results[t][2] for t in targets], onnx_dir, threads, latency_runs)
        pruned, history, after = results[round(cfg.target_macs, 4)]
        ckpt_path = save_checkpoint(
            stage / "pruned.pt", pruned, model_cfg, train_cfg=train_cfg, epoch=int(ckpt.get("epoch", 0)),
            best_metric=(after.get("accuracy") or {}).get("PCK@0.1"), data_summary=ckpt.get("data"),
            pruned=True, extra={"prune": {"source": str(model_path), "history": history}},
        )
        _verify_reload(ckpt_path, pruned)
        report.update(after=after, history=history, pruned_checkpoint="pruned.pt")
        report["summary"] = _summary(before, after)
        if sweep:
            rows = [_pareto_row(1.0, before, original=True)]
            rows += [_pareto_row(t, results[t][2]) for t in targets]
            _mark_pareto(rows)
            report["sweep"] = rows
            write_json_atomic(stage / "pareto.json", rows, indent=2)
            write_text_atomic(stage / "pareto.md", _pareto_markdown(rows, cfg.importance))
            _pareto_plot(rows, stage / "pareto.png", cfg.importance)
        write_json_atomic(stage / "report.json", report, indent=2)
        write_text_atomic(stage / "report.md", _report_markdown(report))
    log.info("pruned model written to %s", out_dir / "pruned.pt")
    return report


def _from_scratch(result: tuple[Any, dict[str, Any], dict[str, Any]], epochs: int, train: FinetuneFn, meta: Any,
                  onnx_dir: Path, val_path: Path | None, eval_limit: int | None) -> tuple[Any, dict[str, Any], dict]:
    """Re-initialise the pruned structure, train it ``epochs`` at the full learning rate, keep the better one.

    On the shipped student, fine-tuned pruned weights lost 20-40 validation points at half the MACs
    while the same structure trained from a fresh start came within 4: the pruned weights are a worse
    start than random ones once whole channels that other layers relied on are gone. Which one wins
    is decided on the validation split (the fine-tuned one when there is none) and both are reported.
    """
    pruned, history, row = result
    scratch = copy.deepcopy(pruned)
    scratch._init_weights()
    history = {**history, "scratch": {"epochs": epochs, **train(scratch, epochs, None, "scratch")}}
    srow = measure_model(scratch, meta, onnx_dir / "pruned_scratch.onnx", val_path, eval_limit=eval_limit)
    key = "PCK@0.1"
    fine = (row.get("accuracy") or {}).get(key)
    fresh = (srow.get("accuracy") or {}).get(key)
    use_scratch = fine is not None and fresh is not None and fresh > fine
    history["scratch"].update(val_pck_finetuned=fine, val_pck_scratch=fresh, kept="scratch" if use_scratch else
                              "finetuned")
    log.info("pruned structure: fine-tuned val PCK %s, from scratch %s -> keeping the %s weights", fine, fresh,
             history["scratch"]["kept"])
    return (scratch, history, srow) if use_scratch else (pruned, history, row)


def _verify_reload(path: Path, model: Any) -> None:
    """The saved checkpoint must rebuild through ``load_model`` alone and compute the same output."""
    import torch

    from gaitpose.nn.checkpoint import load_model

    again, _, _ = load_model(path)
    x = torch.randn(2, int(model.cfg.in_channels), *map(int, model.cfg.input_size))
    model.eval()
    with torch.no_grad():
        diff = float((again(x) - model(x)).abs().max())
    if diff > 1e-5:
        raise RuntimeError(f"{path}: reloaded pruned model differs from the pruned model (max |diff| {diff:.2e})")


def _summary(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "params_ratio": round(after["params"] / before["params"], 4),
        "macs_ratio": round(after["macs"] / before["macs"], 4),
        "speedup_median": {k: round(before["latency_ms"][k]["median_ms"] / after["latency_ms"][k]["median_ms"], 3)
                           for k in before["latency_ms"]},
    }
    if "accuracy" in before and "accuracy" in after:
        out["accuracy_delta"] = {k: round(after["accuracy"][k] - before["accuracy"][k], 5)
                                 for k in before["accuracy"] if k in after["accuracy"]}
    return out


def _pareto_row(target: float, m: dict[str, Any], original: bool = False) -> dict[str, Any]:
    acc = m.get("accuracy") or {}
    lat = m["latency_ms"]
    return {"target_macs": target, "original": original, "params": m["params"], "macs": m["macs"],
            "AP": acc.get("AP"), "PCK@0.1": acc.get("PCK@0.1"), "PCK@0.1_feet": acc.get("PCK@0.1_feet"),
            "latency_ms_1t": lat.get("threads=1", {}).get("median_ms"),
            "latency_ms_2t": lat.get("threads=2", {}).get("median_ms")}


def _mark_pareto(rows: list[dict[str, Any]]) -> None:
    """A row is Pareto-optimal when no other row has fewer-or-equal MACs and a higher PCK@0.1."""
    for r in rows:
        if r["PCK@0.1"] is None:
            r["pareto"] = None
            continue
        r["pareto"] = not any(o is not r and o["PCK@0.1"] is not None and o["macs"] <= r["macs"]
                              and o["PCK@0.1"] > r["PCK@0.1"] for o in rows)


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{100 * v:.1f}"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _pareto_markdown(rows: list[dict[str, Any]], importance: str) -> str:
    lines = [f"# Accuracy vs MACs ({importance} importance)", "",
             "| target MACs | MACs (M) | params (k) | AP | PCK@0.1 (%) | feet PCK@0.1 (%) | ms (1 thr) | ms (2 thr) "
             "| Pareto |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = "original" if r["original"] else f"{r['target_macs']:.2f}"
        lines.append(f"| {name} | {r['macs'] / 1e6:.1f} | {r['params'] / 1e3:.0f} | {_fmt(r['AP'])} | "
                     f"{_fmt(r['PCK@0.1'], True)} | {_fmt(r['PCK@0.1_feet'], True)} | {_fmt(r['latency_ms_1t'])} | "
                     f"{_fmt(r['latency_ms_2t'])} | {'yes' if r.get('pareto') else ''} |")
    return "\n".join(lines) + "\n"


def _pareto_plot(rows: list[dict[str, Any]], path: Path, importance: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gaitpose.fsutil import atomic_path

    pts = [r for r in rows if r["PCK@0.1"] is not None]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if pts:
        pts.sort(key=lambda r: r["macs"])
        ax.plot([r["macs"] / 1e6 for r in pts], [100 * r["PCK@0.1"] for r in pts], "o-", label="PCK@0.1")
        feet = [r for r in pts if r["PCK@0.1_feet"] is not None]
        ax.plot([r["macs"] / 1e6 for r in feet], [100 * r["PCK@0.1_feet"] for r in feet], "s--", label="feet PCK@0.1")
        ax.legend()
    ax.set_xlabel("MACs per crop (M)")
    ax.set_ylabel("PCK@0.1 on val (%)")
    ax.set_title(f"Pruning sweep ({importance})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _report_markdown(report: dict[str, Any]) -> str:
    b, a = report["before"], report["after"]
    c = report["config"]
    distill = (f"distilled from the original model, weight {c['distill_weight']:g} on its heatmaps"
               if c.get("distill") else "pseudo-labels only (no distillation)")
    lines = ["# Pruning report", "", f"Source: `{report['source']}`  ", f"Config: `{json.dumps(c)}`  ",
             f"Fine-tuning: {distill}.",
             "", "| | params (k) | MACs (M) | " + " | ".join(
                 f"{k} median / p90 (ms)" for k in b["latency_ms"]) + " | AP | PCK@0.1 (%) | feet PCK@0.1 (%) |",
             "|---|---|---|" + "---|" * len(b["latency_ms"]) + "---|---|---|"]
    for name, m in (("before", b), ("after", a)):
        acc = m.get("accuracy") or {}
        lat = " | ".join(f"{v['median_ms']:.2f} / {v['p90_ms']:.2f}" for v in m["latency_ms"].values())
        lines.append(f"| {name} | {m['params'] / 1e3:.0f} | {m['macs'] / 1e6:.1f} | {lat} | {_fmt(acc.get('AP'))} | "
                     f"{_fmt(acc.get('PCK@0.1'), True)} | {_fmt(acc.get('PCK@0.1_feet'), True)} |")
    s = report["summary"]
    lines += ["", f"MACs ratio {s['macs_ratio']:.3f}, params ratio {s['params_ratio']:.3f}, "
              f"median speed-up {s['speedup_median']}.", ""]
    if "accuracy_delta" in s:
        lines.append(f"Accuracy change (after - before, fractions): {s['accuracy_delta']}")
    lines += ["", "## Steps", "", "| step | channel ratio | MACs fraction | params (k) | reached |",
              "|---|---|---|---|---|"]
    for st in report["history"]["steps"]:
        lines.append(f"| {st['step']} | {st['ratio']} | {st['macs_fraction']} | {st['params'] / 1e3:.0f} | "
                     f"{st['reached']} |")
    if report.get("sweep"):
        lines += ["", "Sweep: see `pareto.md` / `pareto.png`."]
    lines += ["", "Latency: ONNX Runtime CPU, batch 1, after warm-up; accuracy through the serving estimator "
              "on the val split (no flip test)."]
    return "\n".join(lines) + "\n"
