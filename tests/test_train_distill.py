"""Training: distillation from a teacher checkpoint and the border-cut augmentation (split from
test_train.py, which covers config, dataset, loop, checkpoints and the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_MODEL
from test_train import _one_thread, _tiny_cfg  # noqa: F401 - the autouse fixture applies here too
from typer.testing import CliRunner

from gaitpose.labels import load_records
from gaitpose.nn import build_model
from gaitpose.nn.checkpoint import save_checkpoint
from gaitpose.train.config import AugConfig
from gaitpose.train.dataset import PoseDataset
from gaitpose.train.loop import train_model


def _match_bn_to_batch(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Set every BN's running statistics to the train-mode statistics of batch ``x``.

    Afterwards the model in eval mode computes on ``x`` exactly what it computes in train mode,
    so an eval-mode teacher copy and the train-mode student agree on that batch.
    """
    seen: dict[torch.nn.Module, torch.Tensor] = {}
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    hooks = [bn.register_forward_pre_hook(lambda mod, inp: seen.__setitem__(mod, inp[0].detach())) for bn in bns]
    model.train()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    for bn in bns:
        bn.running_mean.copy_(seen[bn].mean(dim=(0, 2, 3)))
        bn.running_var.copy_(seen[bn].var(dim=(0, 2, 3), unbiased=False))


def test_distillation_from_identical_teacher_starts_at_zero(labelled_crops: Path, tmp_path: Path) -> None:
    """Weight 1.0, teacher = copy of the student: the first step's teacher term is ~0 (the label term
    is not), the teacher stays untouched, and the terms are logged. A different teacher is the control."""
    import copy

    records = load_records(labelled_crops)[:4]
    cfg = _tiny_cfg(epochs=2, batch_size=4, augment=False)  # one step per epoch: epoch 1 is step 0
    batch = PoseDataset(records, cfg.input_size, sigma=cfg.sigma, padding=cfg.padding, cache=cfg.cache_images)
    x = torch.stack([batch[i]["image"] for i in range(len(records))])
    torch.manual_seed(0)
    student = build_model(cfg.model_config_dict())
    _match_bn_to_batch(student, x)
    teacher = copy.deepcopy(student)  # left in train mode: train_model must use an eval-mode copy
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}

    result = train_model(student, records, [], cfg, tmp_path / "kd", distill_from=teacher, distill_weight=1.0,
                         progress=False)
    hist = result["history"]
    assert len(hist) == 2 and all(np.isfinite(h["train_loss"]) for h in hist)
    assert hist[0]["distill_loss"] < 1e-10, hist[0]
    assert hist[0]["label_loss"] > 1e-4  # the pseudo-label term is far from zero but weighted 0
    assert hist[0]["train_loss"] == pytest.approx(hist[0]["distill_loss"], abs=1e-12)
    assert result["distill_weight"] == 1.0 and result["distill_loss"] == hist[-1]["distill_loss"]
    for k, v in teacher.state_dict().items():  # trained a private copy, not the caller's teacher
        torch.testing.assert_close(v, teacher_state[k], rtol=0, atol=0, msg=k)
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())
    header = (tmp_path / "kd" / "log.csv").read_text().splitlines()[0].split(",")
    assert "distill_loss" in header and "label_loss" in header
    assert torch.load(tmp_path / "kd" / "last.pt", weights_only=True)["extra"]["distill_weight"] == 1.0

    torch.manual_seed(1)
    stranger = build_model(cfg.model_config_dict())
    torch.manual_seed(0)
    student = build_model(cfg.model_config_dict())
    _match_bn_to_batch(student, x)
    control = train_model(student, records, [], cfg.updated(epochs=1), None, distill_from=stranger,
                          distill_weight=1.0, progress=False)
    assert control["history"][0]["distill_loss"] > 1e4 * max(hist[0]["distill_loss"], 1e-12)


def test_distillation_weight_mixes_terms_and_is_validated(labelled_crops: Path) -> None:
    records = load_records(labelled_crops)[:4]
    cfg = _tiny_cfg(epochs=1, batch_size=4)
    torch.manual_seed(0)
    teacher = build_model(cfg.model_config_dict())
    student = build_model(cfg.model_config_dict())
    with pytest.raises(ValueError, match="distill_weight"):
        train_model(student, records, [], cfg, None, distill_from=teacher, distill_weight=1.5, progress=False)
    h = train_model(student, records, [], cfg, None, distill_from=teacher, distill_weight=0.25,
                    progress=False)["history"][0]
    assert h["train_loss"] == pytest.approx(0.75 * h["label_loss"] + 0.25 * h["distill_loss"], rel=1e-5)
    plain = train_model(build_model(cfg.model_config_dict()), records, [], cfg, None, progress=False)
    assert "distill_loss" not in plain["history"][0] and plain["distill_weight"] is None


def test_cli_train_distill_from_checkpoint(labelled_crops: Path, tmp_path: Path) -> None:
    from gaitpose.cli import app

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"model": TINY_MODEL, "workers": 0, "warmup_epochs": 0.5}))
    teacher = tmp_path / "teacher.pt"
    save_checkpoint(teacher, build_model(dict(TINY_MODEL, input_size=(64, 48))), dict(TINY_MODEL, input_size=(64, 48)))
    args = ["train", "--train", str(labelled_crops), "--val", str(labelled_crops), "--config", str(cfg),
            "--epochs", "1", "--batch-size", "8", "--threads", "1", "--device", "cpu", "--no-progress",
            "--distill-from", str(teacher), "--distill-weight", "0.3"]
    wrong = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "bad"), "--input-size", "96x64"])
    assert wrong.exit_code != 0 and "teacher.pt" in wrong.output and "--input-size" in wrong.output
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run"), "--input-size", "64x48"])
    assert res.exit_code == 0, res.output
    hist = json.loads((tmp_path / "run" / "log.json").read_text())
    assert hist[0]["distill_loss"] > 0 and hist[0]["label_loss"] > 0
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["extra"]["distill_weight"] == 0.3


def test_border_cut_blacks_out_beyond_the_cut_and_drops_those_labels() -> None:
    from gaitpose.train.augment import border_cut

    patch = np.full((64, 48, 3), 200, np.uint8)
    kp = np.stack([np.linspace(4, 44, 21), np.linspace(4, 60, 21)], axis=1).astype(np.float32)
    weights = np.ones(21, np.float32)
    aug = AugConfig(border_cut_prob=1.0, border_cut_max=0.35)
    sides = set()
    for seed in range(40):
        out, w = border_cut(patch, kp, weights, aug, np.random.default_rng(seed))
        black = (out == 0).all(axis=2)
        assert black.any() and not black.all()
        cols, rows = black.all(axis=0), black.all(axis=1)
        if cols[0]:
            sides.add("left")
            cut = int(cols.argmin())
            assert (w[kp[:, 0] < cut] == 0).all() and (w[kp[:, 0] >= cut] == 1).all()
        elif cols[-1]:
            sides.add("right")
        else:
            assert rows[-1]
            sides.add("bottom")
        assert cols.sum() <= 0.35 * 40 + 1 or rows.sum() <= 0.35 * 56 + 1  # at most 35 % of the subject
        assert (w == 0).sum() <= 21 * 0.4
    assert sides == {"left", "right", "bottom"}
    # off: untouched
    out, w = border_cut(patch, kp, weights, AugConfig(border_cut_prob=0.0), np.random.default_rng(0))
    assert out is patch and w is weights
