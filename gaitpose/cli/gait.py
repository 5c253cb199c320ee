"""``gaitpose gait``: gait analysis and report from keypoint trajectories in a file (runtime, no torch)."""

from __future__ import annotations

from pathlib import Path

import typer

from gaitpose.cli.util import cli_errors


def gait_cmd(
    input: Path = typer.Argument(..., help="keypoints.json / keypoints.csv (gaitpose analyze), .trc or .c3d."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (replaced only once complete)."),
    markers: Path | None = typer.Option(
        None, "--markers", help="YAML mapping of keypoints to markers (default: Plug-in Gait, lateral/medial "
        "knee and malleolus sets, Pose2Sim, OpenCap, keypoint names)."),
    plane: str | None = typer.Option(
        None, "--plane", help="Sagittal plane of a TRC/C3D as two signed axes, walk then up (e.g. xz, -yz); "
        "default: found from the data."),
    fps: float | None = typer.Option(None, "--fps", min=1.0, help="Resample to this frame rate first (e.g. 30: "
                                     "what a camera would see)."),
    mode: str = typer.Option("auto", "--mode", help="auto | overground | treadmill."),
    treadmill_speed: float | None = typer.Option(
        None, "--treadmill-speed", help="Belt speed in m/s: treadmill speed and step lengths in metres."),
    height_cm: float | None = typer.Option(None, "--height-cm", help="Subject height (keypoint files in pixels)."),
    reference: Path | None = typer.Option(
        None, "--reference", help="C3D whose gait events (force plates or annotated) to compare with."),
    offset_s: float = typer.Option(0.0, "--offset-s", help="Added to the reference's event times (clock offset)."),
    static: Path | None = typer.Option(
        None, "--static", help="Standing trial (TRC/C3D, same markers): its heel-to-toe tilt with the foot flat is "
        "taken off the ankle angles, as Plug-in Gait's foot-flat calibration does."),
    no_refine: bool = typer.Option(False, "--no-refine", help="Plain Zeni heel strikes (no refinement)."),
    heel_strike: str = typer.Option(
        "auto", "--heel-strike", help="Heel-strike refinement: auto (landing for steady trajectories such as "
        "markers, midpoint for noisy ones such as video keypoints) | landing | midpoint | heel_speed."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace --out even when it holds files that are not a previous gaitpose result."),
) -> None:
    """Gait events, metrics, angle plots and the HTML report from keypoint trajectories in a file.

    With reference events (a C3D's own, or --reference), also validation.json: per-event
    differences, mean/max/bias, limits of agreement, cadence and step-time differences.
    """
    from gaitpose.analyze_files import analyze_file

    with cli_errors():
        if mode not in ("auto", "overground", "treadmill"):
            raise ValueError(f"--mode must be auto, overground or treadmill, got {mode!r}")
        from gaitpose.gait.events import HEEL_STRIKE_CHOICES

        if heel_strike not in HEEL_STRIKE_CHOICES:
            raise ValueError(f"--heel-strike must be one of {', '.join(HEEL_STRIKE_CHOICES)}, got {heel_strike!r}")
        if plane is not None:
            from gaitpose.gait.readers import parse_plane

            parse_plane(plane)
        if height_cm is not None:
            from gaitpose.options import check_height_cm

            check_height_cm(height_cm)
        s = analyze_file(input, out, markers=markers, plane=plane, fps=fps, mode=mode,
                         treadmill_speed=treadmill_speed, height_cm=height_cm, reference=reference,
                         offset_s=offset_s, static=static, refine_heel_strike=not no_refine,
                         heel_strike_rule=heel_strike,
                         overwrite=overwrite)
    plane_txt = (f", walk along {s['plane']['progression_axis']}, up {s['plane']['vertical_axis']}"
                 if s["plane"] else "")
    typer.echo(f"{s['frames']} frames ({s['fps']:.1f} fps) from {s['format']}{plane_txt}")
    if s["walking_found"]:
        cad = s["cadence_steps_per_min"]
        typer.echo(f"{s['mode']} walking: " + (f"cadence {cad:.1f} steps/min, " if cad is not None else "")
                   + f"{s['n_strides'] or 0} strides, {s['n_events']} events, units: {s['units']}")
    else:
        typer.echo("no walking detected: outputs written, metrics are empty (see warnings in the report)")
    for line in s["validation"] or []:
        typer.echo(f"vs reference: {line}")
    for w in s["warnings"]:
        typer.echo(f"warning: {w}")
    typer.echo(f"report: {out / 'report.html'}")


def register(app: typer.Typer) -> None:
    app.command("gait")(gait_cmd)
