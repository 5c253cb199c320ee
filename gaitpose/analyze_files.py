"""``gaitpose gait``: the gait analysis and its report from keypoint trajectories in a file.

Input: gaitpose's keypoints.json / keypoints.csv, a TRC (Sports2D, Pose2Sim, OpenCap) or a C3D
from a marker lab (see :mod:`gaitpose.gait.readers`). Output: the files ``gaitpose analyze``
writes from its keypoints (metrics.json, events.csv, angles.png, angles_cycle.png, report.html),
staged so that a failure leaves no half-written folder, plus validation.json when reference
events are known: the C3D's own events, or ``reference`` (a C3D whose events share the clock of
the input, ``offset_s`` added to the reference's times when they do not).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError
from gaitpose.gait.readers import Trajectories, read_trajectories, resample

__all__ = ["GAIT_OUTPUT_FILES", "analyze_file", "read_reference"]

GAIT_OUTPUT_FILES = ("metrics.json", "events.csv", "angles.png", "angles_cycle.png", "report.html", "validation.json")


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with the keyword arguments it accepts (the report API grows options over time)."""
    params = inspect.signature(fn).parameters
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})


def read_reference(path: str | os.PathLike[str], mapping: Any = None, plane: str | None = None) -> Trajectories:
    """A reference trial (C3D) with its gait events, and its model angles if it has them; one-line error when no events.

    Call it before a long analysis, so a wrong ``--reference`` fails at once.
    """
    p = Path(path)
    tr = read_trajectories(p, mapping=mapping, plane=plane)
    if not tr.reference_events:
        raise InputError(p, "the reference file carries no gait events (EVENT group: Foot Strike / Foot Off, "
                            "or force plates)")
    return tr


def analyze_file(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    markers: str | os.PathLike[str] | None = None,
    plane: str | None = None,
    fps: float | None = None,
    mode: str = "auto",
    treadmill_speed: float | None = None,
    height_cm: float | None = None,
    reference: str | os.PathLike[str] | None = None,
    offset_s: float = 0.0,
    static: str | os.PathLike[str] | None = None,
    refine_heel_strike: bool = True,
    heel_strike_rule: str = "auto",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Analyse the trajectories in ``path``; write the outputs to ``out_dir``; return a summary dict.

    ``fps`` resamples the trajectories as a camera at that rate would see them (to check the
    method at video rates on motion capture); ``markers`` is a ``--markers`` YAML file; ``static`` a
    standing trial of the same marker set, whose foot offsets are taken off the ankle angles.
    Raises :class:`InputError` (one line: file and reason) before any output is written.
    """
    from gaitpose.fsutil import check_out_dir, staged_dir
    from gaitpose.gait.analysis import analyze_gait
    from gaitpose.gait.markers import load_mapping
    from gaitpose.gait.validation import comparison_metrics, format_comparison, reference_comparison

    src, out = Path(path), Path(out_dir)
    check_out_dir(out, overwrite)
    mapping = load_mapping(markers) if markers is not None else None
    tr: Trajectories = read_trajectories(src, mapping=mapping, plane=plane)
    foot_offset = None
    if static is not None:
        from gaitpose.gait.static import foot_offsets_deg

        foot_offset = foot_offsets_deg(static, mapping)
    if fps:
        tr = resample(tr, float(fps))
    ref_name, ref = src.name, tr
    if reference is not None:
        ref, ref_name = read_reference(reference, mapping, plane), Path(reference).name
    scale = tr.scale_m_per_unit if height_cm is None else None
    res = analyze_gait(tr.kpts, tr.scores, tr.fps, mode=mode, treadmill_speed=treadmill_speed,
                       scale_m_per_px=scale, height_cm=height_cm, refine_heel_strike=refine_heel_strike,
                       heel_strike_rule=heel_strike_rule, fix_swaps=tr.source != "c3d",
                       reject_implausible=tr.source != "c3d", pelvis=tr.pelvis, foot_offset_deg=foot_offset)
    comparison = reference_comparison(res, tr.fps, ref.reference_events, ref.reference_angles, ref.fps,
                                      offset_s=offset_s, reference_name=ref_name)
    warnings = list(res.warnings)
    if comparison and comparison.get("reason"):
        warnings.append(f"validation skipped: {comparison['reason']}")
    metrics = {
        **res.metrics,
        "units": res.units,
        "mode": res.mode,
        "warnings": warnings,
        "n_events": len(res.events),
        "swapped_frames": len(res.swapped_frames),
        "video": src.name,
        "input": {"file": src.name, "format": tr.source, "fps": tr.fps, "frames": tr.n_frames, **tr.info},
        "processing": {"frames": tr.n_frames, "fps": tr.fps, "frames_with_pose": int(np.isfinite(tr.kpts).any(-1)
                                                                                    .any(-1).sum()),
                       "localizer_calls": 0, "throughput_fps": 0.0},
    }
    metrics.update(comparison_metrics(comparison))
    with staged_dir(out, overwrite=overwrite) as tmp:
        from gaitpose.report import plot_angle_cycles, plot_angles, write_report
        from gaitpose.report.writers import write_events_csv, write_json

        write_events_csv(tmp / "events.csv", res.events)
        plot_angles(res.angles, tr.fps, res.events, tmp / "angles.png")
        plot_angle_cycles(res.cycles, tmp / "angles_cycle.png")
        write_json(tmp / "metrics.json", metrics, indent=2)
        if comparison is not None:
            write_json(tmp / "validation.json", comparison, indent=2)
        _call(write_report, tmp / "report.html", video_name=src.name, summary=metrics["processing"],
              metrics=metrics, events=res.events, warnings=warnings,
              model_info={"input": f"{tr.source} file (no pose model)", "marker_set": tr.info.get("marker_set", "-")},
              angles_png=tmp / "angles.png", cycles_png=tmp / "angles_cycle.png", overlay_name=None,
              session={"direction": res.direction, "mode": res.mode})
        for p in tmp.iterdir():
            p.chmod(0o644)
        tmp.chmod(0o755)
    return {
        "input": str(src), "out_dir": str(out), "format": tr.source, "frames": tr.n_frames, "fps": tr.fps,
        "mode": res.mode, "walking_found": res.walking_found, "units": res.units,
        "cadence_steps_per_min": res.metrics.get("cadence_steps_per_min"), "n_strides": res.metrics.get("n_strides"),
        "n_events": len(res.events), "warnings": warnings, "plane": {k: tr.info[k] for k in
                                                                    ("progression_axis", "vertical_axis", "plane_from")
                                                                    if k in tr.info},
        "validation": format_comparison(comparison) or None,
        "files": [n for n in GAIT_OUTPUT_FILES if (out / n).exists()],
    }
