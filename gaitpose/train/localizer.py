"""Train the person localiser on the subject boxes of gaitpose label files, and export it to ONNX.

``gaitpose train-localizer --train train.json --val val.json --out RUN_DIR --export models/localizer/model.onnx``

The labels are the pseudo-label files (``gaitpose.labels``): every annotation's ``bbox`` is the
subject's box. Frames are letterboxed to the network input exactly as the runtime
(:class:`gaitpose.infer.localizer.Letterbox`) does, then augmented in input space (flip, scale,
shift, brightness/contrast), so training and serving see the same geometry.

Imports torch at module level: only the ``train-localizer`` command body imports this module.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from gaitpose.codec import input_to_heatmap
from gaitpose.errors import InputError
from gaitpose.fsutil import write_json_atomic
from gaitpose.geometry import box_iou
from gaitpose.infer.localizer import Letterbox, decode_localizer
from gaitpose.labels import load_records
from gaitpose.modelmeta import ModelMeta
from gaitpose.nn.localizer import LocalizerConfig, LocalizerForExport, build_localizer, localizer_loss
from gaitpose.normalise import normalise_rgb, rgb_normaliser

log = logging.getLogger(__name__)


@dataclass
class LocalizerTrainConfig:
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    max_images: int | None = None  # cap per split, for quick runs
    threads: int | None = None
    cache_limit: int = 4000  # letterboxed frames kept in RAM (uint8, ~184 kB each at 192x320)


@dataclass
class Sample:
    image_path: Path
    boxes: np.ndarray  # (n, 4) x, y, w, h frame pixels


def load_samples(label_path: str | os.PathLike[str], max_images: int | None = None, seed: int = 0) -> list[Sample]:
    """Group the label file's subject boxes by image."""
    by_image: dict[Path, list[np.ndarray]] = defaultdict(list)
    for r in load_records(label_path, min_keypoints=1):
        if r.bbox[2] > 1 and r.bbox[3] > 1:
            by_image[r.image_path].append(r.bbox)
    samples = [Sample(p, np.stack(b).astype(np.float32)) for p, b in sorted(by_image.items())]
    if not samples:
        raise InputError(label_path, "no annotations with a subject bbox")
    if max_images is not None and len(samples) > max_images:
        rng = np.random.default_rng(seed)
        samples = [samples[i] for i in sorted(rng.choice(len(samples), max_images, replace=False))]
    return samples


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(path, "frame image is missing or unreadable")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def make_targets(boxes_in: np.ndarray, input_wh: tuple[int, int], stride: int) -> tuple[np.ndarray, ...]:
    """Centre heatmap (1, h, w), regression targets (4, h, w) and mask (1, h, w) for boxes in input pixels."""
    w_in, h_in = input_wh
    hw, hh = w_in // stride, h_in // stride
    heat = np.zeros((1, hh, hw), np.float32)
    reg = np.zeros((4, hh, hw), np.float32)
    mask = np.zeros((1, hh, hw), np.float32)
    ys, xs = np.mgrid[0:hh, 0:hw].astype(np.float32)
    for x, y, w, h in boxes_in:
        c = input_to_heatmap(np.array([x + w / 2, y + h / 2]), stride)
        cx, cy = int(np.rint(float(c[0]))), int(np.rint(float(c[1])))
        if not (0 <= cx < hw and 0 <= cy < hh) or w < 2 or h < 2:
            continue
        sigma = max(0.8, 0.1 * min(w, h) / stride)
        g = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
        heat[0] = np.maximum(heat[0], g)
        heat[0, cy, cx] = 1.0
        reg[:, cy, cx] = (w / w_in, h / h_in, c[0] - cx, c[1] - cy)
        mask[0, cy, cx] = 1.0
    return heat, reg, mask


class LocalizerDataset(torch.utils.data.Dataset):
    def __init__(self, samples: list[Sample], meta: ModelMeta, train: bool, cache_limit: int = 4000) -> None:
        self.samples = samples
        self.meta = meta
        self.train = train
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.cache_limit = cache_limit
        self._normaliser = rgb_normaliser(meta)

    def __len__(self) -> int:
        return len(self.samples)

    def _letterboxed(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i in self.cache:
            return self.cache[i]
        s = self.samples[i]
        rgb = _read_rgb(s.image_path)
        lb = Letterbox.fit((rgb.shape[1], rgb.shape[0]), self.meta.input_wh)
        item = (lb.apply(rgb), np.stack([lb.box_to_input(b) for b in s.boxes]).astype(np.float32))
        if len(self.cache) < self.cache_limit:
            self.cache[i] = item
        return item

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        img, boxes = self._letterboxed(i)
        w_in, h_in = self.meta.input_wh
        boxes = boxes.copy()
        if self.train:
            rng = np.random.default_rng()
            if rng.random() < 0.5:
                img = img[:, ::-1]
                boxes[:, 0] = w_in - boxes[:, 0] - boxes[:, 2]
            s = float(rng.uniform(0.6, 1.3))
            tx = float(rng.uniform(-0.25, 0.25) * w_in)
            ty = float(rng.uniform(-0.15, 0.15) * h_in)
            m = np.array([[s, 0, (1 - s) * w_in / 2 + tx], [0, s, (1 - s) * h_in / 2 + ty]], np.float32)
            img = cv2.warpAffine(np.ascontiguousarray(img), m, (w_in, h_in), borderValue=(0, 0, 0))
            boxes[:, :2] = boxes[:, :2] * s + m[:, 2]
            boxes[:, 2:] *= s
            x = img.astype(np.float32) * float(rng.uniform(0.7, 1.3)) + float(rng.uniform(-25, 25))
            img = np.clip(x, 0, 255)
        x = normalise_rgb(np.asarray(img), self.meta, self._normaliser)  # as OnnxLocalizer.preprocess does
        heat, reg, mask = make_targets(boxes, (w_in, h_in), self.meta.stride)
        t = torch.from_numpy
        return t(np.ascontiguousarray(x)), t(heat), t(reg), t(mask)


def localizer_meta(cfg: LocalizerConfig, training: dict[str, Any] | None = None) -> ModelMeta:
    """The metadata the runtime (``OnnxLocalizer``) reads: input size, stride, letterbox and output layout."""
    import gaitpose

    return ModelMeta(
        kind="localizer",
        input_size=(int(cfg.input_size[0]), int(cfg.input_size[1])),
        in_channels=3,
        stride=int(cfg.stride),
        keypoint_names=(),
        flip_pairs=(),
        version=gaitpose.__version__,
        training=dict(training or {}),
        extra={
            "letterbox": {"align": "center", "pad_rgb": [0, 0, 0], "resize": "per-axis scale, aspect kept"},
            "outputs": ["center_sigmoid", "w_over_input_w", "h_over_input_h", "offset_x_cells", "offset_y_cells"],
            "model_cfg": cfg.to_dict(),
        },
    )


@torch.no_grad()
def evaluate(net: torch.nn.Module, ds: LocalizerDataset, batch_size: int = 32) -> dict[str, float]:
    """Validation loss plus detection quality of the best peak: mean IoU and recall at IoU 0.5."""
    net.eval()
    stride = ds.meta.stride
    lb_in = Letterbox.fit(ds.meta.input_wh, ds.meta.input_wh)  # identity: compare in input pixels
    losses, ious = [], []
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False)
    idx = 0
    for x, heat, reg, mask in loader:
        out = net(x)
        loss, _ = localizer_loss(out, heat, reg, mask)
        losses.append(float(loss) * len(x))
        maps = out.numpy().copy()
        maps[:, 0] = 1.0 / (1.0 + np.exp(-maps[:, 0]))
        for b in range(len(x)):
            gt = ds._letterboxed(idx)[1]
            idx += 1
            dets = decode_localizer(maps[b], lb_in, stride, score_threshold=0.05, max_detections=1)
            ious.append(max((box_iou(dets[0][0], g) for g in gt), default=0.0) if dets else 0.0)
    n = max(len(ds), 1)
    iou = np.asarray(ious)
    return {"loss": sum(losses) / n, "mean_iou": float(iou.mean()) if iou.size else 0.0,
            "recall_iou50": float((iou >= 0.5).mean()) if iou.size else 0.0}


def train_localizer(
    train_json: str | os.PathLike[str],
    val_json: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    export_path: str | os.PathLike[str] | None = None,
    cfg: LocalizerConfig | None = None,
    tcfg: LocalizerTrainConfig | None = None,
) -> dict[str, Any]:
    """Train, keep the best checkpoint by validation IoU, export it. Returns the run summary."""
    from gaitpose.export.onnx_export import export_onnx

    cfg = cfg or LocalizerConfig()
    tcfg = tcfg or LocalizerTrainConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if tcfg.threads:
        torch.set_num_threads(int(tcfg.threads))
    torch.manual_seed(tcfg.seed)
    meta = localizer_meta(cfg)
    train_s = load_samples(train_json, tcfg.max_images, tcfg.seed)
    val_s = load_samples(val_json, tcfg.max_images, tcfg.seed) if val_json else train_s[: max(1, len(train_s) // 10)]
    train_ds = LocalizerDataset(train_s, meta, train=True, cache_limit=tcfg.cache_limit)
    val_ds = LocalizerDataset(val_s, meta, train=False, cache_limit=tcfg.cache_limit)
    loader = torch.utils.data.DataLoader(train_ds, batch_size=tcfg.batch_size, shuffle=True, drop_last=False)
    net = build_localizer(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    total = max(1, tcfg.epochs * len(loader))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    best: dict[str, Any] = {"mean_iou": -1.0}
    history = []
    ckpt_path = out_dir / "localizer_best.pt"
    t0 = time.perf_counter()
    for epoch in range(tcfg.epochs):
        net.train()
        parts: dict[str, float] = defaultdict(float)
        n = 0
        for x, heat, reg, mask in loader:
            out = net(x)
            loss, comp = localizer_loss(out, heat, reg, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            for k, v in comp.items():
                parts[k] += v * len(x)
            n += len(x)
        val = evaluate(net, val_ds, tcfg.batch_size)
        row = {"epoch": epoch, **{f"train_{k}": v / max(n, 1) for k, v in parts.items()}}
        row.update({f"val_{k}": v for k, v in val.items()})
        history.append(row)
        log.info("epoch %d  heat %.3f size %.4f  val IoU %.3f recall@.5 %.3f", epoch, row.get("train_heat", 0),
                 row.get("train_size", 0), val["mean_iou"], val["recall_iou50"])
        if val["mean_iou"] > best["mean_iou"]:
            best = {**val, "epoch": epoch}
            torch.save({"cfg": cfg.to_dict(), "state_dict": net.state_dict(), "epoch": epoch, "val": val}, ckpt_path)
    summary: dict[str, Any] = {
        "train": str(train_json), "val": str(val_json) if val_json else None,
        "n_train_images": len(train_s), "n_val_images": len(val_s),
        "params": sum(p.numel() for p in net.parameters()), "best": best,
        "train_cfg": asdict(tcfg), "model_cfg": cfg.to_dict(), "elapsed_s": time.perf_counter() - t0,
        "history": history, "checkpoint": str(ckpt_path),
    }
    if export_path is not None:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        net.load_state_dict(state["state_dict"])
        meta.training = {"n_train_images": len(train_s), "epoch": best.get("epoch"),
                         "val_mean_iou": best.get("mean_iou"), "val_recall_iou50": best.get("recall_iou50")}
        export_onnx(LocalizerForExport(net), meta, export_path, source_checkpoint=ckpt_path)
        meta_json = Path(export_path).with_name("meta.json")
        write_json_atomic(meta_json, json.loads(meta.to_json()), indent=2)
        summary["export"] = str(export_path)
    write_json_atomic(out_dir / "summary.json", summary, indent=2)
    return summary
