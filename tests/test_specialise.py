"""``gaitpose specialise``: a real end-to-end run on two tiny clips, its resume, and its refusals.

The clips are cut from the repository's ``tests/data/pose2sim_cam01.mp4`` (BSD-3, see
``tests/data/README.md``) into two recordings; the run labels a few frames with MediaPipe, trains one
epoch from the shipped student, exports, quantises and evaluates on the held-out clip, and the
resulting ``model.onnx`` is fed to ``gaitpose analyze``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gaitpose.cli import app
from gaitpose.specialise import STAGES, pick_target_macs, plan_label_stride, plan_prune, plan_training

DATA = Path(__file__).parent / "data"
CLIP = DATA / "pose2sim_cam01.mp4"
SHIPPED = Path(__file__).resolve().parents[1] / "models" / "student"
SHIPPED_UNPRUNED = SHIPPED / "model.unpruned.onnx"


def _cut(src: Path, dst: Path, start: int, stop: int) -> Path:
    """Frames [start, stop) of ``src`` re-encoded as H.264 into ``dst``."""
    import av

    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        out = av.open(str(dst), "w")
        enc = out.add_stream("libx264", rate=30)
        enc.width, enc.height, enc.pix_fmt = stream.codec_context.width, stream.codec_context.height, "yuv420p"
        for i, frame in enumerate(inp.decode(stream)):
            if start <= i < stop:
                for pkt in enc.encode(frame.reformat(format="yuv420p")):
                    out.mux(pkt)
        for pkt in enc.encode():
            out.mux(pkt)
        out.close()
    return dst


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("clips")
    return [_cut(CLIP, d / "walk_a.mp4", 0, 25), _cut(CLIP, d / "walk_b.mp4", 25, 50)]


def _args(clips: list[Path], out: Path) -> list[str]:
    # Tiny and fast: 4 frames per clip, one epoch, no pruning (the pruner has its own tests).
    return ["specialise", *map(str, clips), "--out", str(out), "--minutes", "1", "--epochs", "1",
            "--target-macs", "1", "--max-frames", "4", "--stride", "6", "--threads", "2"]


@pytest.mark.skipif(not (SHIPPED / "model.onnx").exists(), reason="needs the shipped student as the starting network")
def test_end_to_end_model_plugs_into_analyze_and_rerun_resumes(clips: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "clinic"
    runner = CliRunner()
    res = runner.invoke(app, _args(clips, out))
    assert res.exit_code == 0, res.output
    for i, stage in enumerate(STAGES, 1):
        assert f"[{i}/{len(STAGES)}] {stage}: done in" in res.output
        assert (out / "work" / "state" / f"{stage}.json").is_file()
    for name in ("model.onnx", "meta.json", "MODEL_CARD.md", "report.html", "figures/accuracy.png"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "meta.json").read_text())
    # One clip trained on, the other held out (split by recording), evaluated against the labels.
    assert sorted(meta["recordings"]["train"] + meta["recordings"]["held_out"]) == ["walk_a", "walk_b"]
    assert len(meta["recordings"]["held_out"]) == 1
    m = meta["evaluation"]["metrics"]["specialised"]
    assert 0.0 <= m["PCK@0.1"] <= 1.0 and 0.0 <= m["PCK@0.1_feet"] <= 1.0
    # Started from the shipped student and fine-tuned one epoch: it must still agree with the teacher.
    assert m["PCK@0.1"] > 0.5
    assert meta["train"]["init"].endswith("model.onnx")
    assert "general default" in meta["evaluation"]["metrics"]
    assert meta["evaluation"]["speedup_vs_general"] > 0
    assert meta["recordings"]["held_out"][0] in (out / "MODEL_CARD.md").read_text()
    sha = meta["files"]["model.onnx"]["sha256"]
    # The domain check's reference, measured on both clips with the model that ships as model.onnx.
    ref = meta["domain_reference"]["model.onnx"]
    assert ref["model_sha256"] == sha and sorted(ref["recordings"]) == ["walk_a", "walk_b"]
    assert 0.0 < ref["stats"]["confidence_median"] <= 1.0

    # The output folder (or its model.onnx) is what `gaitpose analyze --model` takes, and its runs are checked.
    res = runner.invoke(app, ["analyze", str(clips[0]), "--model", str(out), "--no-overlay",
                              "--out", str(tmp_path / "analysis")])
    assert res.exit_code == 0, res.output
    assert "25 frames" in res.output
    assert (tmp_path / "analysis" / "keypoints.json").stat().st_size > 0
    domain = json.loads((tmp_path / "analysis" / "metrics.json").read_text())["domain"]
    assert domain["verdict"] == "in_domain", domain  # one of the clinic's own recordings

    # Re-running the same command skips every finished stage and leaves the model as it was.
    t0 = time.perf_counter()
    again = runner.invoke(app, _args(clips, out))
    assert again.exit_code == 0, again.output
    for i, stage in enumerate(STAGES, 1):
        assert f"[{i}/{len(STAGES)}] {stage}: done in an earlier run, skipped" in again.output
    assert time.perf_counter() - t0 < 20
    meta2 = json.loads((out / "meta.json").read_text())
    assert meta2["files"]["model.onnx"]["sha256"] == sha


def _one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: ")
    return lines[0]


def test_bad_input_is_refused_in_one_line_before_any_work(clips: list[Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    missing = tmp_path / "missing.mp4"
    line = _one_line_error(runner.invoke(app, ["specialise", str(clips[0]), str(missing), "--out", str(out)]))
    assert str(missing) in line and "does not exist" in line

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video at all" * 10)
    line = _one_line_error(runner.invoke(app, ["specialise", str(clips[0]), str(corrupt), "--out", str(out)]))
    assert str(corrupt) in line

    line = _one_line_error(runner.invoke(app, ["specialise", str(clips[0]), "--out", str(out)]))
    assert "at least 2 recordings" in line

    # Two recordings of one subject cannot be split into train and held-out either.
    csv = tmp_path / "subjects.csv"
    csv.write_text("recording,subject\nwalk_a,p1\nwalk_b,p1\n")
    line = _one_line_error(runner.invoke(app, ["specialise", *map(str, clips), "--subjects-csv", str(csv),
                                               "--out", str(out)]))
    assert "1 subject" in line

    line = _one_line_error(runner.invoke(app, ["specialise", *map(str, clips), "--roi", "1,2,3", "--out", str(out)]))
    assert "--roi" in line
    assert not out.exists()  # nothing was started

    # A folder holding a user's other files is never used as the output.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    line = _one_line_error(runner.invoke(app, ["specialise", *map(str, clips), "--out", str(mine)]))
    assert "not a `gaitpose specialise` run" in line
    assert (mine / "notes.txt").read_text() == "keep me"


def test_budget_planning_fits_the_time_left() -> None:
    # 600 s left, 10 s per epoch, 60 s reserve: all of the rest trains when no pruning is needed ...
    assert plan_training(600, 10, prune=False, reserve_s=60) == (54, 0)
    # ... and 60 % trains, the rest prunes (pruning epochs cost 1.4 training epochs) when it is.
    train, prune = plan_training(600, 10, prune=True, reserve_s=60)
    assert train == 32 and prune == 15
    assert train * 10 + prune * 14 <= 600 - 60
    # Out of time: still one epoch, so the run ends with a model.
    assert plan_training(5, 10, prune=False, reserve_s=60)[0] == 1
    split = plan_prune(15)
    assert split["sparsity_epochs"] + split["steps"] * split["finetune_epochs"] + split["final_epochs"] == 15
    assert split["steps"] >= 1 and split["final_epochs"] >= 1
    assert pick_target_macs(1.0, 2.0) == 1.0  # fits the budget: no pruning
    assert 0.25 <= pick_target_macs(4.0, 2.0) < 0.5
    assert pick_target_macs(1.0, None) == 1.0
    # 300 frames at 0.25 s on 2 workers fit a third of 20 min; 6000 frames need every 2nd.
    assert plan_label_stride(300, 1200, 2) == 1
    assert plan_label_stride(6000, 1200, 2) == 2


@pytest.mark.parametrize("name", ["model.unpruned.onnx", "model.onnx"])
def test_init_from_the_shipped_onnx_reproduces_it(name: str, tmp_path: Path) -> None:
    """The BN-folded export (pruned or not), rebuilt as a trainable torch network, computes what the ONNX
    computes, and survives a checkpoint round trip."""
    import torch

    from gaitpose.infer.pose import OnnxPoseEstimator
    from gaitpose.nn.checkpoint import is_pruned, load_model, model_config_of, save_checkpoint
    from gaitpose.specialise import model_from_onnx

    path = SHIPPED / name
    if not path.exists():
        pytest.skip(f"{path} is not shipped")
    est = OnnxPoseEstimator(path, threads=1)
    x = np.random.default_rng(0).standard_normal((4, 3, *est.meta.input_size)).astype(np.float32)
    model = model_from_onnx(path, x)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    ref = est.run_heatmaps(x)
    assert np.abs(got - ref).max() < 1e-4
    ckpt = save_checkpoint(tmp_path / "init.pt", model, model_config_of(model), pruned=is_pruned(model))
    again, _, _ = load_model(ckpt)
    with torch.no_grad():
        assert np.abs(again(torch.from_numpy(x)).numpy() - got).max() < 1e-6
    # In training mode the BatchNorms normalise with batch statistics close to the calibration ones.
    model.train()
    with torch.no_grad():
        got_train = model(torch.from_numpy(x)).numpy()
    assert np.abs(got_train - ref).max() < 1e-2


def test_labels_digest_follows_the_labels_not_the_file_date(tmp_path: Path) -> None:
    """A re-run rewrites labels.json with a new date; only new images/annotations redo later stages."""
    from gaitpose.specialise import _labels_digest

    base = {"images": [{"id": 1}], "annotations": [{"id": 1, "keypoints": [1, 2, 2]}], "categories": []}
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    a.write_text(json.dumps({**base, "info": {"date_created": "2026-01-01"}}))
    b.write_text(json.dumps({**base, "info": {"date_created": "2026-12-07"}}))
    c.write_text(json.dumps({**base, "annotations": [{"id": 1, "keypoints": [1, 3, 2]}], "info": {}}))
    assert _labels_digest(a) == _labels_digest(b) != _labels_digest(c)
