"""``gaitpose prune`` (torch and torch-pruning imported inside the command body)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from gaitpose.cli.util import cli_errors


def _parse_floats(text: str | None, option: str) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{option} must be comma-separated numbers like 0.7,0.5,0.35, got {text!r}") from None


def prune_cmd(
    model: Path = typer.Option(..., "--model", help="Trained checkpoint (RUN/best.pt)."),
    train: Path = typer.Option(..., "--train", help="Training label file (fine-tuning)."),
    val: Path | None = typer.Option(None, "--val", help="Validation label file (accuracy before/after)."),
    target_macs: float = typer.Option(0.5, "--target-macs", help="Fraction of the original MACs to keep."),
    out: Path = typer.Option(..., "--out", help="Output folder: pruned.pt, report.json, report.md."),
    importance: str = typer.Option("bn-scale", "--importance", help="bn-scale | magnitude | random."),
    sparsity_epochs: int | None = typer.Option(
        None, "--sparsity-epochs", help="Epochs of BN-scale L1 training first (default 10 for bn-scale, else 0)."),
    reg: float = typer.Option(1e-4, "--reg", help="L1 coefficient on BN scales."),
    steps: int = typer.Option(4, "--steps", help="Iterative pruning steps."),
    finetune_epochs: int = typer.Option(5, "--finetune-epochs", help="Fine-tuning epochs after each step."),
    final_epochs: int = typer.Option(
        20, "--final-epochs", help="Fine-tuning epochs after the last step (0: same as --finetune-epochs)."),
    round_to: int = typer.Option(8, "--round-to", help="Pruned widths are multiples of this."),
    max_layer_ratio: float = typer.Option(0.75, "--max-layer-ratio", help="Most of a layer removed per step."),
    scope: str = typer.Option("uniform", "--scope",
                              help="uniform (same fraction per layer) | global (one ranking across layers)."),
    scratch_epochs: int = typer.Option(0, "--scratch-epochs",
                                       help="Also train the pruned structure from a fresh start this many epochs; "
                                            "the better on val is kept (0: off)."),
    protect: str = typer.Option("", "--protect",
                                help="Comma-separated module-name prefixes never pruned, e.g. stem,laterals,refine."),
    sweep: str | None = typer.Option(None, "--sweep", help="MACs targets for a Pareto sweep, e.g. 0.7,0.5,0.35,0.25."),
    lr: float | None = typer.Option(None, "--lr", help="Fine-tuning learning rate (default: training lr / 4)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Fine-tuning batch size."),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda (default: from the checkpoint)."),
    latency_runs: int = typer.Option(200, "--latency-runs", help="Timed ONNX Runtime runs per measurement."),
    eval_limit: int | None = typer.Option(None, "--eval-limit", help="Evaluate on at most this many val instances."),
    seed: int = typer.Option(0, "--seed"),
    distill: bool = typer.Option(True, "--distill/--no-distill",
                                 help="Distil from the original (unpruned) model during every fine-tune."),
    distill_weight: float = typer.Option(
        0.5, "--distill-weight", help="Weight of the teacher term: (1-w) * label MSE + w * teacher MSE."),
    finetune_logs: bool = typer.Option(True, "--finetune-logs/--no-finetune-logs",
                                       help="Keep train_model logs/checkpoints of each fine-tune in OUT/finetune."),
) -> None:
    """Network slimming: sparsity training, iterative channel pruning to a MACs target, fine-tuning."""
    from gaitpose.fsutil import check_out_dir
    from gaitpose.prune.pipeline import run_prune
    from gaitpose.prune.slimming import PruneConfig

    with cli_errors():
        check_out_dir(out)  # a bad --out fails now, not after hours of fine-tuning
        cfg = PruneConfig(target_macs=target_macs, importance=importance, sparsity_epochs=sparsity_epochs, reg=reg,
                          steps=steps, finetune_epochs=finetune_epochs, final_epochs=final_epochs,
                          round_to=round_to,
                          max_layer_ratio=max_layer_ratio, scope=scope, scratch_epochs=scratch_epochs,
                          protect=tuple(p.strip() for p in protect.split(",") if p.strip()), seed=seed, distill=distill,
                          distill_weight=distill_weight)
        for path in (model, train, *([val] if val else [])):
            if not path.exists():
                raise FileNotFoundError(f"{path}: file does not exist")
        report = run_prune(model, train, val, out, cfg, sweep=_parse_floats(sweep, "--sweep"), lr=lr,
                           batch_size=batch_size, device=device, latency_runs=latency_runs, eval_limit=eval_limit,
                           keep_finetune_logs=finetune_logs)
        typer.echo(json.dumps({"pruned": str(out / "pruned.pt"), "summary": report["summary"]}))


def register(app: typer.Typer) -> None:
    app.command("prune")(prune_cmd)
