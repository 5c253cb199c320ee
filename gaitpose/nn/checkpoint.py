"""Checkpoints: one self-describing file that rebuilds its own network.

A checkpoint stores the ModelConfig next to the weights, so ``load_model`` needs nothing else;
pruned networks additionally store torch-pruning's structural state, because their layer widths
no longer follow the config. Files are written atomically: a crash never leaves a truncated
``best.pt`` that looks valid.

The format lives beside the networks, not in ``gaitpose.train``: evaluation, export and pruning
load checkpoints too, and training imports evaluation's metrics, so keeping it in ``train`` made
``train`` and ``eval`` import each other.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gaitpose.errors import InputError
from gaitpose.fsutil import atomic_path
from gaitpose.modelmeta import ModelMeta
from gaitpose.nn.student import ModelConfig, build_model

CKPT_FORMAT = "gaitpose-ckpt/1"


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def model_config_of(model: nn.Module) -> ModelConfig:
    """The ModelConfig a student was built from (``StudentPose.cfg``)."""
    cfg = getattr(model, "cfg", None)
    if not isinstance(cfg, ModelConfig):
        raise ValueError("model has no ModelConfig (.cfg); build it with gaitpose.nn.build_model")
    return cfg


def is_pruned(model: nn.Module, model_cfg: ModelConfig | None = None) -> bool:
    """True when the model's tensor shapes differ from a fresh build of its config (i.e. it was pruned)."""
    cfg = model_cfg or model_config_of(model)
    reference = build_model(cfg).state_dict()
    current = model.state_dict()
    if reference.keys() != current.keys():
        return True
    return any(reference[k].shape != current[k].shape for k in reference)


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    model_cfg: ModelConfig | dict[str, Any],
    *,
    train_cfg: Any = None,
    epoch: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    best_metric: float | None = None,
    data_summary: dict[str, Any] | None = None,
    pruned: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a ``gaitpose-ckpt/1`` checkpoint atomically; returns the path."""
    path = Path(path)
    cfg = model_cfg if isinstance(model_cfg, ModelConfig) else ModelConfig.from_dict(model_cfg)
    pruned_state = None
    if pruned:
        import torch_pruning as tp

        pruned_state = tp.state_dict(model)
    if train_cfg is not None and hasattr(train_cfg, "to_dict"):
        train_cfg = train_cfg.to_dict()
    payload = {
        "format": CKPT_FORMAT,
        "model_cfg": cfg.to_dict(),
        "state_dict": _cpu_state(model),
        "pruned_state": pruned_state,
        "train_cfg": train_cfg,
        "epoch": int(epoch),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "best_metric": best_metric,
        "data": data_summary,
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate the checkpoint dict (no model built).

    Plain checkpoints load with ``weights_only=True``; pruned ones carry module attributes that
    only full unpickling restores, so those fall back to it. Load checkpoints you trust only.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "checkpoint file does not exist")
    if path.is_dir():
        raise InputError(path, "is a folder, expected a .pt checkpoint file")
    try:
        try:
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError:
            ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch/pickle raise many unrelated types for a file that is not a checkpoint
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else exc.__class__.__name__
        raise InputError(path, f"not a readable torch checkpoint ({first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InputError(path, f"not a gaitpose checkpoint (format {found!r}, expected {CKPT_FORMAT!r})")
    for key in ("model_cfg", "state_dict"):
        if not isinstance(ckpt.get(key), dict):
            raise InputError(path, f"gaitpose checkpoint is missing '{key}'")
    return ckpt


def load_model(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """Rebuild the network stored in a checkpoint: (model in eval mode, its ModelConfig, the checkpoint dict)."""
    path = Path(path)
    ckpt = read_checkpoint(path, map_location)
    try:
        cfg = ModelConfig.from_dict(ckpt["model_cfg"])
        model = build_model(cfg)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError(path, f"checkpoint has an invalid model config ({exc})") from None
    if ckpt.get("pruned_state") is not None:
        import torch_pruning as tp

        try:
            tp.load_state_dict(model, state_dict=ckpt["pruned_state"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(path, f"cannot restore the pruned structure ({exc})") from None
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise InputError(path, f"weights do not fit the checkpoint's architecture ({detail[:200]})") from None
    model.to(map_location)
    model.eval()
    return model, cfg, ckpt


def model_meta(model_cfg: ModelConfig, train_cfg: dict[str, Any] | Any | None = None, **extra: Any) -> ModelMeta:
    """The ModelMeta (as embedded in ONNX) describing a checkpoint's pre- and post-processing."""
    if train_cfg is not None and hasattr(train_cfg, "to_dict"):
        train_cfg = train_cfg.to_dict()
    padding = float((train_cfg or {}).get("padding", 1.25))
    training = {}
    if train_cfg:
        training = {k: train_cfg[k] for k in ("epochs", "batch_size", "lr", "sigma", "seed") if k in train_cfg}
    return ModelMeta(
        kind="sppe",
        input_size=(int(model_cfg.input_size[0]), int(model_cfg.input_size[1])),
        in_channels=int(model_cfg.in_channels),
        stride=int(model_cfg.stride),
        padding=padding,
        training=training,
        extra=dict(extra),
    )
