"""``gaitpose specialise``: one command from a clinic's recordings to its own fast model.

torch, MediaPipe and onnx are imported inside the command body (see ``gaitpose.specialise``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from gaitpose.cli.util import cli_errors


def specialise_cmd(
    recordings: list[Path] = typer.Argument(..., help="The clinic's recordings (videos, Kinect MKV, RealSense .bag)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: model.onnx, meta.json, MODEL_CARD.md, "
                             "report.html (work files under work/). Re-running the same command resumes."),
    minutes: float = typer.Option(20.0, "--minutes", help="Wall-time budget of the whole run; training epochs and "
                                  "pruning steps adapt to it."),
    device: str = typer.Option("auto", "--device", help="auto (a GPU when present), cpu, cuda, cuda:N or mps."),
    subjects_csv: Path | None = typer.Option(None, "--subjects-csv", help="CSV with columns recording,subject: "
                                             "recordings of one subject stay on one side of the split."),
    roi: str | None = typer.Option(None, "--roi", help="X,Y,W,H pixels: where the subject is, for the labeller."),
    held_out: list[Path] = typer.Option([], "--held-out", help="A recording used only for evaluation "
                                        "(repeatable). Without it the split holds out recordings by subject."),
    init: Path | None = typer.Option(None, "--init", help="Starting network: a .pt checkpoint or an unpruned .onnx "
                                     "export (default: the shipped pretrained student when present)."),
    no_init: bool = typer.Option(False, "--no-init", help="Train from random weights."),
    input_size: str | None = typer.Option(
        None, "--input-size", help="HEIGHTxWIDTH (default: the starting network's, or 192x144 from scratch); "
        "with --init the network is fine-tuned at this size."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Fixed training epochs instead of the budget's."),
    prune_epochs: int | None = typer.Option(None, "--prune-epochs", min=0,
                                            help="Fixed pruning epochs (sparsity + steps + final) instead of the "
                                            "budget's."),
    target_macs: float | None = typer.Option(None, "--target-macs", help="Prune to this fraction of the MACs "
                                             "(1: no pruning; default: from the per-crop budget, else 0.5)."),
    crop_budget_ms: float | None = typer.Option(None, "--crop-budget-ms", help="Per-crop latency budget (1 thread) "
                                                "the pruning aims at (default: a fifth of --general-model's)."),
    general_model: Path | None = typer.Option(None, "--general-model", help="The general model the report compares "
                                              "against (default: the shipped default model)."),
    stride: int = typer.Option(1, "--stride", min=1, help="Extract every N-th frame."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="At most N frames per recording."),
    max_size: int | None = typer.Option(None, "--max-size", help="Downscale frames so the longest side is at most PX."),
    label_stride: int | None = typer.Option(None, "--label-stride", min=1,
                                            help="Label every N-th frame (default: planned from the budget)."),
    distill_weight: float = typer.Option(0.7, "--distill-weight", help="Weight of the starting network's heatmaps "
                                         "beside the pseudo-labels while training."),
    workers: int = typer.Option(2, "--workers", min=1, help="Recordings labelled in parallel."),
    threads: int = typer.Option(2, "--threads", min=1, help="CPU threads for torch and ONNX Runtime."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Extract, label, split, train, prune, export, quantise and evaluate a model for these recordings."""
    with cli_errors():
        from gaitpose.specialise import SpecialiseOptions, specialise
        from gaitpose.train.config import parse_input_size

        opts = SpecialiseOptions(
            recordings=list(recordings), out=out, minutes=minutes, device=device, subjects_csv=subjects_csv,
            roi=roi, held_out=list(held_out), init=init, no_init=no_init,
            input_size=parse_input_size(input_size) if input_size else None, epochs=epochs,
            prune_epochs=prune_epochs, target_macs=target_macs, crop_budget_ms=crop_budget_ms,
            general_model=general_model, stride=stride, max_frames=max_frames, max_size=max_size,
            label_stride=label_stride, distill_weight=distill_weight, workers=workers, threads=threads, seed=seed,
        )
        summary = specialise(opts)
    ev = summary["evaluation"]
    m = ev["metrics"]["specialised"]
    mae = m["angle_mae_deg"].get("all")
    typer.echo(f"held-out PCK@0.1 {m['PCK@0.1']:.3f} (feet {m['PCK@0.1_feet']:.3f}), angle MAE "
               f"{'-' if mae is None else f'{mae:.2f}'} deg; report {Path(out) / 'report.html'}; "
               f"use it with: gaitpose analyze VIDEO --model {Path(out) / 'model.onnx'}")


def register(app: typer.Typer) -> None:
    app.command("specialise")(specialise_cmd)
