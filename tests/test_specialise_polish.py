"""The polish stage of ``gaitpose specialise``: the time left after pruning goes to more distilled epochs
of the pruned network, not to an early finish, and never past the reserve for export and evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

from gaitpose.nn import ModelConfig, build_model, count_params_macs  # noqa: E402
from tests.conftest import TINY_MODEL  # noqa: E402


def _specialiser(tmp_path: Path, labelled_crops: Path, minutes: float, epoch_s: float):
    """A run stopped just after its prune stage: a real pruned tiny student, its parent, the labels."""
    from gaitpose.nn.checkpoint import save_checkpoint
    from gaitpose.prune.pipeline import run_prune
    from gaitpose.prune.slimming import PruneConfig
    from gaitpose.specialise.options import SpecialiseOptions
    from gaitpose.specialise.runner import Specialiser
    from gaitpose.train.config import TrainConfig

    torch.manual_seed(0)
    cfg = ModelConfig(input_size=(64, 48), **TINY_MODEL)
    tcfg = TrainConfig(input_size=(64, 48), batch_size=8, threads=1, device="cpu")
    parent = save_checkpoint(tmp_path / "unpruned.pt", build_model(cfg), cfg, train_cfg=tcfg)
    run_prune(parent, labelled_crops, None, tmp_path / "prune", PruneConfig(
        target_macs=0.6, sparsity_epochs=0, steps=1, finetune_epochs=0, final_epochs=1),
        device="cpu", threads=(1,), latency_runs=2, keep_finetune_logs=False)
    sp = Specialiser(SpecialiseOptions(recordings=[], out=tmp_path / "out", minutes=minutes, device="cpu",
                                       threads=1), say=lambda s: None)
    shutil.copytree(labelled_crops.parent, sp.work / "split")
    (sp.work / "split" / labelled_crops.name).rename(sp.work / "split" / "train.json")
    (sp.work / "train").mkdir()
    (sp.work / "train" / "log.json").write_text(json.dumps([{"seconds": epoch_s}] * 4))
    sp.results = {"prune": {"checkpoint": str(tmp_path / "prune" / "pruned.pt"), "pruned": True,
                            "unpruned_checkpoint": str(parent)}}
    sp._key = "test"
    return sp


def test_polish_trains_the_pruned_network_until_the_reserve(labelled_crops: Path, tmp_path: Path) -> None:
    from gaitpose.nn.checkpoint import load_model

    # 1.2 minutes: 72 s minus a reserve of 45 + 0.08 * 72 s leaves about 21 s, planned at 4 s an epoch.
    sp = _specialiser(tmp_path, labelled_crops, minutes=1.2, epoch_s=4.0)
    res = sp._polish()
    assert res["polished"] is True and res["epochs"] >= 3
    assert sp.clock.left >= sp._reserve() - 10  # stopped near the reserve, not far past it
    before, _, _ = load_model(tmp_path / "prune" / "pruned.pt")
    after, _, ckpt = load_model(res["checkpoint"])
    assert ckpt["pruned_state"] is not None  # still the pruned structure, reloadable on its own
    assert count_params_macs(after, (64, 48)) == count_params_macs(before, (64, 48))
    moved = max(float((a - b).abs().max()) for a, b in zip(after.state_dict().values(),
                                                           before.state_dict().values(), strict=True)
                if a.is_floating_point())
    assert moved > 0  # it was trained, not copied

    # Re-run after an interruption with the budget spent: the polished network is kept, not retrained
    # and not dropped for the unpolished one.
    stamp = Path(res["checkpoint"]).stat().st_mtime_ns
    sp.clock.budget_s = sp.clock.elapsed + sp._reserve()
    again = sp._polish()
    assert again["polished"] is True and again["checkpoint"] == res["checkpoint"]
    assert again["epochs"] == res["epochs"] and Path(res["checkpoint"]).stat().st_mtime_ns == stamp


def test_polish_is_skipped_without_time_or_without_pruning(labelled_crops: Path, tmp_path: Path) -> None:
    sp = _specialiser(tmp_path, labelled_crops, minutes=0.5, epoch_s=4.0)  # 30 s: inside the reserve
    res = sp._polish()
    assert res == {"checkpoint": sp.results["prune"]["checkpoint"], "polished": False}
    assert not (sp.work / "polish" / "last.pt").exists()
    sp.results["prune"]["pruned"] = False
    assert sp._polish()["polished"] is False
