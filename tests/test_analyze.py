"""``analyze_video`` / ``gaitpose analyze`` end to end on the committed real clip, plus bad-input paths.

Uses the shipped models in ``models/`` when they exist. Otherwise the fixture exports tiny models
with random weights (a small ``build_model`` student and the localiser); their output biases are
set so the untrained nets give a confident, person-sized detection and mid-confidence keypoints,
which exercises the whole tracking/analytics/report path. Then only files and schemas are
asserted, not accuracy.
"""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from gaitpose.analyze import OUTPUT_FILES, analyze_video, default_model_dir
from gaitpose.errors import InputError, NoPersonError
from gaitpose.result import AnalysisResult
from gaitpose.skeleton import KEYPOINTS, NUM_KEYPOINTS

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "data" / "sports2d_walk.mp4"
SHIPPED = all((REPO / "models" / m / "model.onnx").exists() for m in ("student", "localizer"))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if SHIPPED:
        loc = REPO / "models" / "localizer" / "model.onnx"
        return {"pose": REPO / "models" / "student" / "model.onnx", "localizer": loc, "blank_localizer": loc}
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from gaitpose.export.onnx_export import export_onnx, meta_from_checkpoint
    from gaitpose.nn import ModelConfig, build_model
    from gaitpose.nn.localizer import LocalizerConfig, LocalizerForExport, build_localizer
    from gaitpose.train.localizer import localizer_meta

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("models")
    cfg = ModelConfig(input_size=(128, 96), stages=[(1, 8, 1, 1), (2, 12, 1, 2), (2, 16, 1, 2), (2, 24, 1, 2),
                                                   (2, 32, 1, 2)], stem_channels=8, decoder_channels=16)
    student = build_model(cfg).eval()
    with torch.no_grad():
        student.head.bias.fill_(0.5)  # flat-ish heatmaps: scores ~0.5, keypoints spread over the crop
    pose = export_onnx(student, meta_from_checkpoint(cfg), d / "pose.onnx", simplify=False)

    lcfg = LocalizerConfig()
    blank = build_localizer(lcfg).eval()  # untouched init: sigmoid ~0.01 everywhere -> nobody found
    blank_path = export_onnx(LocalizerForExport(blank), localizer_meta(lcfg), d / "blank_loc.onnx", simplify=False)
    net = build_localizer(lcfg).eval()
    with torch.no_grad():
        net.heat.bias.fill_(3.0)  # confident everywhere; the highest peak wins the start rule
        net.box.bias.copy_(torch.tensor([0.25, 0.8, 0.0, 0.0]))  # a person-sized box
    loc = export_onnx(LocalizerForExport(net), localizer_meta(lcfg), d / "loc.onnx", simplify=False)
    return {"pose": pose, "localizer": loc, "blank_localizer": blank_path}


def test_default_model_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_model_dir().name == "models"
    monkeypatch.setenv("GAITPOSE_MODEL_DIR", str(tmp_path))
    assert default_model_dir() == tmp_path
    with pytest.raises(InputError, match="GAITPOSE_MODEL_DIR"):  # empty model dir: a clear message
        analyze_video(CLIP, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_analyze_clip_writes_every_output(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "result"
    seen: list[float] = []
    res = analyze_video(CLIP, out, model=models["pose"], localizer=models["localizer"], threads=1,
                        progress=seen.append, overlay=True)
    assert isinstance(res, AnalysisResult)
    assert res.files == [n for n in OUTPUT_FILES if (out / n).exists()] and "overlay.mp4" in res.files
    for name in res.files:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not list(tmp_path.glob(".result*")), "staging folder left behind"
    assert seen[0] == 0.0 and seen[-1] == 1.0 and all(b >= a for a, b in itertools.pairwise(seen))
    s = res.summary()
    assert s["frames"] == 180 and s["fps"] == pytest.approx(30.0)
    assert 1 <= s["localizer_calls"] <= 180 and s["frames_with_pose"] > 0
    assert s["video"] == CLIP.name and s["files"] == res.files and "/" not in json.dumps(s["files"])
    assert s["walking_found"] == res.walking_found and isinstance(s["warnings"], list)
    assert len(s["warnings"]) == len(set(s["warnings"])), "a warning repeated"

    kj = json.loads((out / "keypoints.json").read_text())
    assert len(kj) >= s["frames_with_pose"]
    e = kj[0]
    assert {"image_id", "category_id", "keypoints", "score", "time_s", "box"} <= set(e)
    assert e["category_id"] == 1 and len(e["keypoints"]) == 3 * NUM_KEYPOINTS and len(e["box"]) == 4
    assert e["time_s"] == pytest.approx(e["image_id"] / 30.0, abs=1e-3)

    rows = list(csv.reader((out / "keypoints.csv").open()))
    assert rows[0][:5] == ["frame", "time_s", f"{KEYPOINTS[0]}_x", f"{KEYPOINTS[0]}_y", f"{KEYPOINTS[0]}_score"]
    assert len(rows[0]) == 2 + 3 * NUM_KEYPOINTS and len(rows) == 1 + 180

    ev = list(csv.reader((out / "events.csv").open()))
    assert ev[0] == ["foot", "event", "frame", "time_s"]
    for foot, event, frame, t in ev[1:]:
        assert foot in ("left", "right") and event in ("heel_strike", "toe_off")
        assert 0 <= int(frame) < 180 and float(t) == pytest.approx(int(frame) / 30.0, abs=0.02)

    m = json.loads((out / "metrics.json").read_text())
    for key in ("cadence_steps_per_min", "step_time_s", "stride_time_s", "stance_pct", "n_strides", "angles",
                "units", "warnings", "walking_found", "model", "processing"):
        assert key in m, key
    assert m["processing"]["localizer_calls"] == s["localizer_calls"]
    assert m["processing"]["frames"] == 180 and m["processing"]["throughput_fps"] > 0
    assert m["processing"]["overlay_frames"] == 180 and m["processing"]["elapsed_s"] > 0
    assert len(m["model"]["pose_model_sha256"]) == 64
    assert m == json.loads(json.dumps(res.metrics_dict())), "metrics.json is not the typed result's layout"
    assert m["skeleton"]["keypoints"] == list(KEYPOINTS) and len(m["skeleton"]["edges"]) > 10
    typed = res.metrics  # the typed view agrees with metrics.json
    assert typed.walking_found == m["walking_found"] and typed.n_strides == (m["n_strides"] or 0)
    assert typed.cadence_steps_per_min == m["cadence_steps_per_min"]
    assert typed.stance_pct.left == m["stance_pct"]["left"] and typed.units == m["units"]
    assert "NaN" not in (out / "metrics.json").read_text() and "NaN" not in (out / "keypoints.json").read_text()

    html = (out / "report.html").read_text()
    assert "not a medical device" in html and "data:image/png;base64," in html and "overlay.mp4" in html
    with av.open(str(out / "overlay.mp4")) as c:
        st = c.streams.video[0]
        assert st.codec_context.name == "h264"
        assert sum(1 for _ in c.decode(st)) == 180
    if SHIPPED:
        assert m["walking_found"] and m["n_strides"] >= 1


def test_scaled_overlay_draws_the_skeleton_where_the_subject_is(models: dict[str, Path], tmp_path: Path) -> None:
    """--overlay-size below the frame size: marks are drawn at scaled positions, inside the scaled box."""
    import cv2

    out = tmp_path / "small"
    analyze_video(CLIP, out, model=models["pose"], localizer=models["localizer"], threads=1, overlay=True,
                  overlay_size=320)
    entry = json.loads((out / "keypoints.json").read_text())[0]
    t = entry["image_id"]
    with av.open(str(out / "overlay.mp4")) as c:
        drawn = next(f for i, f in enumerate(c.decode(video=0)) if i == t).to_ndarray(format="rgb24")
    with av.open(str(CLIP)) as c:
        plain = next(f for i, f in enumerate(c.decode(video=0)) if i == t).to_ndarray(format="rgb24")
    assert drawn.shape == (180, 320, 3)
    plain = cv2.resize(plain, (320, 180), interpolation=cv2.INTER_LINEAR)
    changed = np.abs(drawn.astype(int) - plain).max(axis=2) > 80
    changed[:30] = False  # the frame counter text
    ys, xs = np.nonzero(changed)
    assert len(xs) >= 20, "nothing drawn"
    x, y, w, h = (np.asarray(entry["box"]) * 0.5).tolist()  # 640x360 -> 320x180
    inside = (xs >= x - 6) & (xs <= x + w + 6) & (ys >= y - 6) & (ys <= y + h + 6)
    assert inside.mean() > 0.8, f"skeleton drawn away from the scaled box ({inside.mean():.2f} inside)"


def test_flip_test_averages_the_mirrored_crop_and_is_recorded(models: dict[str, Path], tmp_path: Path) -> None:
    """--flip-test: one batched run over crop + mirror equals the average of two separate runs, and
    the analysis records that it was used."""
    from gaitpose.codec import decode_heatmaps, flip_back
    from gaitpose.infer.pose import OnnxPoseEstimator

    est = OnnxPoseEstimator(models["pose"], threads=1)
    with av.open(str(CLIP)) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 60).to_ndarray(format="rgb24")
    box = np.array([frame.shape[1] * 0.3, frame.shape[0] * 0.1, frame.shape[1] * 0.3, frame.shape[0] * 0.85])
    x, _ = est.preprocess(frame, box)
    batch = x[None]
    expected = decode_heatmaps(
        0.5 * (est.run_heatmaps(batch) + flip_back(est.run_heatmaps(np.ascontiguousarray(batch[..., ::-1])))),
        est.meta.stride,
    )
    got = est.predict_crops(batch, flip_test=True)
    np.testing.assert_allclose(got[0], expected[0], atol=1e-3)
    np.testing.assert_allclose(got[1], expected[1], atol=1e-5)
    plain = est.predict_crops(batch)
    assert not np.allclose(plain[1], got[1]), "flip test left the scores unchanged"

    out = tmp_path / "flip"
    res = analyze_video(CLIP, out, model=models["pose"], localizer=models["localizer"], threads=1, flip_test=True)
    assert res.processing.frames_with_pose > 0 and res.model.pose_flip_test
    assert not (out / "overlay.mp4").exists(), "overlay rendered without being asked for"
    run = json.loads((out / "metrics.json").read_text())
    assert run["model"]["pose_flip_test"] is True


def write_video(path: Path, frames: list[np.ndarray], fps: int = 30) -> None:
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=fps)
        st.height, st.width = frames[0].shape[:2]
        st.pix_fmt = "yuv420p"
        for f in frames:
            for p in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in st.encode():
            c.mux(p)


def test_no_person_video_raises_and_leaves_no_folder(models: dict[str, Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [np.full((120, 160, 3), 128, np.uint8) for _ in range(10)]
    frames += [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(10)]
    video = tmp_path / "empty_room.mp4"
    write_video(video, frames)
    with pytest.raises(NoPersonError) as info:
        analyze_video(video, tmp_path / "out", model=models["pose"], localizer=models["blank_localizer"], threads=1,
                      overlay=False)
    assert "empty_room.mp4" in str(info.value) and "no person" in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.parametrize("content", [b"", b"this is not a video at all" * 100])
def test_corrupt_or_empty_file_is_a_clear_input_error(models: dict[str, Path], tmp_path: Path,
                                                      content: bytes) -> None:
    bad = tmp_path / "walk.mp4"
    bad.write_bytes(content)
    with pytest.raises(InputError) as info:
        analyze_video(bad, tmp_path / "out", model=models["pose"], localizer=models["localizer"])
    assert "walk.mp4" in str(info.value)
    assert not (tmp_path / "out").exists()
    res = CliRunner().invoke(_app(), ["analyze", str(bad), "--out", str(tmp_path / "out"), "--model",
                                      str(models["pose"]), "--localizer", str(models["localizer"])])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1].startswith("error: ") and "walk.mp4" in res.output


def test_cli_rejects_bad_roi(models: dict[str, Path], tmp_path: Path) -> None:
    res = CliRunner().invoke(_app(), ["analyze", str(CLIP), "--out", str(tmp_path / "o"), "--roi", "1,2,3"])
    assert res.exit_code == 2 and "--roi" in res.output


def test_analyze_path_does_not_import_torch() -> None:
    code = ("import sys, gaitpose.cli, gaitpose.analyze, gaitpose.report, gaitpose.infer.tracker, "
            "gaitpose.infer.localizer, gaitpose.gait.analysis; assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'scipy' not in sys.modules, 'scipy imported (about 0.8 s of CPU per analysis)'")
    subprocess.run([sys.executable, "-c", code], check=True)


def _app():
    from gaitpose.cli import app

    return app


def test_cli_with_depth_sequence(models: dict[str, Path], tmp_path: Path) -> None:
    """Plain video + .npz depth stack (with t_ms) + intrinsics sidecar: depth reaches the analytics."""
    clip = REPO / "tests" / "data" / "pose2sim_cam01.mp4"
    n, w, h = 50, 270, 480
    depth = np.full((n, h, w), 2500, np.uint16)
    t_ms = np.arange(n) * 1000.0 / 30.0 + 5.0  # 5 ms after each colour frame
    np.savez(tmp_path / "depth.npz", depth=depth, t_ms=t_ms)
    cam = {"fx": 400.0, "fy": 400.0, "cx": 134.5, "cy": 239.5, "width": w, "height": h}
    (tmp_path / "depth.intrinsics.json").write_text(json.dumps({"color": cam, "depth": cam}))
    out = tmp_path / "res"
    res = CliRunner().invoke(_app(), ["analyze", str(clip), "--depth", str(tmp_path / "depth.npz"), "--out", str(out),
                                      "--model", str(models["pose"]), "--localizer", str(models["localizer"]),
                                      "--threads", "1", "--height-cm", "175"])
    assert res.exit_code == 0, res.output
    assert "50 frames" in res.output and "report: " in res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["processing"]["depth"] is True and m["processing"]["height_cm"] == 175.0
    assert not any("depth" in w for w in m["warnings"]), m["warnings"]
    assert not (out / "overlay.mp4").exists() and (out / "report.html").exists()
    assert "overlay.mp4" not in (out / "report.html").read_text()


def test_report_from_synthetic_walk_shows_metrics_events_and_plots(tmp_path: Path) -> None:
    """The report pieces on a walker with known gait (no models): events marked, metrics tabulated."""
    from gaitpose.gait.analysis import analyze_gait
    from gaitpose.gait.synthetic import synthetic_walk
    from gaitpose.report import plot_angle_cycles, plot_angles, write_overlay, write_report

    w = synthetic_walk(n_frames=120)
    r = analyze_gait(w.kpts, w.scores, w.fps)
    assert r.metrics["walking_found"] and r.events
    plot_angles(r.angles, w.fps, r.events, tmp_path / "angles.png")
    plot_angle_cycles(r.cycles, tmp_path / "angles_cycle.png")
    frames = [np.full((480, 640, 3), 60, np.uint8) for _ in range(len(w.kpts))]
    assert write_overlay(iter(frames), r.kpts, w.scores, r.events, w.fps, tmp_path / "overlay.mp4") == 120
    hs = next(e for e in r.events if e.event == "heel_strike")
    with av.open(str(tmp_path / "overlay.mp4")) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    heel = r.kpts[hs.frame, KEYPOINTS.index(f"{hs.foot}_heel")].round().astype(int)
    patch = decoded[hs.frame][heel[1] - 12 : heel[1] + 12, heel[0] - 12 : heel[0] + 12].astype(int)
    green = (patch[..., 1] > 150) & (patch[..., 0] < 120) & (patch[..., 2] < 140)
    assert green.sum() > 10, "heel-strike mark not drawn at the heel"
    # Scaled down (long side 320), from planar frames: marks follow the scaled heel.
    from gaitpose.io.planar import YuvImage

    planar = (YuvImage.from_rgb(f) for f in frames)
    assert write_overlay(planar, r.kpts, w.scores, r.events, w.fps, tmp_path / "small.mp4", max_side=320) == 120
    with av.open(str(tmp_path / "small.mp4")) as c:
        small = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert small[0].shape == (240, 320, 3)
    sx, sy = (np.round((r.kpts[hs.frame, KEYPOINTS.index(f"{hs.foot}_heel")] + 0.5) * 0.5 - 0.5)).astype(int)
    patch = small[hs.frame][sy - 8 : sy + 8, sx - 8 : sx + 8].astype(int)
    assert ((patch[..., 1] > 150) & (patch[..., 0] < 120) & (patch[..., 2] < 140)).sum() > 5
    page = write_report(tmp_path / "report.html", video_name="walk.mp4", summary={"frames": 120, "fps": 30.0},
                        metrics=r.metrics, events=r.events, warnings=["example warning"],
                        model_info={"pose_model": "model.onnx"}, angles_png=tmp_path / "angles.png",
                        cycles_png=tmp_path / "angles_cycle.png", overlay_name="overlay.mp4").read_text()
    assert page.count("data:image/png;base64,") == 2 and "example warning" in page
    cad = r.metrics["cadence_steps_per_min"]
    assert f"{cad:.2f}" in page or f"{cad:.1f}" in page  # the cadence is shown (the report's rounding)
    assert page.count("<td>heel strike</td>") == sum(e.event == "heel_strike" for e in r.events)
    assert "not a medical device" in page and "<script" not in page


def test_track_looks_back_to_frames_before_the_subject_was_detected() -> None:
    """The localiser finds the subject only from frame 6 on (walking into view); the look-back
    recovers the earlier frames where the pose model, given the propagated box, is confident --
    and stops at the first frame where it is not."""
    from gaitpose.infer.pose import PoseResult
    from gaitpose.infer.track import track_video
    from gaitpose.io import ColorFrame

    def subject(t: int) -> np.ndarray:
        return np.array([400.0 - 6 * t, 80.0, 90.0, 260.0])

    def pose_of(t: int) -> np.ndarray:
        x, y, w, h = subject(t)
        rng = np.random.default_rng(t)
        pts = np.column_stack([x + rng.uniform(0, w, NUM_KEYPOINTS), y + rng.uniform(0, h, NUM_KEYPOINTS)])
        pts[0], pts[1] = (x, y), (x + w, y + h)
        return pts.astype(np.float32)

    class Estimator:
        def predict(self, rgb: np.ndarray, boxes: list, flip_test: bool = False) -> list:
            t = int(rgb[0, 0, 0])
            bx, by, bw, bh = boxes[0]
            sx, sy, sw, sh = subject(t)
            inside = bx <= sx + 5 and by <= sy + 5 and bx + bw >= sx + sw - 5 and by + bh >= sy + sh - 5
            score = 0.9 if inside and t >= 2 else 0.05  # frames 0-1: too little of the body in view
            return [PoseResult(pose_of(t), np.full(NUM_KEYPOINTS, score, np.float32), np.asarray(boxes[0]))]

    class Localizer:
        def detect(self, rgb: np.ndarray) -> list:
            t = int(rgb[0, 0, 0])
            return [(subject(t), 0.9)] if t >= 6 else []

    def frames():
        for t in range(20):
            rgb = np.zeros((360, 640, 3), np.uint8)
            rgb[0, 0, 0] = t
            yield ColorFrame(index=t, t_ms=t * 1000 / 30, rgb=rgb)

    kept: dict[int, np.ndarray] = {}
    track = track_video(frames(), Estimator(), Localizer(), lookback=15,  # type: ignore[arg-type]
                        keep_frame=lambda t, image, box: kept.setdefault(t, box))
    assert track.accepted.tolist() == [False, False] + [True] * 18
    assert sorted(kept) == list(range(2, 20)), "keep_frame must see every frame with the subject, look-back too"
    np.testing.assert_allclose(kept[3], track.boxes[3])
    assert track.extra["backfilled_frames"] == 4  # frames 5, 4, 3, 2
    np.testing.assert_allclose(track.keypoints[3], pose_of(3))
    plain = track_video(frames(), Estimator(), Localizer(), lookback=0)  # type: ignore[arg-type]
    assert plain.accepted.tolist() == [False] * 6 + [True] * 14


def test_overlay_toe_off_mark_follows_the_foot(tmp_path: Path) -> None:
    """A toe-off mark is drawn where the toe is now, not left where the toe left the ground."""
    from gaitpose.gait.analysis import analyze_gait
    from gaitpose.gait.synthetic import synthetic_walk
    from gaitpose.report import write_overlay

    w = synthetic_walk(n_frames=120)
    r = analyze_gait(w.kpts, w.scores, w.fps)
    to = next(e for e in r.events if e.event == "toe_off" and e.frame + 6 < len(r.kpts))
    k = KEYPOINTS.index(f"{to.foot}_toe")
    then, now = r.kpts[to.frame, k], r.kpts[to.frame + 6, k]
    assert np.hypot(*(now - then)) > 25, "the synthetic toe should have moved on"
    frames = [np.full((480, 640, 3), 60, np.uint8) for _ in range(len(w.kpts))]
    write_overlay(iter(frames), r.kpts, np.zeros_like(w.scores), [to], w.fps, tmp_path / "o.mp4", max_side=None)
    with av.open(str(tmp_path / "o.mp4")) as c:
        img = next(f for i, f in enumerate(c.decode(video=0)) if i == to.frame + 6).to_ndarray(format="rgb24")
    magenta = (img[..., 0] > 150) & (img[..., 1] < 110) & (img[..., 2] > 130)
    ys, xs = np.nonzero(magenta)
    assert len(xs) > 10, "no toe-off mark"
    centre = np.array([np.median(xs), np.median(ys)])
    assert np.hypot(*(centre - now)) < np.hypot(*(centre - then)), "mark left behind on the floor"
