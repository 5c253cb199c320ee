"""``gaitpose bench``: the benchmark suite (student vs teacher vs reference nets) in one run.

A plug-in of the ``gaitpose`` command (entry point ``gaitpose.commands: bench`` in pyproject.toml):
the library does not import the benchmarks package; this module registers itself. torch, onnx and
the suite are imported inside the command, so registering it costs nothing.
"""

from __future__ import annotations

from pathlib import Path

import typer

from gaitpose.cli.util import cli_errors

REPO_ROOT = Path(__file__).resolve().parent.parent


def bench(
    out: Path = typer.Option(..., "--out", help="Output folder for bench.md, bench.json and bench.png."),
    video: Path | None = typer.Option(
        None, "--video", help="Video to benchmark on (default: ../shared/data/videos/sports2d_demo.mp4 beside the "
        "checkout if present, else tests/data/sports2d_walk.mp4)."),
    labels: Path | None = typer.Option(None, "--labels", help="Held-out COCO label file for the accuracy section."),
    models_dir: Path = typer.Option(Path("models"), "--models-dir", help="Folder with student/ and localizer/."),
    student: Path | None = typer.Option(None, "--student", help="Student ONNX to use instead of the shipped one."),
    quick: bool = typer.Option(False, "--quick", help="Few repetitions, 1 thread, RTMPose-t-sized reference only."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Where exported reference nets are kept "
                                          "(default: OUT/.cache)."),
    reps: int = typer.Option(60, "--reps", min=3, help="Timed runs per model and thread count."),
    throughput_video: list[Path] | None = typer.Option(
        None, "--throughput-video", help="Also measure decode alone, the teacher and analyze's loop on this video "
        "(repeatable; default: the --video, or without --video the default video and every video beside it; "
        "none with --quick)."),
) -> None:
    """Measure the student against the MediaPipe teacher and reference pose nets; write a report."""
    with cli_errors():
        import torch

        from benchmarks.suite import BenchConfig, default_throughput_videos, default_video, run_suite

        torch.set_num_threads(1)  # reference export only; keep torch from competing with the timings
        own_video = video is not None
        video = video or default_video(REPO_ROOT)
        if throughput_video:
            extra: tuple[Path, ...] = tuple(throughput_video)
        elif quick:
            extra = ()
        elif own_video:
            extra = (video,)  # a user's own video may sit in a folder of hundreds
        else:
            extra = default_throughput_videos(video) if video.exists() else ()
        cfg = BenchConfig(out_dir=out, video=video, models_dir=models_dir, labels=labels, student=student,
                          quick=quick, cache_dir=cache_dir, reps=reps, throughput_videos=extra)
        res = run_suite(cfg)
        typer.echo((out / "bench.md").read_text())
        failed = [h["name"] for h in res.get("headline", []) if h["pass"] is False]
        typer.echo(f"wrote {out / 'bench.md'}, bench.json, bench.png"
                   + (f"; targets missed: {', '.join(failed)}" if failed else ""))


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
