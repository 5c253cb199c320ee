"""Keypoint trajectories from files: gaitpose's keypoints.json / keypoints.csv, TRC and C3D.

Why: a gait lab has trials from its marker system (C3D), markerless tools export TRC (Sports2D,
Pose2Sim, OpenCap), and ``gaitpose analyze`` leaves keypoints.json/.csv that a user may want to
re-analyse. All of them become the same thing the video path gives the gait analysis: (T, 21, 2)
image-like keypoints (x along the walk, y down), scores and a frame rate. 3D data are projected onto
the sagittal plane of the walk (:func:`sagittal_projection`), found from the data: vertical = the
axis from ankles to hips, progression = the pelvis's travel (overground) or, when the pelvis stays
(treadmill), the direction the feet point (heel to toe). A C3D's own gait events (EVENT group:
"Foot Strike" / "Foot Off", as Vicon Nexus and most labs write them) come back as reference events;
reading a C3D is :mod:`gaitpose.gait.c3d`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError
from gaitpose.gait.c3d import c3d_events, force_plate_events, model_angles, read_c3d
from gaitpose.gait.events import GaitEvent
from gaitpose.gait.markers import MarkerMapping, apply_mapping, choose_mapping, missing_required, pelvis_landmarks
from gaitpose.skeleton import INDEX, KEYPOINTS, NUM_KEYPOINTS

__all__ = ["SUFFIXES", "Trajectories", "parse_plane", "read_trajectories", "resample", "sagittal_projection"]

SUFFIXES = (".json", ".csv", ".trc", ".c3d")
_UNIT_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0}


@dataclass
class Trajectories:
    """Keypoints in the analysis's 2D convention plus what the file said about them."""

    kpts: np.ndarray  # (T, 21, 2): x along the walk (or image x), y down
    scores: np.ndarray  # (T, 21): 1 where a marker was seen (the file's scores for keypoint files)
    fps: float
    source: str  # "keypoints.json" | "keypoints.csv" | "trc" | "c3d"
    scale_m_per_unit: float | None = None  # metres per unit of ``kpts`` (mocap: known; video: None)
    reference_events: list[GaitEvent] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # mapping, plane, units, markers ...
    pelvis: np.ndarray | None = None  # (T, 2, 2) mid-ASIS, mid-PSIS like ``kpts`` (motion capture with pelvis markers)
    reference_angles: dict[str, np.ndarray] | None = None  # the lab model's sagittal angles (C3D), degrees

    @property
    def n_frames(self) -> int:
        return int(self.kpts.shape[0])


# --- projection --------------------------------------------------------------------------------

_AXES = {"x": 0, "y": 1, "z": 2}


def parse_plane(text: str) -> tuple[np.ndarray, np.ndarray]:
    """``--plane`` text -> (progression unit vector, up unit vector) in lab axes.

    Two signed axis letters: the first is the walking (image x) axis, the second the vertical one,
    e.g. ``xz`` (walk along +x, z up), ``-yz``, ``x-y``. A wrong text is a one-line ValueError.
    """
    m = re.fullmatch(r"\s*([+-]?)([xyzXYZ])\s*,?\s*([+-]?)([xyzXYZ])\s*", text or "")
    if not m or m.group(2).lower() == m.group(4).lower():
        raise ValueError(f"--plane must be two different signed axes such as 'xz', '-yz' or 'x,-y'; got {text!r}")
    prog, up = np.zeros(3), np.zeros(3)
    prog[_AXES[m.group(2).lower()]] = -1.0 if m.group(1) == "-" else 1.0
    up[_AXES[m.group(4).lower()]] = -1.0 if m.group(3) == "-" else 1.0
    return prog, up


def _axis_name(v: np.ndarray) -> str:
    i = int(np.argmax(np.abs(v)))
    pure = abs(v[i]) > 0.999
    name = ("+" if v[i] > 0 else "-") + "xyz"[i]
    return name if pure else f"{name} ({', '.join(f'{c:.2f}' for c in v)})"


def _mean_vec(a: np.ndarray) -> np.ndarray:
    ok = np.isfinite(a).all(-1)
    return a[ok].mean(axis=0) if ok.any() else np.full(3, np.nan)


def _pelvis3d(k3: np.ndarray) -> np.ndarray:
    hips = k3[:, [INDEX["left_hip"], INDEX["right_hip"]]]
    with np.errstate(invalid="ignore"):
        return np.nanmean(hips, axis=1) if np.isfinite(hips).any() else np.full((k3.shape[0], 3), np.nan)


def sagittal_projection(k3: np.ndarray, plane: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """3D keypoints (T, 21, 3) -> 2D (T, 21, 2) on the plane of the walk, and how the plane was found.

    Vertical: the mean ankle-to-hip direction snapped to the nearest lab axis (labs are levelled).
    Progression, in the horizontal plane: the pelvis's net travel when it covers at least one leg
    length (overground), else the mean heel-to-toe direction (treadmill: the feet point forwards
    while the pelvis stays). Image x = position along progression, image y = -height.
    """
    import warnings

    k3 = np.asarray(k3, dtype=np.float64)
    info: dict[str, Any] = {}
    if plane:
        prog, up = parse_plane(plane)
        info["plane_from"] = "--plane"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            leg = np.concatenate([k3[:, INDEX[f"{s}_hip"]] - k3[:, INDEX[f"{s}_ankle"]] for s in ("left", "right")])
            v = _mean_vec(leg)
            if not np.isfinite(v).all():
                raise ValueError("cannot find the vertical: hips and ankles are never seen together")
            i = int(np.argmax(np.abs(v)))
            up = np.zeros(3)
            up[i] = np.sign(v[i])
            leg_len = float(np.linalg.norm(v))
            horiz = [j for j in range(3) if j != i]
            pel = _pelvis3d(k3)
            ok = np.flatnonzero(np.isfinite(pel).all(-1))
            travel = np.zeros(3)
            if ok.size >= 2:
                q = max(1, ok.size // 10)
                travel = np.median(pel[ok[-q:]], axis=0) - np.median(pel[ok[:q]], axis=0)
            travel[i] = 0.0
            if np.linalg.norm(travel) >= leg_len:
                prog = travel / np.linalg.norm(travel)
                info["plane_from"] = "pelvis travel"
            else:
                foot = np.concatenate([k3[:, INDEX[f"{s}_toe"]] - k3[:, INDEX[f"{s}_heel"]] for s in ("left", "right")])
                f = _mean_vec(foot)
                if not np.isfinite(f).all():
                    f = np.zeros(3)
                    f[horiz[int(np.argmax([np.nanstd(pel[:, j]) for j in horiz]))]] = 1.0
                    info["plane_from"] = "largest pelvis sway (no feet seen)"
                else:
                    info["plane_from"] = "foot direction (pelvis does not travel)"
                f[i] = 0.0
                prog = f / np.linalg.norm(f)
            # labs align walkways with an axis: snap when within 10 degrees, so the plane has a plain name
            j = int(np.argmax(np.abs(prog)))
            if abs(prog[j]) > math.cos(math.radians(10)):
                prog = np.zeros(3)
                prog[j] = np.sign(travel[j] if info["plane_from"] == "pelvis travel" else f[j]) or 1.0
    info["progression_axis"] = _axis_name(prog)
    info["vertical_axis"] = _axis_name(up)
    x = k3 @ prog
    y = -(k3 @ up)
    return np.stack([x, y], axis=-1), info


# --- keypoint files written by gaitpose analyze ------------------------------------------------


def _fps_from_times(path: Path, t: np.ndarray, fps: float | None) -> float:
    """Frames per second from per-frame times (first to last, so rounding of the times does not matter)."""
    if fps:
        return float(fps)
    idx = np.flatnonzero(np.isfinite(t))
    if idx.size < 2 or t[idx[-1]] <= t[idx[0]]:
        raise InputError(path, "cannot tell the frame rate (no usable time_s values); pass --fps")
    return float((idx[-1] - idx[0]) / (t[idx[-1]] - t[idx[0]]))


def _read_keypoints_json(path: Path, fps: float | None) -> Trajectories:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a JSON file ({type(exc).__name__})") from None
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) and "keypoints" in d for d in data):
        raise InputError(path, "not a gaitpose keypoints.json (a list of {image_id, keypoints, time_s} records)")
    frames = [int(d.get("image_id", i)) for i, d in enumerate(data)]
    T = max(frames) + 1
    k = np.full((T, NUM_KEYPOINTS, 2), np.nan)
    s = np.zeros((T, NUM_KEYPOINTS))
    times = np.full(T, np.nan)
    for f, d in zip(frames, data, strict=True):
        kp = np.asarray(d["keypoints"], dtype=np.float64)
        if kp.size != NUM_KEYPOINTS * 3:
            raise InputError(path, f"frame {f}: {kp.size} keypoint values, expected {NUM_KEYPOINTS * 3}")
        kp = kp.reshape(NUM_KEYPOINTS, 3)
        k[f], s[f] = kp[:, :2], kp[:, 2]
        times[f] = float(d.get("time_s", np.nan))
    rate = _fps_from_times(path, times, fps)
    return Trajectories(k, s, rate, "keypoints.json", info={"units": "px"})


def _read_keypoints_csv(path: Path, fps: float | None) -> Trajectories:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise InputError(path, "empty file")
    head = rows[0]
    want = [f"{n}_{c}" for n in KEYPOINTS for c in ("x", "y", "score")]
    col = {h: i for i, h in enumerate(head)}
    if not all(w in col for w in want):
        raise InputError(path, "not a gaitpose keypoints.csv (needs frame, time_s and <keypoint>_x/_y/_score columns)")
    body = [r for r in rows[1:] if r]
    if not body:
        raise InputError(path, "no data rows")
    T = len(body)
    vals = np.full((T, len(want)), np.nan)
    times = np.full(T, np.nan)
    for t, r in enumerate(body):
        for j, w in enumerate(want):
            v = r[col[w]] if col[w] < len(r) else ""
            vals[t, j] = float(v) if v.strip() else np.nan
        if "time_s" in col and r[col["time_s"]].strip():
            times[t] = float(r[col["time_s"]])
    v = vals.reshape(T, NUM_KEYPOINTS, 3)
    rate = _fps_from_times(path, times, fps)
    return Trajectories(v[..., :2], np.nan_to_num(v[..., 2]), rate, "keypoints.csv", info={"units": "px"})


# --- TRC ---------------------------------------------------------------------------------------


def _read_trc(path: Path) -> tuple[np.ndarray, list[str], float, str]:
    """(points (T, M, 3), labels, rate, units) of a TRC file (the OpenSim / Pose2Sim text format)."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if len(lines) < 5 or not lines[0].startswith("PathFileType"):
        raise InputError(path, "not a TRC file (no 'PathFileType' header)" if lines else "empty file")
    # header names and values hold no blanks; some writers (OpenSim's own examples) pad with extra tabs
    keys = lines[1].split()
    vals = lines[2].split()
    hdr = dict(zip(keys, vals, strict=False))
    try:
        rate = float(hdr.get("DataRate") or hdr.get("CameraRate") or "nan")
    except ValueError:
        rate = float("nan")
    units = hdr.get("Units", "m").lower()
    names = lines[3].split("\t")
    labels = [n.strip() for n in names[2:] if n.strip()]
    rows = []
    for ln in lines[5:]:
        parts = ln.split("\t")
        if len(parts) < 2 or not parts[0].strip():
            continue
        rows.append([float(p) if p.strip() else np.nan for p in parts[1 : 2 + 3 * len(labels)]])
    if not rows:
        raise InputError(path, "TRC file has no data rows")
    if not labels:
        raise InputError(path, "TRC file names no markers")
    arr = np.full((len(rows), 1 + 3 * len(labels)), np.nan)
    for i, r in enumerate(rows):
        arr[i, : len(r)] = r
    times = arr[:, 0]
    if not (rate > 0):
        d = np.diff(times)
        rate = 1.0 / float(np.median(d[d > 0])) if (d > 0).any() else float("nan")
    if not (rate > 0):
        raise InputError(path, "TRC file gives no frame rate (DataRate) and no usable times")
    return arr[:, 1:].reshape(len(rows), len(labels), 3), labels, float(rate), units


def resample(tr: Trajectories, fps: float, *, start_s: float = 0.0) -> Trajectories:
    """The trajectories as a camera at ``fps`` would sample them (linear interpolation in time).

    Why: a marker system records at 100-200 Hz, a clinic's camera at 25-60; validating the video
    method on marker data means giving it what a camera would see. A sample falls in a gap
    (NaN) when either neighbouring source sample is missing. Reference events keep their times.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    t_src = np.arange(tr.n_frames) / tr.fps
    t_new = np.arange(start_s, t_src[-1] + 1e-9, 1.0 / fps)
    pos = t_new * tr.fps
    i0 = np.clip(np.floor(pos).astype(int), 0, tr.n_frames - 1)
    i1 = np.clip(i0 + 1, 0, tr.n_frames - 1)
    w = (pos - i0)[:, None, None]
    k = tr.kpts[i0] * (1 - w) + tr.kpts[i1] * w
    pelvis = None if tr.pelvis is None else tr.pelvis[i0] * (1 - w) + tr.pelvis[i1] * w
    ref_angles = None if tr.reference_angles is None else {
        name: a[i0] * (1 - w[:, 0, 0]) + a[i1] * w[:, 0, 0] for name, a in tr.reference_angles.items()}
    s = np.minimum(tr.scores[i0], tr.scores[i1])
    events = None
    if tr.reference_events is not None:
        events = [GaitEvent(e.foot, e.event, round((e.time_s - start_s) * fps), e.time_s - start_s)
                  for e in tr.reference_events]
    return Trajectories(k, s, float(fps), tr.source, tr.scale_m_per_unit, events,
                        {**tr.info, "resampled_from_hz": tr.fps, "resample_start_s": start_s}, pelvis, ref_angles)


# --- entry point -------------------------------------------------------------------------------


def read_trajectories(
    path: str | os.PathLike[str],
    *,
    mapping: MarkerMapping | None = None,
    plane: str | None = None,
    fps: float | None = None,
) -> Trajectories:
    """Read a keypoints.json / keypoints.csv / TRC / C3D file; one-line :class:`InputError` when it cannot.

    ``mapping`` (markers -> keypoints) applies to TRC and C3D; by default the best-fitting of
    :data:`gaitpose.gait.markers.DEFAULT_MARKER_SETS`. ``plane`` overrides the sagittal plane
    (see :func:`parse_plane`). ``fps`` overrides the file's frame rate.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "file not found")
    if p.stat().st_size == 0:
        raise InputError(p, "empty file")
    suffix = p.suffix.lower()
    if suffix == ".json":
        return _read_keypoints_json(p, fps)
    if suffix == ".csv":
        return _read_keypoints_csv(p, fps)
    if suffix not in (".trc", ".c3d"):
        raise InputError(p, f"unsupported file type {p.suffix!r} (expected one of {', '.join(SUFFIXES)})")
    c = None
    if suffix == ".trc":
        pts, labels, rate, units = _read_trc(p)
    else:
        pts, labels, rate, units, c = read_c3d(p)
    mm = _UNIT_MM.get(units)
    if mm is None:
        raise InputError(p, f"unknown length unit {units!r} (expected mm, cm or m)")
    m = mapping or choose_mapping(labels)
    lacking = missing_required(m, labels)
    if lacking:
        how = "the --markers file" if mapping is not None else f"the best default marker set ({m.name})"
        raise InputError(p, f"{how} lacks markers for {', '.join(lacking)}; pass --markers map.yaml "
                            "(see gaitpose.gait.markers)")
    k3 = apply_mapping(pts, labels, m, mm_per_unit=mm)
    pel3 = pelvis_landmarks(pts, labels, m)
    try:  # the pelvis landmarks ride along as extra points, so they get exactly the keypoints' projection
        k2, pinfo = sagittal_projection(k3 if pel3 is None else np.concatenate([k3, pel3], axis=1), plane)
    except ValueError as exc:
        raise InputError(p, str(exc)) from None
    k2, pelvis = k2[:, :NUM_KEYPOINTS], (None if pel3 is None else k2[:, NUM_KEYPOINTS:])
    scores = np.isfinite(k2).all(-1).astype(np.float64)
    k2[scores == 0] = np.nan
    events = None
    ref_angles = None
    info: dict[str, Any] = {"units": units, "marker_set": m.name, "n_markers": len(labels),
                            "frame_rate_file": rate, **pinfo}
    if c is not None:
        ref_angles = model_angles(pts, labels) or None
        info["model_angles"] = sorted(ref_angles) if ref_angles else None
        first = int(c["header"]["points"]["first_frame"]) + 1  # ezc3d's header is 0-based
        events = c3d_events(c, rate, first, k2.shape[0]) or None
        info["first_frame"] = first
        info["reference_events"] = "annotated (EVENT group)" if events else None
        if not events:
            events = force_plate_events(c, k3, rate) or None
            info["reference_events"] = "force plates (vertical force > 20 N)" if events else None
    rate_out = float(fps) if fps else rate
    return Trajectories(k2, scores, rate_out, suffix[1:], scale_m_per_unit=mm / 1000.0, reference_events=events,
                        info=info, pelvis=pelvis, reference_angles=ref_angles)
