"""Training: config precedence, dataset = inference preprocessing, augmentation, overfitting, checkpoints, CLI."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_MODEL
from typer.testing import CliRunner

from gaitpose.codec import decode_heatmaps, flip_back
from gaitpose.errors import InputError
from gaitpose.geometry import affine_points, invert_affine
from gaitpose.labels import load_records
from gaitpose.nn import build_model
from gaitpose.nn.checkpoint import load_model, model_meta, save_checkpoint
from gaitpose.train.config import AugConfig, TrainConfig, load_config, save_config
from gaitpose.train.dataset import PoseDataset
from gaitpose.train.loop import train_model


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _tiny_cfg(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=4, lr=5e-3, warmup_epochs=1, input_size=(64, 48), threads=1, workers=0,
                model=TINY_MODEL, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


# --- config ------------------------------------------------------------------------------------

def test_config_yaml_round_trip_and_precedence(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"epochs": 7, "input_size": "192x144", "aug": {"rotation": 10.0},
                                    "model": {"decoder_channels": 48}}))
    cfg = load_config(path)
    assert cfg.epochs == 7 and cfg.input_size == (192, 144) and cfg.aug.rotation == 10.0
    assert cfg.aug.flip_prob == AugConfig().flip_prob  # untouched nested defaults survive
    assert cfg.model_config_dict()["decoder_channels"] == 48
    flags = cfg.updated(epochs=3, lr=None)  # a CLI flag wins, an unset flag keeps the YAML value
    assert flags.epochs == 3 and flags.lr == cfg.lr
    save_config(flags, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == flags


def test_config_rejects_unknown_keys_and_bad_sizes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 3\n")
    with pytest.raises(InputError, match="epochz"):
        load_config(bad)
    bad.write_text("input_size: 250x190\n")
    with pytest.raises(InputError, match="multiples of 4"):
        load_config(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


# --- dataset -----------------------------------------------------------------------------------

def test_dataset_matches_serving_preprocessing_and_targets(labelled_crops: Path) -> None:
    from gaitpose.eval.predictors import TorchPredictor
    from gaitpose.nn import ModelConfig
    from gaitpose.train.dataset import read_rgb

    records = load_records(labelled_crops)
    ds = PoseDataset(records, (128, 96), sigma=2.0)
    mcfg = ModelConfig(input_size=(128, 96), **TINY_MODEL)
    predictor = TorchPredictor(build_model(mcfg), model_meta(mcfg))
    for i in (0, 7):
        item = ds[i]
        x, matrix = predictor.preprocess(read_rgb(records[i].image_path), records[i].bbox)
        np.testing.assert_array_equal(item["image"].numpy(), x)  # the very same crop as the runtime
        np.testing.assert_allclose(item["matrix"].numpy(), matrix, atol=1e-5)
        assert item["heatmaps"].shape == (21, 32, 24)
        coords, _ = decode_heatmaps(item["heatmaps"].numpy(), 4)
        back = affine_points(coords, invert_affine(item["matrix"].numpy()))
        valid = item["target_weight"].numpy() > 0
        assert valid.sum() >= 15
        # targets decode back to the teacher's labels in frame pixels (crop is ~4x smaller than the frame)
        err = np.linalg.norm(back[valid] - records[i].keypoints[valid], axis=1)
        assert err.max() < 2.5, err.max()
        np.testing.assert_allclose(item["target_weight"].numpy()[valid], records[i].scores[valid], atol=1e-6)


def test_flip_augmentation_mirrors_image_and_swaps_sides(labelled_crops: Path) -> None:
    records = load_records(labelled_crops)
    plain = PoseDataset(records, (128, 96))[3]
    only_flip = AugConfig(scale=0, rotation=0, shift=0, flip_prob=1.0, half_body_prob=0, brightness=0, contrast=0,
                          saturation=0, blur_prob=0)
    flipped = PoseDataset(records, (128, 96), augment=True, aug=only_flip)[3]
    np.testing.assert_allclose(flipped["image"].numpy(), plain["image"].numpy()[..., ::-1], atol=1e-6)
    np.testing.assert_allclose(flip_back(flipped["heatmaps"].numpy()), plain["heatmaps"].numpy(), atol=1e-4)
    # the returned matrix still maps frame -> (mirrored) crop pixels
    coords, _ = decode_heatmaps(flipped["heatmaps"].numpy(), 4)
    back = affine_points(coords, invert_affine(flipped["matrix"].numpy()))
    valid = flipped["target_weight"].numpy() > 0
    from gaitpose.skeleton import FLIP_INDEX

    err = np.linalg.norm(back[valid] - records[3].keypoints[FLIP_INDEX][valid], axis=1)
    assert err.max() < 2.5


def test_full_augmentation_is_seeded_and_sane(labelled_crops: Path) -> None:
    records = load_records(labelled_crops)
    a = PoseDataset(records, (128, 96), augment=True, seed=5)
    b = PoseDataset(records, (128, 96), augment=True, seed=5)
    a.set_epoch(2)
    b.set_epoch(2)
    items_a = [a[i] for i in range(6)]
    items_b = [b[i] for i in range(6)]
    for ia, ib in zip(items_a, items_b, strict=True):
        np.testing.assert_array_equal(ia["image"].numpy(), ib["image"].numpy())
        assert torch.isfinite(ia["image"]).all() and torch.isfinite(ia["heatmaps"]).all()
        assert ia["heatmaps"].max() <= 1.0 + 1e-6
    a.set_epoch(3)
    assert not np.array_equal(a[0]["image"].numpy(), items_a[0]["image"].numpy())


def test_dataset_reports_missing_image(labelled_crops: Path) -> None:
    records = load_records(labelled_crops)
    rec = records[0]
    rec.image_path = rec.image_path.with_name("nope.jpg")
    with pytest.raises(InputError, match=r"nope\.jpg: image file does not exist"):
        PoseDataset([rec], (64, 48))[0]


def test_four_channel_dataset_without_depth_adds_zero_channel(labelled_crops: Path) -> None:
    records = load_records(labelled_crops)
    item = PoseDataset(records, (64, 48), in_channels=4)[0]
    assert item["image"].shape == (4, 64, 48)
    assert float(item["image"][3].abs().max()) == 0.0


# --- training ----------------------------------------------------------------------------------

def test_tiny_student_overfits_real_crops(overfit_run: dict, tmp_path: Path) -> None:
    hist = overfit_run["history"]
    assert overfit_run["final_metric"] >= 0.9, [(h["epoch"], h["val_pck"]) for h in hist]
    assert hist[-1]["train_loss"] < 0.25 * hist[0]["train_loss"]
    out = Path(overfit_run["out_dir"])
    for name in ("best.pt", "last.pt", "config.yaml", "log.csv", "log.json", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert len(rows) == 60 and float(rows[-1]["val_pck"]) >= 0.9
    assert load_config(out / "config.yaml").augment is False


def test_checkpoint_round_trip(overfit_run: dict) -> None:
    out = Path(overfit_run["out_dir"])
    model, cfg, ckpt = load_model(out / "last.pt")
    assert ckpt["format"] == "gaitpose-ckpt/1" and ckpt["epoch"] == 60 and ckpt["pruned_state"] is None
    assert cfg.input_size == (128, 96) and ckpt["train_cfg"]["augment"] is False
    assert ckpt["data"]["train_samples"] == len(overfit_run["records"])
    for k, v in overfit_run["model"].state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v.cpu(), rtol=0, atol=0)
    x = torch.randn(1, 3, 128, 96)
    ref = overfit_run["model"].eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x.contiguous(memory_format=torch.channels_last)),
                                   rtol=1e-4, atol=1e-5)


def test_resume_continues_exactly(labelled_crops: Path, tmp_path: Path) -> None:
    """An interrupted run resumed from last.pt ends in the same state as an uninterrupted one."""
    records = load_records(labelled_crops)[:8]
    cfg = _tiny_cfg(epochs=3, val_every=1)
    torch.manual_seed(0)
    straight = build_model(cfg.model_config_dict())
    train_model(straight, records, records[:4], cfg, tmp_path / "a", progress=False)

    steps = {"n": 0}

    def interrupt_in_epoch_3(_model: torch.nn.Module) -> None:
        steps["n"] += 1
        if steps["n"] > 4:  # 2 steps per epoch: stop in the third epoch
            raise KeyboardInterrupt

    torch.manual_seed(0)
    broken = build_model(cfg.model_config_dict())
    with pytest.raises(KeyboardInterrupt):
        train_model(broken, records, records[:4], cfg, tmp_path / "b", regularizer=interrupt_in_epoch_3,
                    progress=False)
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["epoch"] == 2
    resumed = build_model(cfg.model_config_dict())
    result = train_model(resumed, records, records[:4], cfg, tmp_path / "b", resume=tmp_path / "b" / "last.pt",
                         progress=False)
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3]
    for k, v in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=1e-5, atol=1e-6, msg=k)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 6
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for key in sa:
        assert float(sa[key]["step"]) == float(sb[key]["step"]) == 6
        torch.testing.assert_close(sa[key]["exp_avg_sq"], sb[key]["exp_avg_sq"], rtol=1e-4, atol=1e-10)


def test_regularizer_runs_between_backward_and_step(labelled_crops: Path) -> None:
    records = load_records(labelled_crops)[:4]
    cfg = _tiny_cfg(epochs=1)
    model = build_model(cfg.model_config_dict())
    seen = []

    def reg(m: torch.nn.Module) -> None:
        grads = [p.grad for p in m.parameters() if p.grad is not None]
        seen.append(len(grads))
        bn = next(mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d))
        bn.weight.grad.add_(1e-4 * torch.sign(bn.weight.data))  # an L1 sparsity push, as pruners do

    train_model(model, records, [], cfg, None, regularizer=reg, progress=False)
    assert len(seen) == 1 and seen[0] == len(list(model.parameters()))


def test_bad_checkpoints_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(InputError, match=r"junk\.pt: not a readable torch checkpoint"):
        load_model(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(InputError, match="not a gaitpose checkpoint"):
        load_model(other)
    # weights of one architecture under the config of another
    small = build_model(dict(TINY_MODEL, input_size=(64, 48)))
    wrong = tmp_path / "wrong.pt"
    save_checkpoint(wrong, small, dict(TINY_MODEL, input_size=(64, 48), decoder_channels=40))
    with pytest.raises(InputError, match="weights do not fit"):
        load_model(wrong)
    # message is one line naming the file
    try:
        load_model(wrong)
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(wrong))


def test_cli_train_writes_run_folder(labelled_crops: Path, tmp_path: Path) -> None:
    from gaitpose.cli import app

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"model": TINY_MODEL, "workers": 0, "val_every": 1, "warmup_epochs": 0.5}))
    run = tmp_path / "run"
    res = CliRunner().invoke(app, [
        "train", "--train", str(labelled_crops), "--val", str(labelled_crops), "--out", str(run),
        "--config", str(cfg), "--epochs", "1", "--input-size", "64x48", "--batch-size", "8", "--threads", "1",
        "--device", "cpu", "--no-progress",
    ])
    assert res.exit_code == 0, res.output
    for name in ("best.pt", "last.pt", "config.yaml", "log.csv", "curves.png", "log.json"):
        assert (run / name).exists(), name
    resolved = load_config(run / "config.yaml")
    assert resolved.epochs == 1 and resolved.input_size == (64, 48) and resolved.batch_size == 8
    assert resolved.model["decoder_channels"] == TINY_MODEL["decoder_channels"]
    assert len(json.loads((run / "log.json").read_text())) == 1
    _, mcfg, _ = load_model(run / "best.pt")
    assert mcfg.input_size == (64, 48)


def test_cli_train_without_val_keeps_the_final_weights(labelled_crops: Path, tmp_path: Path) -> None:
    """No --val (every recording trains): a fixed schedule, nothing validated, best.pt = the last epoch."""
    import torch

    from gaitpose.cli import app

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"model": TINY_MODEL, "workers": 0, "warmup_epochs": 0.5}))
    run = tmp_path / "run"
    res = CliRunner().invoke(app, [
        "train", "--train", str(labelled_crops), "--out", str(run), "--config", str(cfg), "--epochs", "2",
        "--input-size", "64x48", "--batch-size", "8", "--threads", "1", "--device", "cpu", "--no-progress",
    ])
    assert res.exit_code == 0, res.output
    history = json.loads((run / "log.json").read_text())
    assert [h["val_pck"] for h in history] == [None, None]
    best, last = load_model(run / "best.pt")[0], load_model(run / "last.pt")[0]
    for (name, a), (_, b) in zip(best.state_dict().items(), last.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_cli_train_bad_input_is_one_line(labelled_crops: Path, tmp_path: Path) -> None:
    from gaitpose.cli import app

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    res = CliRunner().invoke(app, ["train", "--train", str(broken), "--val", str(labelled_crops),
                                   "--out", str(tmp_path / "run")])
    assert res.exit_code == 2
    assert "broken.json" in res.output and "not a JSON label file" in res.output
    assert not (tmp_path / "run" / "best.pt").exists()
    shutil.rmtree(tmp_path / "run", ignore_errors=True)


def test_pruned_model_trains_and_round_trips(labelled_crops: Path, tmp_path: Path) -> None:
    """A torch-pruning'd student is fine-tuned and saved with its structure; load_model rebuilds it."""
    import torch_pruning as tp

    records = load_records(labelled_crops)[:4]
    cfg = _tiny_cfg(epochs=1)
    model = build_model(cfg.model_config_dict()).eval()
    example = torch.randn(1, 3, 64, 48)
    full_params = sum(p.numel() for p in model.parameters())
    tp.pruner.MagnitudePruner(model, example, importance=tp.importance.MagnitudeImportance(p=2),
                              pruning_ratio=0.4, ignored_layers=[model.head]).step()
    pruned_params = sum(p.numel() for p in model.parameters())
    assert pruned_params < 0.8 * full_params
    result = train_model(model, records, records, cfg, tmp_path / "ft", progress=False)
    assert result["pruned"] is True
    loaded, mcfg, ckpt = load_model(tmp_path / "ft" / "last.pt")
    assert ckpt["pruned_state"] is not None and mcfg == model.cfg
    assert sum(p.numel() for p in loaded.parameters()) == pruned_params
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(example), model(example.contiguous(memory_format=torch.channels_last)),
                                   rtol=1e-4, atol=1e-5)
