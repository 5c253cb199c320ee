"""The training loop: AdamW + warm-up/cosine, confidence-weighted heatmap MSE, PCK validation.

Optionally the loss also pulls the heatmaps toward those of a frozen teacher network (knowledge
distillation), which is how a pruned student recovers the accuracy of the net it was cut from.

Each epoch writes ``last.pt`` (and ``best.pt`` when validation PCK improves), ``log.csv``,
``log.json`` and ``curves.png`` in the run folder, so an interrupted run can be inspected and
resumed from ``last.pt``. Data order and augmentation are seeded per epoch, which makes a
resumed run follow the same sample sequence as an uninterrupted one.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from gaitpose.codec import decode_heatmaps, flip_back
from gaitpose.eval.metrics import pck
from gaitpose.geometry import affine_points, invert_affine
from gaitpose.labels import PoseRecord
from gaitpose.nn.checkpoint import is_pruned, model_config_of, read_checkpoint, save_checkpoint
from gaitpose.train.config import TrainConfig, save_config
from gaitpose.train.dataset import PoseDataset, worker_init
from gaitpose.train.loss import KeypointMSELoss
from gaitpose.train.runlog import describe_data, write_logs

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only: decaying BN scales would fight network slimming."""
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warm-up from ~0 then cosine decay to ``min_ratio``, per optimizer step."""

    def f(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(max(progress, 0.0), 1.0)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def _loader(ds: PoseDataset, cfg: TrainConfig, train: bool, device: torch.device) -> DataLoader:
    workers = max(0, int(cfg.workers))
    return DataLoader(
        ds,
        batch_size=cfg.batch_size,
        shuffle=train,
        drop_last=train and len(ds) > cfg.batch_size,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=worker_init if workers > 0 else None,
        persistent_workers=False,  # reseeded per epoch through the loader's generator
        generator=torch.Generator() if train else None,
    )


@torch.no_grad()
def predict_dataset(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    stride: int,
    flip_test: bool = False,
    channels_last: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, K, 2) in full-image pixels and scores (N, K) for a non-augmented dataset."""
    was_training = model.training
    model.eval()
    n = len(loader.dataset)
    coords_all: np.ndarray | None = None
    scores_all: np.ndarray | None = None
    try:
        for batch in loader:
            x = batch["image"].to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            hm = model(x).float().cpu().numpy()
            if flip_test:
                hm_f = model(torch.flip(x, dims=[3])).float().cpu().numpy()
                hm = 0.5 * (hm + flip_back(hm_f))
            coords, scores = decode_heatmaps(hm, stride)
            if coords_all is None:
                coords_all = np.zeros((n, *coords.shape[1:]), np.float32)
                scores_all = np.zeros((n, scores.shape[1]), np.float32)
            for c, s, m, i in zip(coords, scores, batch["matrix"].numpy(), batch["index"].numpy(), strict=True):
                coords_all[i] = affine_points(c, invert_affine(m))
                scores_all[i] = s
    finally:
        model.train(was_training)
    assert coords_all is not None and scores_all is not None
    return coords_all, scores_all


def frozen_teacher(teacher: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """A private, eval-mode, gradient-free copy of ``teacher`` on ``device``.

    Copying leaves the caller's module where it was (device, memory format, train/eval mode), so
    one teacher can serve several fine-tunes, and passing the student itself as its own teacher
    cannot make the two share weights. Eval mode: the teacher's BatchNorm uses its running
    statistics, as when it serves, rather than those of the augmented batch.
    """
    frozen = copy.deepcopy(teacher).to(device).eval().requires_grad_(False)
    if channels_last:
        frozen.to(memory_format=torch.channels_last)
    return frozen


def train_model(
    model: nn.Module,
    train_records: Sequence[PoseRecord],
    val_records: Sequence[PoseRecord],
    cfg: TrainConfig,
    out_dir: Path | None,
    *,
    regularizer: Callable[[nn.Module], None] | None = None,
    epochs: int | None = None,
    resume: Path | None = None,
    log_prefix: str = "",
    progress: bool = True,
    distill_from: nn.Module | None = None,
    distill_weight: float = 0.5,
) -> dict[str, Any]:
    """Train ``model`` in place; returns {"history", "best_metric", "best_epoch", "final_metric", ...}.

    ``regularizer(model)`` runs after ``loss.backward()`` and before ``optimizer.step()`` (e.g.
    torch-pruning's sparsity regulariser). ``epochs`` overrides ``cfg.epochs`` (fine-tuning after
    pruning). ``resume`` is a ``last.pt`` of the same run: weights, optimizer, scheduler, epoch and
    best metric are restored and training continues with the next epoch.

    ``distill_from``: a teacher with the student's input and heatmap size (typically the unpruned
    net a pruned student was cut from). It sees the same augmented batch and the loss becomes
    ``(1 - w) * MSE(pred, labels, confidence) + w * MSE(pred, teacher heatmaps)`` with
    ``w = distill_weight``. The teacher term is not confidence-weighted: the teacher predicts every
    joint, including those the pseudo-labeller dropped, and its soft heatmaps carry what the
    pruned student is to relearn. The two terms are logged per epoch (``label_loss``,
    ``distill_loss``); the teacher itself is copied and never trained (:func:`frozen_teacher`).
    """
    from tqdm.auto import tqdm

    if len(train_records) == 0:
        raise ValueError("no training records")
    if not 0.0 <= distill_weight <= 1.0:
        raise ValueError(f"distill_weight must be in [0, 1], got {distill_weight}")
    total_epochs = int(epochs if epochs is not None else cfg.epochs)
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, int(cfg.threads)))
    seed_everything(cfg.seed)
    model_cfg = model_config_of(model)
    pruned = is_pruned(model, model_cfg)
    channels_last = bool(cfg.channels_last) and device.type != "mps"
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    teacher = frozen_teacher(distill_from, device, channels_last) if distill_from is not None else None

    ds_kwargs = dict(
        input_size=cfg.input_size, stride=cfg.stride, sigma=cfg.sigma, in_channels=cfg.in_channels,
        aug=cfg.aug, padding=cfg.padding, seed=cfg.seed, cache=cfg.cache_images,
    )
    train_ds = PoseDataset(train_records, augment=cfg.augment, **ds_kwargs)
    val_ds = PoseDataset(val_records, augment=False, **ds_kwargs) if len(val_records) else None
    train_loader = _loader(train_ds, cfg, True, device)
    val_loader = _loader(val_ds, cfg, False, device) if val_ds is not None else None

    steps_per_epoch = max(1, len(train_loader))
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lr_lambda(total_epochs * steps_per_epoch, round(cfg.warmup_epochs * steps_per_epoch), cfg.min_lr_ratio),
    )
    criterion = KeypointMSELoss()
    use_amp = bool(cfg.amp) and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    history: list[dict[str, Any]] = []
    best_metric: float | None = None
    best_epoch = 0
    start_epoch = 0
    if resume is not None:
        ckpt = read_checkpoint(resume, map_location=device)
        model.load_state_dict(ckpt["state_dict"])
        if ckpt.get("optimizer"):
            optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scheduler"):
            scheduler.load_state_dict(ckpt["scheduler"])
        start_epoch = int(ckpt.get("epoch", 0))
        best_metric = ckpt.get("best_metric")
        extra = ckpt.get("extra") or {}
        history = list(extra.get("history", []))
        best_epoch = int(extra.get("best_epoch", start_epoch))
        log.info("%sresumed from %s at epoch %d", log_prefix, resume, start_epoch)

    data_summary = describe_data(train_records, val_records)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg.updated(epochs=total_epochs), out_dir / "config.yaml")

    distill_extra = {"distill_weight": distill_weight} if teacher is not None else {}

    def save(name: str, epoch: int) -> None:
        if out_dir is None:
            return
        save_checkpoint(
            out_dir / name, model, model_cfg, train_cfg=cfg.updated(epochs=total_epochs), epoch=epoch,
            optimizer=optimizer, scheduler=scheduler, best_metric=best_metric, data_summary=data_summary,
            pruned=pruned, extra={"history": history, "best_epoch": best_epoch, **distill_extra},
        )

    model.train()
    for epoch in range(start_epoch, total_epochs):
        train_ds.set_epoch(epoch)
        assert train_loader.generator is not None
        train_loader.generator.manual_seed(cfg.seed * 100003 + epoch)
        t0 = time.perf_counter()
        running, running_label, running_distill, seen = 0.0, 0.0, 0.0, 0
        bar = tqdm(
            train_loader, desc=f"{log_prefix}epoch {epoch + 1}/{total_epochs}", leave=False,
            disable=not progress, dynamic_ncols=True,
        )
        for batch in bar:
            x = batch["image"].to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            target = batch["heatmaps"].to(device, non_blocking=True)
            weight = batch["target_weight"].to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                pred = model(x)
                if teacher is not None:
                    with torch.no_grad():
                        teacher_hm = teacher(x)
            loss = label_loss = criterion(pred, target, weight)
            if teacher is not None:
                if teacher_hm.shape != pred.shape:
                    raise ValueError(f"teacher heatmaps {tuple(teacher_hm.shape)} do not match the student's "
                                     f"{tuple(pred.shape)}: distillation needs the same input and heatmap size")
                distill_loss = criterion(pred, teacher_hm, torch.ones_like(weight))
                loss = (1.0 - distill_weight) * label_loss + distill_weight * distill_loss
                running_label += label_loss.item() * len(x)
                running_distill += distill_loss.item() * len(x)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if regularizer is not None:
                regularizer(model)
            if cfg.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"training diverged: loss {loss.item()} at epoch {epoch + 1}")
            running += loss.item() * len(x)
            seen += len(x)
            bar.set_postfix(loss=f"{running / seen:.2e}", best_pck="-" if best_metric is None else f"{best_metric:.3f}")
        bar.close()
        train_time = time.perf_counter() - t0
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": running / max(seen, 1),
            "images_per_s": seen / max(train_time, 1e-9),
            "val_pck": None,
            "val_pck_0.05": None,
            "best": False,
        }
        if teacher is not None:
            row["label_loss"] = running_label / max(seen, 1)
            row["distill_loss"] = running_distill / max(seen, 1)
        last = epoch + 1 == total_epochs
        if val_loader is not None and ((epoch + 1) % max(1, cfg.val_every) == 0 or last):
            coords, _ = predict_dataset(model, val_loader, device, cfg.stride, cfg.flip_test, channels_last)
            row["val_pck"] = pck(coords, val_ds.records, cfg.pck_threshold)
            row["val_pck_0.05"] = pck(coords, val_ds.records, 0.05)
            if best_metric is None or row["val_pck"] > best_metric:
                best_metric, best_epoch = row["val_pck"], epoch + 1
                row["best"] = True
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        log.info(
            "%sepoch %d/%d loss %.3e%s val PCK@%.2g %s (%.1f img/s)", log_prefix, epoch + 1, total_epochs,
            row["train_loss"], f" (distill {row['distill_loss']:.3e})" if teacher is not None else "",
            cfg.pck_threshold, "-" if row["val_pck"] is None else f"{row['val_pck']:.3f}", row["images_per_s"],
        )
        if row["best"] or (val_loader is None and last):
            save("best.pt", epoch + 1)
        save("last.pt", epoch + 1)
        if out_dir is not None:
            write_logs(out_dir, history, plot=row["val_pck"] is not None or last)

    if out_dir is not None and val_loader is None and not (out_dir / "best.pt").exists():
        save("best.pt", total_epochs)
    final = next((h["val_pck"] for h in reversed(history) if h.get("val_pck") is not None), None)
    return {
        "history": history,
        "best_metric": best_metric,
        "best_epoch": best_epoch,
        "final_metric": final,
        "epochs": total_epochs,
        "device": str(device),
        "pruned": pruned,
        "out_dir": str(out_dir) if out_dir is not None else None,
        "data": data_summary,
        "distill_weight": distill_weight if teacher is not None else None,
        "distill_loss": history[-1].get("distill_loss") if history else None,
    }
