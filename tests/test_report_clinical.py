"""The clinical view and report.html: references, flags, key frames, print layout, same content as the page."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from gaitpose.report import normative as norm
from gaitpose.report.clinical import build_clinical_view
from gaitpose.report.keyframes import pick_heel_strikes

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[1]
WALK = DATA / "sports2d_walk.mp4"
SHIPPED = REPO / "models" / "student" / "model.onnx"
RAW_KEY = re.compile(r"\b[a-z0-9]+_[a-z0-9_]*\.(?!mp4\b|json\b|png\b|html\b|csv\b|onnx\b)[a-z_]+")


def _metrics(**over):
    """A metrics.json-shaped dict of a healthy adult walk (values inside every reference band)."""
    m = {
        "walking_found": True, "units": "relative", "length_source": "leg_length", "n_steps": 8, "n_strides": 6,
        "cadence_steps_per_min": 112.0,
        "step_time_s": {"left": 0.53, "right": 0.54, "mean": 0.535},
        "stride_time_s": {"left": 1.07, "right": 1.07, "mean": 1.07},
        "stance_pct": {"left": 61.0, "right": 60.5, "mean": 60.75},
        "swing_pct": {"left": 39.0, "right": 39.5, "mean": 39.25},
        "double_support_pct": 21.5,
        "step_length": {"left": 0.84, "right": 0.82, "mean": 0.83},
        "stride_length": {"left": 1.66, "right": 1.65, "mean": 1.655},
        "walking_speed": 1.6,
        "symmetry_detail": {"step_time_si_pct": 1.9, "stance_si_pct": 0.8, "step_length_si_pct": 2.4,
                            "stride_time_si_pct": 0.0},
        "angles": {f"{j}_{s}": {"min": lo, "max": hi, "range": hi - lo, "mean": 0.0, "n_cycles": 3}
                   for j, (lo, hi) in {"hip": (-4.0, 34.0), "knee": (3.0, 60.0), "ankle": (-18.0, 12.0)}.items()
                   for s in ("left", "right")},
        "warnings": [], "video": "walk.mp4",
        "processing": {"frames": 300, "fps": 30.0, "frames_with_pose": 290, "frame_size": [1280, 720],
                       "height_cm": None},
        "model": {"pose_model": "model.onnx", "pose_model_version": "0.1.0", "pose_input_size": [192, 144]},
    }
    m.update(over)
    return m


def test_reference_values_are_the_published_healthy_pattern():
    pct, knee, sd = norm.reference_curve("knee")
    assert pct.shape == knee.shape == sd.shape == (101,)
    assert 65 <= pct[knee.argmax()] <= 80 and 55 <= knee.max() <= 65  # peak swing knee flexion
    _, ankle, _ = norm.reference_curve("ankle")
    assert 55 <= pct[ankle.argmin()] <= 70  # push-off plantarflexion just after toe-off
    assert norm.SPATIOTEMPORAL["stance_pct"].mean == 60.0
    assert norm.SPATIOTEMPORAL["double_support_pct"].low <= 20 <= norm.SPATIOTEMPORAL["double_support_pct"].high
    for ref in norm.SPATIOTEMPORAL.values():
        assert ref.low < ref.mean < ref.high and ref.source in norm.SOURCES


def test_healthy_walk_has_no_flags_and_every_row_has_a_unit_and_reference():
    view = build_clinical_view(_metrics(), session={"direction": -1})
    assert view["flags"] == []
    rows = {r["label"]: r for r in view["spatiotemporal"]["rows"]}
    assert rows["Cadence"]["unit"] == "steps/min" and rows["Stance"]["unit"] == "% of cycle"
    assert rows["Step length"]["unit"] == "leg lengths" and rows["Walking speed"]["unit"] == "leg lengths/s"
    assert all(r["reference"] != "–" and r["status"]["row"] == "ok" for r in rows.values())
    assert rows["Stance"]["left"] == "61.0" and rows["Step length"]["symmetry"] == "2 %"
    session = {r["label"]: r["value"] for r in view["session"]}
    assert session["Walking direction"] == "right to left in the image"
    assert session["Subject height"] == "not given"
    json.dumps(view)  # JSON-able as it is (clinical.json)


def test_metres_pick_the_metre_references():
    view = build_clinical_view(_metrics(units="m", step_length={"left": 0.7, "right": 0.7, "mean": 0.7},
                                        stride_length={"left": 1.4, "right": 1.4, "mean": 1.4}, walking_speed=1.3))
    rows = {r["label"]: r for r in view["spatiotemporal"]["rows"]}
    assert rows["Step length"]["unit"] == "m" and rows["Walking speed"]["unit"] == "m/s"
    assert rows["Stride length"]["reference"].startswith("1.41")
    assert view["flags"] == []


def test_the_demo_clip_values_from_the_issue_are_flagged():
    # stance 67 %, double support 34 %, step length 0.86 vs 0.31 leg lengths with a 1.81 stride
    m = _metrics(
        stance_pct={"left": 69.0, "right": 65.4, "mean": 67.2}, swing_pct={"left": 31.0, "right": 34.6, "mean": 32.8},
        double_support_pct=34.5, step_length={"left": 0.86, "right": 0.31, "mean": 0.62},
        stride_length={"left": 1.98, "right": 1.64, "mean": 1.81},
        symmetry_detail={"step_length_si_pct": 93.5, "step_time_si_pct": 17.0, "stance_si_pct": 5.3},
    )
    view = build_clinical_view(m)
    text = " ".join(f["text"] for f in view["flags"])
    levels = [f["level"] for f in view["flags"]]
    assert levels == sorted(levels, key=lambda lv: lv != "implausible")  # the worst first
    assert "Stance: left 69.0, right 65.4 % of cycle" in text
    assert "Double support: 34.5 % of cycle" in text
    step = next(f for f in view["flags"] if f["text"].startswith("Step length"))
    assert step["level"] == "implausible" and "94 %" in step["text"]
    assert any(f["level"] == "implausible" and "should equal the stride length" in f["text"] for f in view["flags"])
    rows = {r["label"]: r for r in view["spatiotemporal"]["rows"]}
    assert rows["Stance"]["status"]["left"] == "outside" and rows["Step length"]["status"]["symmetry"] == "implausible"


def test_impossible_joint_angle_is_flagged_as_a_keypoint_error():
    m = _metrics()
    m["angles"]["ankle_left"] = {"min": -98.0, "max": 10.0, "range": 108.0, "mean": -30.0, "n_cycles": 3}
    view = build_clinical_view(m)
    row = next(r for r in view["angles"]["rows"] if r["joint"].startswith("Ankle") and r["side"] == "left")
    assert row["status"] == "implausible" and row["min"] == "-98"
    assert any("keypoint error" in f["text"] for f in view["flags"])


def test_treadmill_mode_and_rejected_angles_are_shown():
    m = _metrics(mode="treadmill", angles_rejected={
        "frames": 7, "frames_with_angles": 150, "samples": {"ankle_left": 5, "knee_right": 2}, "source": "AAOS"})
    view = build_clinical_view(m)
    assert {r["label"]: r["value"] for r in view["session"]}["Walking mode"] == "treadmill"
    rej = {(r["joint"], r["side"]): r["rejected"] for r in view["angles"]["rows"]}
    assert rej[("Ankle dorsiflexion", "left")] == "5 frames" and rej[("Hip flexion", "left")] == "0 frames"
    assert "7 of 150 frames" in view["angles"]["rejected_note"]
    from gaitpose.report.html import render_report

    page = render_report(view)
    assert "<th>Rejected</th>" in page and "7 of 150 frames" in page


def test_heel_strike_rule_is_stated_in_the_session_table():
    view = build_clinical_view(_metrics(heel_strike_rule={"rule": "midpoint", "chosen": "auto",
                                                          "keypoint_noise_leg": 0.0125}))
    text = {r["label"]: r["value"] for r in view["session"]}["Heel strikes"]
    assert "mid-point" in text and "1.2 % of leg length" in text and "steadiness" in text
    view = build_clinical_view(_metrics(heel_strike_rule={"rule": "landing", "chosen": "given",
                                                          "keypoint_noise_leg": None}))
    text = {r["label"]: r["value"] for r in view["session"]}["Heel strikes"]
    assert "flat" in text and "scatter" not in text and "steadiness" not in text
    assert "Heel strikes" not in {r["label"] for r in build_clinical_view(_metrics())["session"]}


def test_no_walking_gives_no_table_and_says_so():
    view = build_clinical_view({"walking_found": False, "units": "relative", "warnings": ["no walking found"]})
    assert view["spatiotemporal"]["rows"] == [] and not view["walking_found"]
    assert view["warnings"] == ["no walking found"]
    from gaitpose.report.html import render_report

    page = render_report(view)
    assert "No walking was detected" in page and "No spatio-temporal parameters" in page


def test_pick_heel_strikes_takes_the_earliest_per_foot_with_a_pose():
    from gaitpose.gait.events import GaitEvent

    kp = np.zeros((100, 21, 2))
    kp[10] = np.nan  # no pose at the first left strike
    ev = [GaitEvent("left", "heel_strike", 10, 0.33), GaitEvent("right", "heel_strike", 25, 0.83),
          GaitEvent("left", "toe_off", 30, 1.0), GaitEvent("left", "heel_strike", 40, 1.33),
          GaitEvent("right", "heel_strike", 55, 1.83), GaitEvent("left", "heel_strike", 70, 2.33),
          GaitEvent("right", "heel_strike", 85, 2.83)]
    got = [(e.foot, e.frame) for e in pick_heel_strikes(ev, kp, per_foot=2)]
    assert got == [("right", 25), ("left", 40), ("right", 55), ("left", 70)]


@pytest.fixture(scope="module")
def walk_result(tmp_path_factory):
    if not SHIPPED.exists():
        pytest.skip("shipped pose model not present")
    from gaitpose.analyze import analyze_video

    out = tmp_path_factory.mktemp("walk") / "out"
    analyze_video(WALK, out, overlay=False)
    return out


def test_report_and_clinical_json_of_a_real_walk(walk_result):
    html = (walk_result / "report.html").read_text()
    view = json.loads((walk_result / "clinical.json").read_text())
    metrics = json.loads((walk_result / "metrics.json").read_text())
    for unit in ("steps/min", "% of cycle", "leg lengths", "Healthy adult reference", "Perry", "Schwartz"):
        assert unit in html
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|title)>.*?</\1>", "", html, flags=re.S))
    text = re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", text)
    assert not RAW_KEY.findall(text), RAW_KEY.findall(text)[:5]
    snake = re.findall(r"\b[a-z]+(?:_[a-z0-9]+){2,}\b", text)  # JSON keys such as pose_model_sha256
    assert not snake, snake[:5]
    # every table value of the page (clinical.json) is printed in report.html
    for r in view["spatiotemporal"]["rows"]:
        for part in ("left", "right", "value"):
            if r[part] and r[part] != "–":
                assert f">{r[part]}" in html
    # the angle table is the cycle-averaged curve's peaks, as in metrics.json (the plotted curves)
    for r in view["angles"]["rows"]:
        joint = r["joint"].split()[0].lower()
        m = metrics["angles"][f"{joint}_{r['side']}"]
        assert r["min"] == f"{m['min']:.0f}" and r["max"] == f"{m['max']:.0f}"
    # no reference trial, no agreement section
    assert view["validation"] is None and "Agreement with the reference" not in html
    # key frames: real JPEGs of the subject at heel strikes, embedded in both
    assert len(view["stills"]) >= 2
    for s in view["stills"]:
        assert s["src"] in html and "heel strike" in s["caption"]
        img = cv2.imdecode(np.frombuffer(base64.b64decode(s["src"].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[0] == 300 and img.std() > 10
    assert view["events"] and {"foot", "event", "frame", "time", "time_s"} <= set(view["events"][0])
    assert "clinical.json" in {p.name for p in walk_result.iterdir()}


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")
def test_report_prints_without_cut_off_boxes(walk_result, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto((walk_result / "report.html").as_uri())
            page.emulate_media(media="print")
            clipped = page.evaluate("""() => [...document.querySelectorAll('body *')].filter((e) => {
                const s = getComputedStyle(e);
                return /(auto|scroll|hidden)/.test(s.overflowY) && e.scrollHeight > e.clientHeight + 2;
            }).map((e) => e.className || e.tagName)""")
            assert clipped == []
            rows = page.locator(".events tr").count()
            events = len(json.loads((walk_result / "clinical.json").read_text())["events"])
            assert rows >= events  # every event row is in the printed page (plus headers)
            pdf = tmp_path / "report.pdf"
            page.pdf(path=str(pdf), format="A4")
            assert pdf.stat().st_size > 50_000
        finally:
            browser.close()
