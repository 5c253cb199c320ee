"""``gaitpose analyze`` (runtime, no torch) and ``gaitpose train-localizer`` (torch, imported in the body)."""

from __future__ import annotations

from pathlib import Path

import typer

from gaitpose.cli.util import cli_errors


def analyze_cmd(
    video: Path = typer.Argument(..., help="Gait video (mp4/mov/mkv incl. Kinect MKV with depth, or .bag)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (replaced only once complete)."),
    depth: Path | None = typer.Option(None, "--depth", help="Depth for VIDEO (16-bit PNG folder or .npz)."),
    model: Path | None = typer.Option(
        None, "--model", help="Pose ONNX model or model folder (default: the general model, "
        "models/general/blazepose_full.onnx; the fast student: models/student/model.onnx)."
    ),
    localizer: Path | None = typer.Option(
        None, "--localizer", help="Person localiser ONNX (default: models/localizer/model.onnx)."
    ),
    height_cm: float | None = typer.Option(None, "--height-cm", help="Subject height: scales lengths to metres."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="ONNX Runtime intra-op threads."),
    overlay: bool = typer.Option(
        False, "--overlay", help="Also render overlay.mp4 (skeleton and gait events drawn on the video; slow)."
    ),
    no_overlay: bool = typer.Option(False, "--no-overlay", hidden=True, help="Default; kept for old scripts."),
    overlay_size: int = typer.Option(
        960, "--overlay-size", min=0, help="Long side of the overlay video in pixels (0: the video's own size)."
    ),
    flip_test: bool = typer.Option(
        False, "--flip-test", help="Also run each mirrored crop and average: fewer left/right swaps, slower."
    ),
    fallback: bool = typer.Option(
        False, "--fallback/--no-fallback", help="When a specialised --model is outside its domain on this video, "
        "analyse it again with the general model (a warning says so)."
    ),
    roi: str | None = typer.Option(None, "--roi", help="X,Y,W,H box of the subject in the first frame."),
    timestamps: Path | None = typer.Option(None, "--timestamps", help="Timestamps CSV for a --depth PNG folder."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace --out even when it holds files that are not a previous gaitpose result."
    ),
    reference: Path | None = typer.Option(
        None, "--reference", help="C3D of the same walk (annotated or force-plate events): writes validation.json."
    ),
    offset_s: float = typer.Option(0.0, "--offset-s", help="Added to --reference's event times (clock offset)."),
) -> None:
    """Analyse the gait in VIDEO: keypoints, gait events, metrics, angle plots and an HTML report."""
    from gaitpose.analyze import analyze_video
    from gaitpose.cli.util import ProgressLine
    from gaitpose.options import check_height_cm, parse_roi

    with cli_errors():
        from gaitpose.fsutil import check_out_dir

        check_out_dir(out, overwrite)  # a bad --out fails now, not after the analysis
        parse_roi(roi)  # reject bad options before any work
        check_height_cm(height_cm)
        ref = None
        if reference is not None:  # a wrong reference fails now, not after the analysis
            from gaitpose.analyze_files import read_reference

            ref = read_reference(reference)
        with ProgressLine(video.name) as bar:
            res = analyze_video(video, out, depth=depth, model=model, localizer=localizer, height_cm=height_cm,
                                threads=threads, progress=bar.update, overlay=overlay and not no_overlay, roi=roi,
                                timestamps=timestamps, overlay_size=overlay_size or None,
                                flip_test=flip_test, overwrite=overwrite, fallback=fallback, reference=ref,
                                reference_name=reference.name if reference else "", offset_s=offset_s)
    p, m = res.processing, res.metrics
    typer.echo(
        f"{p.frames} frames ({p.fps:.1f} fps) in {p.elapsed_s:.1f} s ({p.throughput_fps:.1f} frames/s pose), "
        f"subject found in {p.frames_with_pose} frames, person localiser ran {p.localizer_calls} times"
    )
    if res.walking_found:
        cad, strides = m.cadence_steps_per_min, m.n_strides
        typer.echo(f"cadence {cad:.1f} steps/min, {strides} strides, units: {res.gait.units}"
                   if cad is not None else f"{strides} strides, units: {res.gait.units}")
    else:
        typer.echo("no walking detected: outputs written, metrics are empty (see warnings in the report)")
    if res.validation is not None:
        from gaitpose.gait.validation import format_comparison

        for line in format_comparison(res.validation):
            typer.echo(f"vs reference: {line}")
    for w in res.warnings:
        typer.echo(f"warning: {w}")
    typer.echo(f"report: {out / 'report.html'}")


def train_localizer_cmd(
    train: Path = typer.Option(..., "--train", help="Training label file (COCO, gaitpose.labels)."),
    val: Path | None = typer.Option(None, "--val", help="Validation label file."),
    out: Path = typer.Option(..., "--out", help="Run folder (checkpoint, summary.json)."),
    epochs: int = typer.Option(30, "--epochs", min=1),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    lr: float = typer.Option(2e-3, "--lr"),
    max_images: int | None = typer.Option(None, "--max-images", help="Cap images per split (quick runs)."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch intra-op threads."),
    export: Path | None = typer.Option(None, "--export", help="Write the best model to this ONNX path."),
) -> None:
    """Train the tiny CenterNet-style person localiser on the labels' subject boxes; optionally export ONNX."""
    with cli_errors():
        from gaitpose.train.localizer import LocalizerTrainConfig, train_localizer

        tcfg = LocalizerTrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, max_images=max_images,
                                    threads=threads)
        s = train_localizer(train, val, out, export_path=export, tcfg=tcfg)
    best = s["best"]
    typer.echo(f"best epoch {best.get('epoch')}: val mean IoU {best.get('mean_iou', 0):.3f}, "
               f"recall@0.5 {best.get('recall_iou50', 0):.3f}; run folder {out}")
    if export is not None:
        typer.echo(f"exported {export}")


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze_cmd)
    app.command("train-localizer")(train_localizer_cmd)
