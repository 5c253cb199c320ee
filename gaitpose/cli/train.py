"""``gaitpose train`` and ``gaitpose evaluate``. torch is imported only inside the command bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gaitpose.cli.util import cli_errors

if TYPE_CHECKING:
    from torch import nn

    from gaitpose.train.config import TrainConfig


def _load_split(path: Path, min_keypoints: int) -> list:
    from gaitpose.errors import InputError
    from gaitpose.labels import load_records

    try:
        records = load_records(path, min_keypoints=min_keypoints)
    except FileNotFoundError:
        raise InputError(path, "label file does not exist") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, str(exc).removeprefix(f"{path}: ")) from None
    return records


def _load_matching(path: Path, cfg: TrainConfig) -> nn.Module:
    """A checkpoint's model (``--init`` or ``--distill-from``), refused unless its input and heatmap
    grid match the run's: the weights are trained for that crop, and a teacher's heatmaps are
    compared pixel by pixel with the student's."""
    from gaitpose.nn.checkpoint import load_model

    model, mcfg, _ = load_model(path)
    if tuple(mcfg.input_size) != tuple(cfg.input_size) or mcfg.in_channels != cfg.in_channels:
        raise ValueError(
            f"{path}: checkpoint is for input {mcfg.input_size} x {mcfg.in_channels} channels; "
            f"pass --input-size/--in-channels to match"
        )
    if int(mcfg.stride) != int(cfg.stride):
        raise ValueError(f"{path}: checkpoint has heatmap stride {mcfg.stride}, this run {cfg.stride}")
    return model


def train_command(
    train: Path = typer.Option(..., "--train", help="COCO label file with the training split."),
    val: Path | None = typer.Option(
        None, "--val", help="COCO label file with the validation split. Without it the run trains a fixed "
        "schedule and best.pt is the final weights (for a last run on every non-test recording).",
    ),
    out: Path = typer.Option(..., "--out", help="Run folder: best.pt, last.pt, config.yaml, log.csv, curves.png."),
    config: Path | None = typer.Option(None, "--config", help="YAML training config (flags override it)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1),
    input_size: str | None = typer.Option(None, "--input-size", help="HEIGHTxWIDTH, e.g. 256x192."),
    in_channels: int | None = typer.Option(None, "--in-channels", help="3 (RGB) or 4 (RGB + depth)."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1),
    lr: float | None = typer.Option(None, "--lr"),
    resume: Path | None = typer.Option(None, "--resume", help="last.pt of an interrupted run."),
    init: Path | None = typer.Option(
        None, "--init", help="Start from this checkpoint's weights (fresh optimizer and schedule), e.g. to fine-tune."
    ),
    distill_from: Path | None = typer.Option(
        None, "--distill-from", help="Also distil from this checkpoint's heatmaps (same input and heatmap size)."
    ),
    distill_weight: float = typer.Option(
        0.5, "--distill-weight", help="With --distill-from: (1-w) * label MSE + w * teacher MSE."
    ),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads for torch."),
    workers: int | None = typer.Option(None, "--workers", min=0, help="DataLoader worker processes."),
    seed: int | None = typer.Option(None, "--seed"),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide the progress bars."),
) -> None:
    """Train the student on pseudo-labelled crops; the best checkpoint is chosen by validation PCK@0.1
    (or is the last epoch when no --val is given)."""
    with cli_errors():
        from gaitpose.train.config import load_config, parse_input_size

        if in_channels is not None and in_channels not in (3, 4):
            raise ValueError("--in-channels must be 3 or 4")
        if not 0.0 <= distill_weight <= 1.0:
            raise ValueError(f"--distill-weight must be in [0, 1], got {distill_weight}")
        cfg = load_config(config).updated(
            epochs=epochs,
            input_size=parse_input_size(input_size) if input_size else None,
            in_channels=in_channels,
            batch_size=batch_size,
            lr=lr,
            device=device,
            threads=threads,
            workers=workers,
            seed=seed,
        )
        train_records = _load_split(train, cfg.min_keypoints)
        val_records = _load_split(val, cfg.min_keypoints) if val is not None else []
        if not train_records:
            raise ValueError(f"{train}: no labelled people to train on")

        from gaitpose.nn.student import build_model
        from gaitpose.train.loop import seed_everything, train_model

        seed_everything(cfg.seed)  # the initial weights are part of what the seed reproduces
        model = _load_matching(init, cfg) if init is not None else build_model(cfg.model_config_dict())
        teacher = _load_matching(distill_from, cfg) if distill_from is not None else None
        result = train_model(
            model, train_records, val_records, cfg, out, resume=resume, progress=not no_progress,
            distill_from=teacher, distill_weight=distill_weight,
        )
        best = result["best_metric"]
        typer.echo(
            f"trained {result['epochs']} epochs on {len(train_records)} crops ({result['device']}); "
            f"best val PCK@{cfg.pck_threshold:g} = {'-' if best is None else f'{best:.4f}'} "
            f"at epoch {result['best_epoch']}; run folder {out}"
        )


def evaluate_command(
    model: Path | None = typer.Option(
        None, "--model", help="A .pt checkpoint or an .onnx model; default: the model `gaitpose analyze` uses."
    ),
    ann: Path = typer.Option(..., "--ann", help="COCO label file to evaluate on (boxes come from it)."),
    out: Path = typer.Option(..., "--out", help="Report folder: metrics.json, metrics.md, overlay.png."),
    flip_test: bool = typer.Option(False, "--flip-test", help="Also run on the mirrored crop and average."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    threads: int | None = typer.Option(None, "--threads", min=1),
) -> None:
    """OKS AP/AR, PCK (feet at 0.05 too), sagittal angle error in degrees, share of implausible angles
    and per-keypoint pixel errors of a model on a label file."""
    with cli_errors():
        from gaitpose.eval.evaluate import write_report
        from gaitpose.fsutil import check_out_dir

        check_out_dir(out)  # a bad --out fails now, not after the evaluation
        metrics = write_report(model, ann, out, flip_test=flip_test, batch_size=batch_size, threads=threads)

        def r4(v: float | None) -> float | None:
            return None if v is None or v != v else round(v, 4)

        headline = {k: r4(metrics[k]) for k in ("AP", "AP50", "PCK@0.05", "PCK@0.1", "PCK@0.05_feet")}
        headline["angle_mae_deg"] = r4(metrics["angle_mae_deg"]["all"])
        headline["implausible_angle_share"] = r4(metrics["implausible_angle_share"]["all"])
        typer.echo(json.dumps({"model": metrics["model"], **headline, "params": metrics["params"],
                               "gflops": round(metrics["gflops"], 4)}))
        typer.echo(f"report written to {out}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
