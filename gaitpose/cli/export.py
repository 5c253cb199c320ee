"""``gaitpose export`` and ``gaitpose quantize`` (torch/onnx imported inside the command bodies)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from gaitpose.cli.util import cli_errors

log = logging.getLogger(__name__)

DEFAULT_PARITY_VIDEO = Path(__file__).resolve().parents[2] / "tests" / "data" / "pose2sim_cam01.mp4"


def export_cmd(
    model: Path = typer.Option(..., "--model", help="Training checkpoint (.pt), pruned or not."),
    out: Path = typer.Option(..., "--out", help="Output .onnx file."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset."),
    check_parity_on: Path | None = typer.Option(
        None, "--check-parity-on",
        help="Label file (.json) or video whose real crops the torch/ONNX parity check runs on "
             "(default: the repository's test clip when present)."),
    parity_crops: int = typer.Option(16, "--parity-crops", help="Number of crops for the parity check."),
    no_simplify: bool = typer.Option(False, "--no-simplify", help="Skip onnxslim graph simplification."),
) -> None:
    """Export a checkpoint to ONNX with embedded metadata; fail if ONNX Runtime disagrees with torch."""
    from gaitpose.export.onnx_export import export_checkpoint

    with cli_errors():
        source = check_parity_on
        if source is None and DEFAULT_PARITY_VIDEO.exists():
            source = DEFAULT_PARITY_VIDEO
        if source is None:
            log.warning("no --check-parity-on source and no default test clip: parity check skipped")
        path, parity = export_checkpoint(model, out, opset=opset, simplify=not no_simplify,
                                         parity_source=source, parity_crops=parity_crops)
        line = {"onnx": str(path)}
        if parity is not None:
            line["parity"] = parity.to_dict()
        typer.echo(json.dumps(line))


def quantize_cmd(
    model: Path = typer.Option(..., "--model", help="FP32 .onnx written by `gaitpose export`."),
    calib: Path = typer.Option(..., "--calib", help="Training label file (.json) or a video for calibration crops."),
    out: Path = typer.Option(..., "--out", help="Output INT8 .onnx file."),
    num_calib: int = typer.Option(128, "--num-calib", help="Number of calibration crops."),
    per_channel: bool = typer.Option(True, "--per-channel/--per-tensor", help="Per-channel weight scales."),
    activation: str = typer.Option("u8", "--activation", help="Activation type: u8 or s8."),
    val: Path | None = typer.Option(None, "--val", help="Label file for the accuracy comparison (default: --calib)."),
    num_eval: int = typer.Option(200, "--num-eval", help="Instances used for the accuracy comparison."),
    runs: int = typer.Option(100, "--runs", help="Timed runs per latency measurement."),
) -> None:
    """INT8 static QDQ quantisation; writes OUT and OUT-stem.report.json (accuracy drop, latency)."""
    from gaitpose.errors import InputError
    from gaitpose.export.quantize import int8_report, quantize_int8

    with cli_errors():
        if activation not in ("u8", "s8"):
            raise InputError(None, f"--activation must be u8 or s8, got {activation!r}")
        path = quantize_int8(model, calib, out, num_calib=num_calib, per_channel=per_channel,
                             activation=activation)
        report_path = path.with_name(path.stem + ".report.json")
        report = int8_report(model, path, val or calib, num_eval=num_eval, runs=runs, out_json=report_path)
        typer.echo(json.dumps({"int8": str(path), "report": str(report_path), "verdict": report["verdict"]}))


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
    app.command("quantize")(quantize_cmd)
