"""``gaitpose-data extract``: recordings -> frame store (JPEG colour, 16-bit PNG depth, manifest.jsonl)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from gaitpose.cli.util import cli_errors


def extract_command(
    inputs: list[Path] = typer.Argument(..., help="Recordings: videos (mp4/mov/avi/mkv), Kinect MKV, RealSense .bag."),
    out: Path = typer.Option(..., "--out", "-o", help="Frame store folder (created; resumed if it exists)."),
    depth: Path | None = typer.Option(
        None, "--depth", help="Depth for a plain video: folder of 16-bit PNGs or .npy/.npz."
    ),
    timestamps: Path | None = typer.Option(
        None, "--timestamps", help="CSV of frame times for --depth (frame,t_ms or frame,t_color_ms,t_depth_ms)."
    ),
    recording_id: str | None = typer.Option(
        None, "--recording-id", help="Recording id for a single INPUT (default: the file stem)."
    ),
    subject: str | None = typer.Option(None, "--subject", help="Subject id for all inputs (default: recording id)."),
    subjects_csv: Path | None = typer.Option(None, "--subjects-csv", help="CSV with columns recording,subject."),
    stride: int = typer.Option(1, "--stride", min=1, help="Keep every N-th colour frame (by source index)."),
    start_s: float | None = typer.Option(None, "--start-s", help="Skip colour frames before this time (s)."),
    end_s: float | None = typer.Option(None, "--end-s", help="Stop at this time (s)."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="At most N frames per recording."),
    max_size: int | None = typer.Option(None, "--max-size", help="Downscale so the longest side is at most PX."),
    tolerance_ms: float | None = typer.Option(
        None, "--tolerance-ms", help="Max colour/depth time difference (default: half the slower stream's period)."
    ),
    clock_offset_ms: float = typer.Option(
        0.0, "--clock-offset-ms", help="Added to depth times to reach the colour clock."
    ),
    register: bool = typer.Option(
        True, "--register/--no-register", help="Re-project depth into the colour image when calibration is known."
    ),
    jpeg_quality: int = typer.Option(95, "--jpeg-quality", min=50, max=100),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Extract frames (and time-paired, registered depth) into FRAMES_DIR; re-running resumes."""
    from data_tools.extract import ExtractOptions, extract_many

    opts = ExtractOptions(
        stride=stride,
        start_s=start_s,
        end_s=end_s,
        max_frames=max_frames,
        max_size=max_size,
        tolerance_ms=tolerance_ms,
        clock_offset_ms=clock_offset_ms,
        register=register,
        jpeg_quality=jpeg_quality,
    )
    with cli_errors():
        summaries = extract_many(
            inputs,
            out,
            subject=subject,
            subjects_csv=subjects_csv,
            depth=depth,
            timestamps=timestamps,
            options=opts,
            progress_bar=progress and sys.stderr.isatty(),
            recording_id=recording_id,
        )
    failed = [s for s in summaries if not s.ok]
    for s in summaries:
        if s.ok:
            typer.echo(s.line())
    for s in failed:
        typer.echo(f"error: {s.error}", err=True)
    written = sum(s.frames_written for s in summaries)
    skipped = sum(s.frames_skipped for s in summaries)
    typer.echo(
        f"extracted {written} frames ({skipped} already present) from {len(summaries) - len(failed)}/{len(summaries)} "
        f"recordings into {out}"
    )
    if failed:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("extract")(extract_command)
