"""Benchmark suite: reference nets match their published sizes; ``gaitpose bench --quick`` writes its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gaitpose.cli import app

torch.set_num_threads(1)

DATA = Path(__file__).parent / "data"
CLIP = DATA / "sports2d_walk.mp4"


@pytest.mark.parametrize(
    ("name", "params_m", "gmacs", "shapes"),
    [
        # published (17 joints): 34.0 M / 5.46 GFLOPs; the 21-joint head adds ~1 k params
        ("simplebaseline_r50", (33.5, 34.5), (5.3, 5.6), [(1, 21, 64, 48)]),
        # ResNet-50 (23.5 M) + DUC(512->1024) + DUC(256->512) + 3x3 head
        ("fastpose_r50", (28.5, 30.5), (5.5, 6.3), [(1, 21, 64, 48)]),
        # published RTMPose-t: 3.34 M (17 joints) / 3.51 M (26 joints), 0.36 GFLOPs
        ("rtmpose_t", (3.2, 3.6), (0.33, 0.40), [(1, 21, 384), (1, 21, 512)]),
    ],
)
def test_reference_nets_sizes_and_outputs(name, params_m, gmacs, shapes):
    from benchmarks.reference_nets import build_reference, count_macs
    from gaitpose.nn import count_params_macs

    model = build_reference(name)
    seen: list[tuple[int, ...]] = []
    model.register_forward_hook(
        lambda _m, _i, o: seen.extend(tuple(t.shape) for t in (o if isinstance(o, tuple) else (o,))))
    params, macs = count_macs(model)  # one forward pass at 256x192
    assert params_m[0] <= params / 1e6 <= params_m[1], params
    assert gmacs[0] <= macs / 1e9 <= gmacs[1], macs
    assert seen == shapes
    if name == "simplebaseline_r50":
        # the shared counter skips ConvTranspose2d; the ~1.4 G MACs of the three deconvs must be added
        _, base = count_params_macs(model, (256, 192))
        assert 1.3e9 < macs - base < 1.5e9


def _export_tiny_models(root: Path) -> None:
    """A tiny random student and localizer, exported exactly as shipped models are (with metadata)."""
    from gaitpose.export.onnx_export import export_onnx, meta_from_checkpoint
    from gaitpose.nn import ModelConfig, build_model
    from gaitpose.nn.localizer import LocalizerConfig, LocalizerForExport, build_localizer
    from gaitpose.train.localizer import localizer_meta

    torch.manual_seed(0)
    cfg = ModelConfig(stages=[(1, 8, 1, 1), (2, 16, 1, 2), (2, 16, 1, 2), (2, 24, 1, 2), (2, 32, 1, 2)],
                      stem_channels=8, decoder_channels=16)
    export_onnx(build_model(cfg), meta_from_checkpoint(cfg), root / "student" / "model.onnx", simplify=False)
    lc = LocalizerConfig(stem_channels=8, stages=[(16, 1), (16, 1), (24, 1), (32, 1)], decoder_channels=16)
    export_onnx(LocalizerForExport(build_localizer(lc)), localizer_meta(lc), root / "localizer" / "model.onnx",
                simplify=False)


@pytest.mark.slow
def test_bench_quick_writes_report(tmp_path, labelled_crops):
    models = tmp_path / "models"
    _export_tiny_models(models)
    out = tmp_path / "bench"
    res = CliRunner().invoke(app, ["bench", "--quick", "--video", str(CLIP), "--models-dir", str(models),
                                   "--labels", str(labelled_crops), "--out", str(out),
                                   "--cache-dir", str(tmp_path / "cache"),
                                   "--throughput-video", str(DATA / "pose2sim_cam01.mp4")])
    assert res.exit_code == 0, res.output
    for name in ("bench.md", "bench.json", "bench.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "bench.json").read_text())
    assert data["quick"] is True
    assert data["video"]["frames"] == 180
    # static cost: the RTMPose-t-sized reference and the tiny student
    assert [r["key"] for r in data["references"]] == ["rtmpose_t"]
    assert 3.2e6 < data["references"][0]["params"] < 3.6e6
    assert data["student_cost"]["student_fp32"]["params"] < 50_000
    # latency measured side by side for both, on real crops
    stats = {(s["model"], s["threads"]): s for s in data["latency"]["stats"]}
    assert set(stats) == {("student_fp32", 1), ("rtmpose_t", 1)}
    for s in stats.values():
        assert 0 < s["min_ms"] <= s["median_ms"] <= s["p90_ms"]
    # the tiny student does ~4 % of RTMPose-t's MACs: it must be measurably faster
    assert stats[("student_fp32", 1)]["median_ms"] < stats[("rtmpose_t", 1)]["median_ms"]
    # teacher pipelines ran on real frames (quick mode: 60 of them)
    pipes = data["pipelines"]
    assert pipes["teacher_fullframe"]["frames"] == 60
    assert pipes["teacher_fullframe"]["fps"] > 0
    # one-off costs are counted separately: setup (import + graph) > 0, whole-job rate below the loop rate
    tf = pipes["teacher_fullframe"]
    assert tf["setup_s"] > 0 and tf["total_s"] == pytest.approx(tf["setup_s"] + tf["seconds"] + tf["post_s"], abs=2e-3)
    assert 0 < tf["fps_total"] < tf["fps"]
    assert pipes["teacher_crops"]["frames"] == 60
    assert pipes["teacher_crops"]["detected_frames"] > 30
    assert pipes["teacher_crops"]["fps"] > 0
    # analyze with a random student either runs or says plainly why not (nobody accepted as a person)
    assert "fps" in pipes["analyze"] or "no person" in pipes["analyze"]["error"]
    # accuracy on the held-out labels is measured, reported as it is (random weights: low)
    acc = data["accuracy"]["student_fp32"]
    assert 0.0 <= acc["PCK@0.1"] <= 1.0 and acc["num_samples"] > 0
    assert 0.0 <= acc["PCK@0.05_feet"] <= 1.0 and acc["angle_mae_deg"]["all"] >= 0.0
    assert 0.0 <= acc["implausible_angle_share"]["all"] <= 1.0
    assert "default" not in data["accuracy"]  # the default of this models folder is the student measured
    heads = {h["name"]: h for h in data["headline"]}
    assert {"student_vs_simplebaseline_latency", "student_vs_rtmpose_t_latency", "analyze_vs_teacher_throughput",
            "analyze_vs_teacher_loop_throughput", "student_pck01", "cadence_diff_pct"} <= set(heads)
    assert heads["student_vs_simplebaseline_latency"]["pass"] is None  # ResNet-50s skipped in quick mode
    assert heads["student_vs_rtmpose_t_latency"]["measured"] > 1.0
    assert heads["student_pck01"]["pass"] is (acc["PCK@0.1"] >= 0.90)
    # decode alone, teacher and analyze loops on the extra video: decoding is a floor under both
    tv = data["throughput_by_video"]["pose2sim_cam01.mp4"]
    assert (tv["codec"], tv["size"], tv["frames"]) == ("h264", [270, 480], 50)
    assert 0 < tv["decode_ms"] < tv["teacher_ms"]
    assert tv["ceiling"] == pytest.approx(tv["teacher_ms"] / tv["decode_ms"], rel=1e-2)
    assert tv["teacher_found"] > 40
    if "error" in tv:  # the random student may accept nobody
        assert "no person" in tv["error"]
    else:
        assert tv["analyze_ms"] > 0 and tv["ratio"] == pytest.approx(tv["teacher_ms"] / tv["analyze_ms"], rel=1e-2)
        assert heads["analyze_vs_teacher_loop_throughput_worst_video"]["measured"] == tv["ratio"]
    md = (out / "bench.md").read_text()
    assert "## Throughput across videos" in md and "| pose2sim_cam01.mp4 | h264 | 270x480 | 50 |" in md
    for section in ("## Headline", "## Per-crop latency", "## Teacher vs analyze", "## Cadence", "## Accuracy"):
        assert section in md
    assert "rtmpose_t" in md and "![latency](bench.png)" in md
    assert "| model | feet PCK@0.05 | hip MAE | knee MAE | ankle MAE | all MAE | all MAE, legs either way " in md


def test_bench_missing_video_is_one_line_error(tmp_path):
    out = tmp_path / "bench"
    res = CliRunner().invoke(app, ["bench", "--video", str(tmp_path / "nope.mp4"), "--out", str(out)])
    assert res.exit_code == 2
    assert "nope.mp4: video file does not exist" in res.output
    assert not (out / "bench.md").exists()
    res = CliRunner().invoke(app, ["bench", "--video", str(CLIP), "--throughput-video", str(tmp_path / "gone.mkv"),
                                   "--out", str(out)])
    assert res.exit_code == 2
    assert "gone.mkv: video file does not exist" in res.output
    assert not (out / "bench.md").exists()


def test_default_throughput_videos_are_the_video_and_its_neighbours(tmp_path):
    from benchmarks.suite import default_throughput_videos

    for name in ("b.mp4", "a.MKV", "notes.txt", "c.webm"):
        (tmp_path / name).write_bytes(b"")
    assert default_throughput_videos(tmp_path / "b.mp4") == (tmp_path / "b.mp4", tmp_path / "a.MKV",
                                                           tmp_path / "c.webm")


def test_cadence_comparison_on_a_known_shift():
    """The same walk delayed by one frame: cadence agrees, every heel strike is 1 frame late, both pass."""
    import numpy as np

    from benchmarks.cadence_vs_teacher import compare_tracks
    from benchmarks.teacher_vs_analyze import KeypointTrack
    from gaitpose.gait.synthetic import synthetic_walk

    walk = synthetic_walk(n_frames=200, fps=30.0)
    frames = np.arange(len(walk.kpts))
    teacher = KeypointTrack(frames, walk.kpts.astype(np.float32), walk.scores.astype(np.float32), 30.0)
    student = KeypointTrack(frames + 1, teacher.keypoints, teacher.scores, 30.0)
    cmp = compare_tracks(student, teacher, (0, 200))
    assert cmp.teacher.cadence_spm is not None and len(cmp.teacher.heel_strikes) >= 4
    assert abs(cmp.cadence_diff_pct) < 1.5
    diffs = [d["diff"] for d in cmp.heel_strike_diffs]
    assert len(diffs) >= 4 and all(d in (0, 1, 2) for d in diffs) and np.median(diffs) == 1
    assert cmp.cadence_pass and cmp.heel_strike_pass
    # a student that misses the walk entirely fails plainly instead of passing vacuously
    blind = KeypointTrack(frames, np.full_like(teacher.keypoints, np.nan), np.zeros_like(teacher.scores), 30.0)
    bad = compare_tracks(blind, teacher, (0, 200))
    assert not bad.cadence_pass and not bad.heel_strike_pass and "student: no heel strikes" in bad.note
