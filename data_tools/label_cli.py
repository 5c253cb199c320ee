"""``gaitpose-data label``: pseudo-label a frame store with a teacher (see ``data_tools.label``)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from gaitpose.cli.util import cli_errors


def label_command(
    frames_dir: Path = typer.Argument(..., help="Frame store folder (with manifest.jsonl)."),
    out: Path = typer.Option(..., "--out", "-o", help="COCO keypoints JSON to write."),
    teacher: str = typer.Option("mediapipe", "--teacher", help="mediapipe or onnx."),
    teacher_config: Path | None = typer.Option(None, "--teacher-config", help="YAML for --teacher onnx."),
    roi: str | None = typer.Option(None, "--roi", help="X,Y,W,H pixels: force the subject region."),
    mirror: bool = typer.Option(True, "--mirror/--no-mirror", help="Mirror-agreement pass (Data Distillation)."),
    agree_px: float | None = typer.Option(None, "--agree-px", help="Drop joints whose passes differ by more px."),
    agree_frac: float = typer.Option(0.05, "--agree-frac", help="... or by more than this fraction of body height."),
    min_keypoints: int = typer.Option(8, "--min-keypoints", help="Frames with fewer kept joints are not annotated."),
    workers: int = typer.Option(1, "--workers", "-j", help="Recordings labelled in parallel."),
    engine: str = typer.Option("local", "--engine", help="local (process pool) or ray."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Ray cluster address (default: local)."),
    stride: int = typer.Option(1, "--stride", help="Label every N-th frame."),
    recordings: str | None = typer.Option(None, "--recordings", help="Comma-separated subset of recordings."),
) -> None:
    """Pseudo-label every recording of a frame store; resumable; one line per failed recording."""
    from data_tools.batch import run_batch
    from data_tools.label import LabelOptions, load_frame_store

    with cli_errors():
        if stride < 1 or workers < 1:
            raise ValueError("--stride and --workers must be at least 1")
        if teacher not in ("mediapipe", "onnx"):
            raise ValueError(f"unknown teacher {teacher!r}; choose mediapipe or onnx")
        if teacher == "onnx" and teacher_config is None:
            raise ValueError("--teacher onnx needs --teacher-config YAML")
        if engine not in ("local", "ray"):
            raise ValueError(f"unknown engine {engine!r}; choose local or ray")
        recs = load_frame_store(frames_dir)
        if recordings:
            wanted = [r.strip() for r in recordings.split(",") if r.strip()]
            missing = [r for r in wanted if r not in recs]
            if missing:
                raise ValueError(f"{frames_dir}: no recording(s) {', '.join(missing)} in the manifest")
            recs = {r: recs[r] for r in wanted}
        opts = LabelOptions(
            teacher=teacher,
            teacher_config=str(teacher_config.resolve()) if teacher_config else None,
            roi=roi,
            mirror=mirror,
            agree_px=agree_px,
            agree_frac=agree_frac,
            stride=stride,
            min_keypoints=min_keypoints,
        )

        def report(msg: str) -> None:
            from tqdm import tqdm

            tqdm.write(f"error: {msg}", file=sys.stderr)  # own line, not glued to the progress bar

        res = run_batch(frames_dir, out, recs, opts, workers=workers, engine=engine, ray_address=ray_address,
                        on_error=report)
    for part in sorted(res.parts, key=lambda p: p["recording"]):
        s = part["stats"]
        tag = " (resumed)" if part["recording"] in res.skipped else ""
        print(
            f"{part['recording']}: labelled {s['frames_labelled']}/{s['frames']} frames "
            f"({s['labelled_fraction']:.0%}), "
            f"kept {s['keypoints_kept']} keypoints, dropped {s['keypoints_dropped_disagree']} by disagreement, "
            f"teacher {s['teacher_seconds']:.1f} s{tag}"
        )
        choices = s.get("subject_track", {}).get("choices") or []
        if choices:  # the subject path had to pick between people: say where, so a user can check
            frames = ", ".join(str(c["frame"]) for c in choices[:8]) + (" ..." if len(choices) > 8 else "")
            print(f"warning: {part['recording']}: chose the subject between people at {len(choices)} sampled "
                  f"frame(s) ({frames}); see subject_track.choices in the label file, or pass --roi",
                  file=sys.stderr)
    n_ok, n_bad = len(res.parts), len(res.failed)
    if res.labels is not None:
        print(f"wrote {out}: {len(res.labels['images'])} images, {len(res.labels['annotations'])} annotations "
              f"from {n_ok} recording(s)")
    if n_bad:
        print(f"{n_bad} recording(s) failed: {', '.join(sorted(res.failed))}", file=sys.stderr)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("label")(label_command)
