"""C3D files: marker trajectories and the trial's own gait events (annotated, else from force plates).

Why apart from :mod:`gaitpose.gait.readers`: C3D needs ezc3d and brings its reference events
(EVENT group "Foot Strike" / "Foot Off", as Vicon Nexus and most labs write them, or the force
plates' vertical force); the text formats need neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError
from gaitpose.gait.events import GaitEvent
from gaitpose.gait.markers import normalise_label
from gaitpose.skeleton import INDEX

__all__ = ["FP_THRESHOLD_N", "c3d_events", "force_plate_events", "model_angles", "read_c3d"]



def c3d_events(c: Any, rate: float, first_frame: int, n: int) -> list[GaitEvent]:
    """Foot Strike / Foot Off events of the EVENT group, timed from the first stored frame."""
    p = c["parameters"].get("EVENT")
    if not p or "TIMES" not in p or "LABELS" not in p:
        return []
    used = int(np.asarray(p.get("USED", {}).get("value", [0])).ravel()[0]) if "USED" in p else len(p["LABELS"]["value"])
    times = np.asarray(p["TIMES"]["value"], dtype=np.float64)
    times = times[1] + 60.0 * times[0] if times.ndim == 2 else times
    labels = list(p["LABELS"]["value"])
    ctx = list(p.get("CONTEXTS", {}).get("value", [""] * len(labels)))
    out = []
    for i in range(min(used, len(labels), len(times))):
        lab, side = labels[i].strip().lower(), (ctx[i] if i < len(ctx) else "").strip().lower()
        kind = "heel_strike" if lab in ("foot strike", "heel strike", "initial contact") else (
            "toe_off" if lab in ("foot off", "toe off", "final contact") else None)
        foot = "left" if side.startswith("l") else ("right" if side.startswith("r") else None)
        if kind is None or foot is None:
            continue
        # C3D frames are 1-based; event time t is frame t * rate + 1.
        t = float(times[i]) - (first_frame - 1) / rate
        if -0.5 / rate <= t <= (n - 0.5) / rate:
            out.append(GaitEvent(foot, kind, round(t * rate), t))  # type: ignore[arg-type]
    out.sort(key=lambda e: (e.time_s, e.foot, e.event))
    return out


FP_THRESHOLD_N = 20.0
"""Vertical force above which a foot is on a plate: the usual 10-20 N (well above plate noise, ~10 N here)."""


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def force_plate_events(c: Any, k3: np.ndarray, rate: float) -> list[GaitEvent]:
    """Foot strikes and foot offs from the force plates' vertical force (FORCE_PLATFORM + ANALOG groups).

    Contact = |Fz| above :data:`FP_THRESHOLD_N` for at least 0.1 s (gaps under 50 ms bridged); its
    start is a foot strike, its end a foot off; a contact starting or ending at the edge of the
    recording gives no event. A contact counts only when it lasts no more than 1.25 times the
    plate's median contact (longer ones merge two feet's contacts, e.g. a crossover step on an
    instrumented treadmill). Its start is a foot strike only when one foot alone has its heel over
    the plate (inside its corners, in the plate's plane) then; its end a foot off only when one foot
    alone has its toe over the plate then. So a heel that lands before the plate's edge (the force
    starts when the forefoot reaches the plate, late) gives no strike but its foot off, and both
    feet over the plate give nothing, as a lab would judge it. Times are seconds from the first
    stored frame (``k3`` frames).
    """
    par = c["parameters"]
    fp, an = par.get("FORCE_PLATFORM"), par.get("ANALOG")
    if not fp or not an or "CHANNEL" not in fp or "CORNERS" not in fp:
        return []
    analogs = np.asarray(c["data"]["analogs"], dtype=np.float64)
    if analogs.ndim != 3 or analogs.shape[2] == 0:
        return []
    data = analogs[0]
    a_rate = float(np.asarray(an["RATE"]["value"]).ravel()[0])
    chans = np.asarray(fp["CHANNEL"]["value"]).reshape(6, -1) if np.asarray(fp["CHANNEL"]["value"]).size else None
    corners = np.asarray(fp["CORNERS"]["value"], dtype=np.float64)
    used = int(np.asarray(fp.get("USED", {}).get("value", [0])).ravel()[0])
    if chans is None or corners.size == 0 or used == 0:
        return []
    corners = corners.reshape(3, 4, -1)
    out: list[GaitEvent] = []
    n_pts = k3.shape[0]
    for i in range(min(used, chans.shape[1], corners.shape[2])):
        fz_ch = int(chans[2, i]) - 1  # channels are 1-based; Fz is the third of six (types 1-4)
        if not 0 <= fz_ch < data.shape[0]:
            continue
        fz = np.abs(data[fz_ch] - np.median(data[fz_ch][np.abs(data[fz_ch]) < FP_THRESHOLD_N] if
                                            (np.abs(data[fz_ch]) < FP_THRESHOLD_N).any() else 0.0))
        on = fz > FP_THRESHOLD_N
        for a, b in _runs(~on):  # bridge short unloaded gaps (noise around the threshold)
            if a > 0 and b < on.size and (b - a) < 0.05 * a_rate:
                on[a:b] = True
        cor = corners[:, :, i]
        plane_axes = [j for j in range(3) if np.ptp(cor[j]) > 1e-6]  # the plate's own plane
        lo_c, hi_c = cor.min(axis=1), cor.max(axis=1)
        contacts = [(a, b) for a, b in _runs(on) if b - a >= 0.1 * a_rate]
        typical = float(np.median([b - a for a, b in contacts])) if contacts else 0.0
        for a, b in contacts:
            if a == 0 or b >= on.size or (len(contacts) >= 3 and b - a > 1.25 * typical):
                continue  # too short, or loaded from the start / to the end of the recording
            feet = []
            for idx, point in ((a, "heel"), (b - 1, "toe")):
                f = int(np.clip(round(idx / a_rate * rate), 0, n_pts - 1))
                pos = {side: k3[f, INDEX[f"{side}_{point}"], plane_axes] for side in ("left", "right")}
                feet.append([k for k, v in pos.items() if np.isfinite(v).all()
                             and np.all((v >= lo_c[plane_axes]) & (v <= hi_c[plane_axes]))])
            # each end is judged on its own: a heel that lands before the plate's edge and rolls onto it
            # still leaves a valid foot off, and a foot that lands on the plate and rolls off its far edge
            # a valid strike; an end with both feet (or none) over the plate gives nothing
            if len(feet[0]) == 1:
                out.append(GaitEvent(feet[0][0], "heel_strike", round(a / a_rate * rate), a / a_rate))  # type: ignore[arg-type]
            if len(feet[1]) == 1:
                out.append(GaitEvent(feet[1][0], "toe_off", round(b / a_rate * rate), b / a_rate))  # type: ignore[arg-type]
    out.sort(key=lambda e: (e.time_s, e.foot, e.event))
    return out


def model_angles(xyz: np.ndarray, labels: list[str]) -> dict[str, np.ndarray]:
    """Sagittal joint angles a lab's model stored in the C3D (Plug-in Gait / CGM names), by gaitpose joint name.

    Why: a Vicon or pyCGM2 trial usually carries its model's outputs as points named ``LHipAngles``,
    ``RKneeAngles``, ``LAnkleAngles`` ... (degrees; the first component is flexion / dorsiflexion,
    positive as in gaitpose), so the 2D angles can be checked against the lab's own model on the same
    trial. Returns {"hip_left": (T,), ...} for the ones present (a ``Subject:`` prefix is ignored).
    """
    names = {normalise_label(lab): i for i, lab in enumerate(labels)}
    out: dict[str, np.ndarray] = {}
    for joint in ("hip", "knee", "ankle"):
        for side, s in (("left", "l"), ("right", "r")):
            i = names.get(f"{s}{joint}angles")
            if i is not None and np.isfinite(xyz[:, i, 0]).any():
                out[f"{joint}_{side}"] = xyz[:, i, 0].copy()
    return out


def read_c3d(path: Path) -> tuple[np.ndarray, list[str], float, str, Any]:
    try:
        import ezc3d
    except ImportError:  # pragma: no cover - a declared dependency
        raise InputError(path, "reading C3D needs the ezc3d package (pip install ezc3d; on Linux aarch64 "
                               "build it from source or export TRC)") from None
    try:
        c = ezc3d.c3d(str(path))
    except Exception as exc:  # ezc3d raises plain RuntimeError/IOError for bad files
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(path, f"not a readable C3D file ({why})") from None
    par = c["parameters"]["POINT"]
    labels = [str(s) for s in par["LABELS"]["value"]]
    if "LABELS2" in par:
        labels += [str(s) for s in par["LABELS2"]["value"]]
    rate = float(np.asarray(par["RATE"]["value"]).ravel()[0])
    unit_vals = list(par.get("UNITS", {}).get("value", []) or [])
    units = (str(unit_vals[0]).strip().lower() if unit_vals else "") or "mm"  # C3D's default unit
    pts = np.asarray(c["data"]["points"], dtype=np.float64)  # (4, M, T)
    if pts.ndim != 3 or pts.shape[2] == 0:
        raise InputError(path, "C3D file has no point frames")
    xyz = np.transpose(pts[:3], (2, 1, 0))  # (T, M, 3)
    res = np.asarray(c["data"].get("meta_points", {}).get("residuals", np.zeros((1, 0, 0))))
    if res.size == xyz.shape[0] * xyz.shape[1]:
        xyz[np.transpose(res[0]) < 0] = np.nan  # a negative residual marks an invalid (occluded) sample
    xyz[np.all(xyz == 0, axis=-1)] = np.nan  # some writers store gaps as exact zeros
    return xyz, labels[: xyz.shape[1]], rate, units, c
