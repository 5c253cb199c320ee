"""Domain check of specialised pose models (gaitpose.infer.domain), the warning and the fallback.

Real clips, real ONNX Runtime, the shipped student and general model. The out-of-domain video
is the committed lab clip turned 90 degrees (made here with PyAV): the student, trained on
upright people only, loses the subject on it, while the general model still finds it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from service_fixtures import live_server_factory_fixture, make_settings, upload, wait_terminal  # noqa: F401
from typer.testing import CliRunner

from benchmarks.domain_check import transformed

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "data" / "pose2sim_cam01.mp4"
STUDENT = REPO / "models" / "student" / "model.onnx"
GENERAL = REPO / "models" / "general" / "blazepose_full.onnx"
LOCALIZER = REPO / "models" / "localizer" / "model.onnx"
pytestmark = pytest.mark.skipif(not all(p.is_file() for p in (STUDENT, GENERAL, LOCALIZER)),
                                reason="shipped models not installed")


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return transformed(CLIP, tmp_path_factory.mktemp("ood") / "cam01_rot90.mp4", "rot90", max_frames=40)


def _analyze(video: Path, out: Path, *args: str) -> tuple[int, str]:
    from gaitpose.cli import app

    r = CliRunner().invoke(app, ["analyze", str(video), "--out", str(out), "--localizer", str(LOCALIZER), *args])
    return r.exit_code, r.output


def test_in_domain_clip_with_the_student_gives_no_warning(tmp_path: Path) -> None:
    code, output = _analyze(CLIP, tmp_path / "out", "--model", str(STUDENT))
    assert code == 0, output
    assert "outside its domain" not in output
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["domain"]["verdict"] == "in_domain" and m["domain"]["reasons"] == []
    assert m["domain"]["reference"]["model_sha256"] == m["model"]["pose_model_sha256"]
    assert m["domain"]["stats"]["accepted_share"] > 0.9 and m["model"]["fallback_from"] is None


def test_out_of_domain_video_warns_in_cli_metrics_and_report(rotated: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = _analyze(rotated, out, "--model", str(STUDENT))
    assert code == 0, output
    lines = [ln for ln in output.splitlines() if "outside its domain" in ln]
    assert len(lines) == 1 and lines[0].startswith("warning: pose model model.onnx"), output
    m = json.loads((out / "metrics.json").read_text())
    dom = m["domain"]
    assert dom["verdict"] == "out_of_domain" and dom["reasons"] and dom["fallback_to"] is None
    # the reasons are the stats against the reference, in words: the student barely holds the subject
    st, ref = dom["stats"], dom["reference"]["stats"]
    low_acc = st["accepted_share"] < 0.5 * ref["accepted_share"]
    # confidence is judged only on enough accepted frames (the rules' min_frames): few frames, no verdict
    enough = (st["accepted_frames"] or 0) >= dom["rules"]["min_frames"]
    low_conf = enough and st["confidence_median"] is not None and st["confidence_median"] < ref["confidence_p10"]
    assert low_acc or low_conf
    assert (not low_acc or any("accepted in" in r for r in dom["reasons"]))
    assert (not low_conf or any("median keypoint confidence" in r for r in dom["reasons"]))
    assert m["model"]["pose_model"] == "model.onnx" and m["model"]["fallback_from"] is None
    assert any("outside its domain" in w for w in m["warnings"])
    assert "outside its domain" in (out / "report.html").read_text()


def test_fallback_reruns_with_the_general_model_and_says_so(rotated: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = _analyze(rotated, out, "--model", str(STUDENT), "--fallback")
    assert code == 0, output
    assert "results are from the general model (blazepose_full.onnx)" in output
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"]["pose_model"] == "blazepose_full.onnx" and m["model"]["fallback_from"] == "model.onnx"
    assert m["domain"]["verdict"] == "out_of_domain" and m["domain"]["fallback_to"] == "blazepose_full.onnx"
    # the kept run is the general model's: it holds the subject on every frame, confidently, where the
    # student did not (its figures are the domain block's)
    assert m["processing"]["frames_with_pose"] >= max(m["domain"]["stats"]["accepted_frames"], 38)
    scores = [d["score"] for d in json.loads((out / "keypoints.json").read_text())]
    student = m["domain"]["stats"]["confidence_median"] or 0.0
    assert float(np.median(scores)) > max(0.9, student + 0.2)
    # the output folder was written once: no trace of the first run beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_general_model_is_the_default_and_is_not_domain_checked(rotated: Path, tmp_path: Path) -> None:
    code, output = _analyze(rotated, tmp_path / "out")  # no --model
    assert code == 0, output
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["model"]["pose_model"] == "blazepose_full.onnx"
    assert m["domain"]["verdict"] == "unchecked" and "general model" in m["domain"]["note"]
    assert "outside its domain" not in output


def _student_copy(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    shutil.copy(STUDENT, d / "model.onnx")
    return d / "model.onnx"


def test_broken_sidecar_is_a_one_line_error_before_any_work(tmp_path: Path) -> None:
    model = _student_copy(tmp_path)
    side = model.parent / "meta.json"
    side.write_text("{not json")
    code, output = _analyze(CLIP, tmp_path / "out", "--model", str(model))
    errors = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(errors) == 1 and "meta.json" in errors[0] and "not readable JSON" in errors[0], output
    assert not (tmp_path / "out").exists()
    side.write_text(json.dumps({"domain_reference": {"model.onnx": {"model_sha256": "x", "stats": {"jitter_p90": 1}}}}))
    code, output = _analyze(CLIP, tmp_path / "out", "--model", str(model))
    errors = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(errors) == 1 and "broken domain reference" in errors[0], output
    assert "confidence_median" in errors[0] and not (tmp_path / "out").exists()


def test_reference_round_trip_and_stale_reference(tmp_path: Path) -> None:
    """domain_reference (what `gaitpose specialise` calls) -> meta.json -> the loader; a re-exported file is noticed."""
    from gaitpose.infer.domain import domain_reference, load_domain_reference, store_domain_reference

    model = _student_copy(tmp_path)
    (model.parent / "meta.json").write_text(json.dumps({"kept": 1}))
    block = domain_reference(model, [CLIP], localizer=LOCALIZER, threads=1, max_frames=30)
    assert block["stats"]["frames"] == 30 and list(block["recordings"]) == ["pose2sim_cam01"]
    store_domain_reference(model, block)
    meta = json.loads((model.parent / "meta.json").read_text())
    assert meta["kept"] == 1 and "model.onnx" in meta["domain_reference"]
    ref = load_domain_reference(model)
    assert ref.stats == block["stats"] and not ref.stale
    with model.open("ab") as fh:  # the file changes after the reference was measured
        fh.write(b"\0")
    ref = load_domain_reference(model)
    assert ref.stats is None and ref.stale and "sha256 differs" in ref.note


def _walker(fps: float, seconds: float = 4.0, noise_px: float = 1.5):  # -> PoseTrack
    """A body swinging its keypoints (a 1 Hz sway of 150 px, 400 px tall) plus per-frame network noise."""
    from gaitpose.infer.track import PoseTrack

    n = round(fps * seconds)
    t = np.arange(n) / fps
    rng = np.random.default_rng(7)
    base = rng.uniform(100, 500, (21, 2))
    phase = rng.uniform(0, 2 * np.pi, 21)
    kp = np.repeat(base[None], n, axis=0)
    kp[:, :, 0] += 150 * np.sin(2 * np.pi * t[:, None] + phase[None])
    kp += rng.normal(0, noise_px, kp.shape)
    boxes = np.tile([100.0, 100.0, 300.0, 400.0], (n, 1))
    return PoseTrack(kp, np.full((n, 21), 0.9), boxes, t, np.ones(n, bool))


def test_jitter_is_measured_over_the_same_time_step_at_any_frame_rate() -> None:
    """A 60 fps video and the same video at 30 fps get the same jitter; one frame apart they would not."""
    import dataclasses

    from gaitpose.infer.domain import domain_stats, jitter_stride

    assert [jitter_stride(np.arange(10) / f, 1 / 30) for f in (25, 30, 50, 60, 120)] == [1, 1, 2, 2, 4]
    assert jitter_stride(np.arange(10) / 60, None) == 1
    fast = _walker(60.0)
    slow = dataclasses.replace(fast, keypoints=fast.keypoints[::2], scores=fast.scores[::2],
                               boxes=fast.boxes[::2], times_s=fast.times_s[::2], accepted=fast.accepted[::2])
    j60, j30 = domain_stats(fast)["jitter_median"], domain_stats(slow)["jitter_median"]
    assert abs(j60 / j30 - 1) < 0.1, (j60, j30)
    one_frame = domain_stats(fast, step_s=None)["jitter_median"]  # how version-1 references measured
    assert one_frame < 0.8 * j30, (one_frame, j30)
    # a gap (frames not accepted) is not bridged: nothing measured across it
    gap = dataclasses.replace(slow, accepted=np.where(np.arange(len(slow.accepted)) % 10 == 5, False, True))
    assert domain_stats(gap)["jitter_frames"] < domain_stats(slow)["jitter_frames"]


def test_version_1_reference_is_checked_one_frame_apart(tmp_path: Path) -> None:
    """A reference measured before the time step existed keeps being compared the way it was measured."""
    from gaitpose.fsutil import file_sha256
    from gaitpose.infer.domain import load_domain_reference

    model = _student_copy(tmp_path)
    shutil.copy(STUDENT.parent / "meta.json", model.parent / "meta.json")
    meta = json.loads((model.parent / "meta.json").read_text())
    entry = meta["domain_reference"]["model.onnx"]
    assert load_domain_reference(model).step_s == entry["jitter_step_s"] == 1 / 30
    entry.pop("jitter_step_s")
    entry["version"], entry["model_sha256"] = 1, file_sha256(model)
    (model.parent / "meta.json").write_text(json.dumps(meta))
    ref = load_domain_reference(model)
    assert ref.stats is not None and ref.step_s is None


def test_service_job_record_carries_the_domain_warning(rotated: Path, tmp_path: Path, live_server_factory) -> None:
    # fallback off: the student's own results, with the warning; fallback on (the default): the general model's
    for fallback in (False, True):
        settings = make_settings(tmp_path / str(fallback), STUDENT, LOCALIZER, model_dir=REPO / "models",
                                 overlay=False, fallback=fallback)
        srv = live_server_factory(settings)
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            job = wait_terminal(c, upload(c, rotated).json()["id"])
        assert job["status"] == "succeeded", job
        domain = [w for w in job["warnings"] if "outside its domain" in w]
        assert len(domain) == 1, job["warnings"]
        if fallback:
            assert "results are from the general model" in domain[0]
            assert job["summary"]["fallback_from"] == "model.onnx"
            assert job["summary"]["pose_model"] == "blazepose_full.onnx"
        else:
            assert "its keypoints may be wrong" in domain[0] and job["summary"]["domain_verdict"] == "out_of_domain"


def test_student_that_sees_nobody_names_itself_and_the_way_out(tmp_path: Path) -> None:
    """The Sports2D clip upside down: the student accepts no frame at all. Without --fallback the
    one-line error says it was the specialised model outside its domain; with it the general model runs
    too and, finding nobody upside down either, the error no longer blames the specialised model."""
    sports = REPO / "tests" / "data" / "sports2d_walk.mp4"
    flipped = transformed(sports, tmp_path / "sports2d_flip.mp4", "flip", max_frames=40)
    code, output = _analyze(flipped, tmp_path / "a", "--model", str(STUDENT))
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert code != 0 and len(lines) == 1, output
    assert "no person found" in lines[0] and "outside its domain" in lines[0] and "--fallback" in lines[0]
    assert not (tmp_path / "a" / "metrics.json").exists()
    code, output = _analyze(flipped, tmp_path / "b", "--model", str(STUDENT), "--fallback")
    assert code != 0 and "no person found in 40 frames" in output and "outside its domain" not in output, output
