"""Network slimming of a tiny student: MACs drop, head and output shape stay, widths honour round_to,
the pruned checkpoint reloads through ``load_model`` in a fresh process and exports to ONNX."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

from typer.testing import CliRunner  # noqa: E402

from gaitpose.cli import app  # noqa: E402
from gaitpose.nn import ModelConfig, build_model, count_params_macs  # noqa: E402

DATA = Path(__file__).parent / "data"
TINY = ModelConfig(input_size=(64, 48), stem_channels=16, decoder_channels=32,
                   stages=[(1, 16, 1, 1), (2, 24, 1, 2), (2, 32, 2, 2), (2, 48, 1, 2), (2, 64, 1, 2)])


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _video_batch(n: int = 8) -> torch.Tensor:
    """Real frames of the test clip, cropped and normalised like the serving path."""
    from gaitpose.export.crops import video_frames
    from gaitpose.geometry import box_to_center_size, crop
    from gaitpose.modelmeta import IMAGENET_MEAN, IMAGENET_STD

    out = []
    for frame in video_frames(DATA / "pose2sim_cam01.mp4", n):
        h, w = frame.shape[:2]
        c, s = box_to_center_size([0, 0, w, h], 48 / 64)
        patch, _ = crop(frame, c, s, (48, 64))
        x = (patch.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        out.append(x.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(out).astype(np.float32))


def _local_finetune(x: torch.Tensor):
    """Minimal fine-tune loop (regulariser after backward, before the step), as train_model does."""
    g = torch.Generator().manual_seed(0)
    target = torch.rand(len(x), 21, 16, 12, generator=g)

    def finetune(model, epochs, regularizer, tag):
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        model.train()
        for _ in range(2 * epochs):
            loss = ((model(x) - target) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            if regularizer is not None:
                regularizer(model)
            opt.step()
        return {"loss": float(loss.detach())}

    return finetune


def _assert_round_to(model, round_to: int) -> None:
    from torch import nn

    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and name != "head":
            assert m.out_channels % round_to == 0, (name, m.out_channels)


def test_bn_scale_slimming_reaches_macs_target():
    from gaitpose.prune.slimming import PruneConfig, slim

    model = build_model(TINY)
    x = _video_batch()
    base_params, base_macs = count_params_macs(model, TINY.input_size)
    sparsity_calls = []
    finetune = _local_finetune(x)

    epochs_seen = []

    def counting_finetune(m, epochs, reg, tag):
        sparsity_calls.append((tag, reg is not None))
        epochs_seen.append(epochs)
        return finetune(m, epochs, reg, tag)

    cfg = PruneConfig(target_macs=0.5, importance="bn-scale", sparsity_epochs=1, steps=2, finetune_epochs=1,
                      final_epochs=2)
    pruned, history = slim(model, cfg, counting_finetune)
    params, macs = count_params_macs(pruned, TINY.input_size)
    assert macs <= 0.5 * base_macs and params < base_params
    assert macs > 0.2 * base_macs  # did not collapse far past the target
    assert [s["reached"] for s in history["steps"]] == [True, True]
    assert history["steps"][0]["macs_fraction"] > history["steps"][1]["macs_fraction"]
    # sparsity phase and the intermediate fine-tune carry the L1 term; the last fine-tune does not
    assert sparsity_calls == [("sparsity", True), ("prune-step1", True), ("prune-step2", False)]
    assert epochs_seen == [1, 1, 2]  # the last step gets the longer final fine-tune
    pruned.eval()
    with torch.no_grad():
        out = pruned(x)
    assert out.shape == (len(x), 21, 16, 12)
    assert pruned.head.out_channels == 21
    _assert_round_to(pruned, 8)
    # the input model is untouched
    assert count_params_macs(model, TINY.input_size) == (base_params, base_macs)


@pytest.mark.parametrize("importance", ["magnitude", "random"])
def test_baseline_importances_prune_to_target(importance):
    from gaitpose.prune.slimming import prune_to_macs

    model = build_model(TINY).eval()
    _, base_macs = count_params_macs(model, TINY.input_size)
    pruned, info = prune_to_macs(model, importance, int(0.6 * base_macs), round_to=8)
    assert info["reached"] and info["macs_after"] <= 0.6 * base_macs
    assert count_params_macs(pruned, TINY.input_size)[1] == info["macs_after"]
    _assert_round_to(pruned, 8)
    assert pruned.head.out_channels == 21


def _train_tiny_checkpoint(labels: Path, out: Path) -> Path:
    from gaitpose.labels import load_records
    from gaitpose.train.config import TrainConfig
    from gaitpose.train.loop import train_model

    torch.manual_seed(0)
    model = build_model(TINY)
    records = load_records(labels)
    cfg = TrainConfig(epochs=2, batch_size=8, input_size=(64, 48), workers=0, device="cpu", threads=1,
                      channels_last=False, lr=2e-3, model=TINY.to_dict())
    train_model(model, records[:12], records[12:], cfg, out, progress=False)
    return out / "best.pt"


def test_prune_cli_end_to_end(labelled_crops, tmp_path):
    ckpt = _train_tiny_checkpoint(labelled_crops, tmp_path / "run")
    out = tmp_path / "pruned"
    res = CliRunner().invoke(app, [
        "prune", "--model", str(ckpt), "--train", str(labelled_crops), "--val", str(labelled_crops),
        "--target-macs", "0.6", "--out", str(out), "--sparsity-epochs", "1", "--steps", "1",
        "--finetune-epochs", "1", "--final-epochs", "1", "--sweep", "0.6", "--latency-runs", "5", "--batch-size", "8",
        "--device", "cpu", "--no-finetune-logs", "--distill-weight", "0.25", "--scratch-epochs", "1",
    ])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    # pruning from scratch ran on the same structure; the better of the two on val is what was kept
    sc = report["history"]["scratch"]
    assert sc["epochs"] == 1 and sc["distill_weight"] == 0.25
    assert sc["kept"] == ("scratch" if sc["val_pck_scratch"] > sc["val_pck_finetuned"] else "finetuned")
    assert report["after"]["accuracy"]["PCK@0.1"] == max(sc["val_pck_scratch"], sc["val_pck_finetuned"])
    # distillation is on by default: recorded, and every fine-tune really trained against the teacher
    assert report["config"]["distill"] is True and report["config"]["distill_weight"] == 0.25
    finetunes = [report["sparsity"], *(st["finetune"] for st in report["history"]["steps"])]
    assert len(finetunes) == 2
    for ft in finetunes:
        assert ft["distill_weight"] == 0.25 and ft["distill_loss"] > 0, ft
    assert "distilled from the original model, weight 0.25" in (out / "report.md").read_text()
    assert report["after"]["macs"] <= 0.6 * report["before"]["macs"]
    for side in ("before", "after"):
        assert set(report[side]["latency_ms"]) == {"threads=1", "threads=2"}
        lat = report[side]["latency_ms"]["threads=1"]
        assert 0 < lat["median_ms"] <= lat["p90_ms"]
        acc = report[side]["accuracy"]
        assert 0.0 <= acc["PCK@0.1"] <= 1.0 and 0.0 <= acc["PCK@0.1_feet"] <= 1.0 and "AP" in acc
    assert "| before |" in (out / "report.md").read_text()
    rows = json.loads((out / "pareto.json").read_text())
    assert [r["target_macs"] for r in rows] == [1.0, 0.6]
    assert rows[0]["original"] and rows[0]["macs"] > rows[1]["macs"] == report["after"]["macs"]
    assert any(r["pareto"] for r in rows)
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".pruned.*"))  # staging folder moved into place

    # A fresh interpreter rebuilds the pruned net from the checkpoint alone (no patching, no pruner).
    code = (
        "import sys, json, torch\n"
        "from gaitpose.nn.checkpoint import load_model\n"
        "from gaitpose.nn import count_params_macs\n"
        "m, cfg, ck = load_model(sys.argv[1])\n"
        "x = torch.zeros(1, 3, 64, 48)\n"
        "print(json.dumps({'macs': count_params_macs(m, (64, 48))[1], 'shape': list(m(x).shape),\n"
        "                  'head': m.head.out_channels, 'pruned': ck['pruned_state'] is not None}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(out / "pruned.pt")], capture_output=True, text=True,
                          timeout=120, check=True)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info == {"macs": report["after"]["macs"], "shape": [1, 21, 16, 12], "head": 21, "pruned": True}

    # ... and exports with torch/ONNX parity on real labelled crops.
    res = CliRunner().invoke(app, ["export", "--model", str(out / "pruned.pt"), "--out", str(tmp_path / "p.onnx"),
                                   "--check-parity-on", str(labelled_crops)])
    assert res.exit_code == 0, res.output
    parity = json.loads(res.stdout.strip().splitlines()[-1])["parity"]
    assert parity["ok"] and parity["max_abs_diff"] < 1e-4


def test_prune_cli_bad_inputs(tmp_path, labelled_crops):
    runner = CliRunner()
    missing = runner.invoke(app, ["prune", "--model", str(tmp_path / "nope.pt"), "--train", str(labelled_crops),
                                  "--out", str(tmp_path / "o")])
    assert missing.exit_code != 0
    assert missing.stderr.strip().startswith("error:") and "nope.pt" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1

    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    bad = runner.invoke(app, ["prune", "--model", str(junk), "--train", str(labelled_crops),
                              "--out", str(tmp_path / "o"), "--sparsity-epochs", "0", "--finetune-epochs", "0"])
    assert bad.exit_code != 0
    assert bad.stderr.strip().startswith("error:") and "junk.pt" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1

    wrong = runner.invoke(app, ["prune", "--model", str(junk), "--train", str(labelled_crops),
                                "--out", str(tmp_path / "o"), "--importance", "taylor"])
    assert wrong.exit_code != 0 and "--importance" in wrong.stderr
    heavy = runner.invoke(app, ["prune", "--model", str(junk), "--train", str(labelled_crops),
                                "--out", str(tmp_path / "o"), "--distill-weight", "1.5"])
    assert heavy.exit_code != 0 and "--distill-weight" in heavy.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("distill", [True, False])
def test_prune_distils_from_the_original_model(labelled_crops, tmp_path, monkeypatch, distill):
    """Every fine-tune gets the model as loaded (not the sparsity-trained or pruned one) as teacher,
    or none with --no-distill. Training is replaced by a stub that only shrinks BN scales."""
    import gaitpose.train.loop as loop
    from gaitpose.nn.checkpoint import save_checkpoint
    from gaitpose.prune.pipeline import run_prune
    from gaitpose.prune.slimming import PruneConfig

    torch.manual_seed(0)
    original = build_model(TINY).eval()
    ckpt = save_checkpoint(tmp_path / "student.pt", original, TINY)
    reference = {k: v.clone() for k, v in original.state_dict().items()}
    calls = []

    def fake_train(model, train_records, val_records, cfg, out, *, distill_from=None, distill_weight=0.5, **kw):
        teacher = None if distill_from is None else distill_from.state_dict()
        calls.append((kw["log_prefix"], teacher, distill_weight))
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.weight.mul_(0.5)  # "training" changes the student, never the teacher
        return {"history": [], "distill_weight": distill_weight if teacher is not None else None}

    monkeypatch.setattr(loop, "train_model", fake_train)
    cfg = PruneConfig(target_macs=0.6, sparsity_epochs=1, steps=2, finetune_epochs=1, final_epochs=1,
                      distill=distill, distill_weight=0.3)
    report = run_prune(ckpt, labelled_crops, None, tmp_path / "out", cfg, device="cpu", latency_runs=2,
                       keep_finetune_logs=False)
    assert [c[0] for c in calls] == ["[sparsity] ", "[prune-step1] ", "[prune-step2] "]
    assert report["config"]["distill"] is distill and report["config"]["distill_weight"] == 0.3
    for _, teacher, weight in calls:
        if not distill:
            assert teacher is None
            continue
        assert weight == 0.3 and teacher.keys() == reference.keys()
        for k, v in reference.items():
            torch.testing.assert_close(teacher[k], v, rtol=0, atol=0, msg=k)
    md = (tmp_path / "out" / "report.md").read_text()
    assert ("distilled from the original model, weight 0.3" in md) is distill
    assert ("no distillation" in md) is not distill


def test_uniform_and_global_scopes_both_reach_the_target_uniform_keeps_every_layer():
    """Uniform scope removes about the same fraction everywhere, so no layer is cut to a sliver; the
    published global ranking is kept as an option and lands on the same MACs target."""
    from torch import nn

    from gaitpose.prune.slimming import PruneConfig, channel_widths, prune_to_macs

    model = build_model(TINY).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # distinct BN scales, as after a sparsity phase (fresh ones are all 1: ties)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.9 + 0.1)
    _, base_macs = count_params_macs(model, TINY.input_size)
    before = channel_widths(model)
    for scope in ("uniform", "global"):
        pruned, info = prune_to_macs(model, "bn-scale", int(0.6 * base_macs), round_to=8, scope=scope)
        assert info["reached"] and info["macs_after"] <= 0.6 * base_macs, (scope, info)
        _assert_round_to(pruned, 8)
        after = channel_widths(pruned)
        if scope == "uniform":
            assert all(after[n] >= before[n] // 2 for n in before), (before, after)
    # protected layers (a name prefix or a glob) keep every channel; the rest still reach the target
    protect = ("stem", "stages.*.block.2.*")
    pruned, info = prune_to_macs(model, "bn-scale", int(0.7 * base_macs), round_to=8, scope="global", protect=protect)
    after = channel_widths(pruned)
    guarded = [n for n in before if n.startswith("stem") or (".block.2." in n and n.startswith("stages."))]
    assert guarded and all(after[n] == before[n] for n in guarded), {n: (before[n], after[n]) for n in guarded}
    assert info["reached"] and any(after[n] < before[n] for n in before)
    with pytest.raises(ValueError, match="--scope"):
        PruneConfig(scope="everywhere")
