"""``gaitpose analyze`` (runtime, no torch) and ``gaitpose train-localizer`` (torch, imported in the body)."""

from __future__ import annotations

from pathlib import Path

import typer

from gaitpose.cliutil import cli_errors


def analyze_cmd(
    video: Path = typer.Argument(..., help="Gait video (mp4/mov/mkv incl. Kinect MKV with depth, or .bag)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (replaced only once complete)."),
    depth: Path | None = typer.Option(None, "--depth", help="Depth for VIDEO (16-bit PNG folder or .npz)."),
    model: Path | None = typer.Option(None, "--model", help="Pose ONNX model (default: models/student/model.onnx)."),
    localizer: Path | None = typer.Option(
        None, "--localizer", help="Person localiser ONNX (default: models/localizer/model.onnx)."
    ),
    height_cm: float | None = typer.Option(None, "--height-cm", help="Subject height: scales lengths to metres."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="ONNX Runtime intra-op threads."),
    no_overlay: bool = typer.Option(False, "--no-overlay", help="Skip the overlay video (faster)."),
    overlay_size: int = typer.Option(
        960, "--overlay-size", min=0, help="Long side of the overlay video in pixels (0: the video's own size)."
    ),
    flip_test: bool = typer.Option(
        False, "--flip-test", help="Also run each mirrored crop and average: fewer left/right swaps, slower."
    ),
    roi: str | None = typer.Option(None, "--roi", help="X,Y,W,H box of the subject in the first frame."),
    timestamps: Path | None = typer.Option(None, "--timestamps", help="Timestamps CSV for a --depth PNG folder."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace --out even when it holds files that are not a previous gaitpose result."
    ),
) -> None:
    """Analyse the gait in VIDEO: keypoints, gait events, metrics, angle plots, overlay video, HTML report."""
    from tqdm import tqdm

    from gaitpose.analyze import analyze_video, parse_roi

    with cli_errors():
        from gaitpose.fsutil import check_out_dir

        check_out_dir(out, overwrite)  # a bad --out fails now, not after the analysis
        parse_roi(roi)  # reject a bad --roi before any work
        bar = tqdm(total=1000, desc=video.name, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining}")
        last = [0]

        def progress(p: float) -> None:
            n = int(1000 * min(max(p, 0.0), 1.0) + 0.5)
            if n > last[0]:
                bar.update(n - last[0])
                last[0] = n

        try:
            s = analyze_video(video, out, depth=depth, model=model, localizer=localizer, height_cm=height_cm,
                              threads=threads, progress=progress, overlay=not no_overlay, roi=roi,
                              timestamps=timestamps, overlay_size=overlay_size or None,
                              flip_test=flip_test, overwrite=overwrite)
        finally:
            bar.close()
    cad = s.get("cadence_steps_per_min")
    typer.echo(
        f"{s['frames']} frames ({s['fps']:.1f} fps) in {s['elapsed_s']:.1f} s "
        f"({s['throughput_fps']:.1f} frames/s pose), subject found in {s['frames_with_pose']} frames, "
        f"person localiser ran {s['localizer_calls']} times"
    )
    if s["walking_found"]:
        typer.echo(f"cadence {cad:.1f} steps/min, {s.get('n_strides') or 0} strides, units: {s['units']}"
                   if cad is not None else f"{s.get('n_strides') or 0} strides, units: {s['units']}")
    else:
        typer.echo("no walking detected: outputs written, metrics are empty (see warnings in the report)")
    for w in s["warnings"]:
        typer.echo(f"warning: {w}")
    typer.echo(f"report: {Path(s['out_dir']) / 'report.html'}")


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
        from gaitpose.localizer_train import LocalizerTrainConfig, train_localizer

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
