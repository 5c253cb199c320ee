"""A user-supplied top-down ONNX pose model (RTMPose, DWPose, ViTPose, a gaitpose student...) as teacher.

Stronger teachers than MediaPipe exist as ONNX exports, but their weights cannot be downloaded
here, so everything model-specific comes from a small YAML file next to the model:

    model: rtmpose-halpe26.onnx      # path, relative to the YAML file
    input_size: [256, 192]           # H, W of the network input
    mean: [123.675, 116.28, 103.53]  # per channel, applied after `scale`
    std: [58.395, 57.12, 57.375]
    scale: 1.0                       # multiply 0..255 pixels by this first (1/255 for 0..1 models)
    channel_order: rgb               # or bgr
    output: simcc                    # heatmap | simcc
    simcc_split_ratio: 2.0           # SimCC bins per input pixel
    keypoints: halpe26               # a gaitpose.skeleton.SOURCE_LAYOUTS name or 21 source indices
    min_score: 0.3                   # joints scoring below are reported missing (score 0)

Heatmap outputs (N, K, h, w) are decoded with gaitpose's DARK decoder (stride = input / map
size, pixel-centre convention); SimCC outputs are two (N, K, W*r) and (N, K, H*r) logit vectors
whose argmax / r is the input pixel, as MMPose encodes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from data_tools.teachers.base import TeacherOutput
from gaitpose.codec import decode_heatmaps
from gaitpose.errors import InputError
from gaitpose.skeleton import NUM_KEYPOINTS, SOURCE_LAYOUTS


@dataclass
class OnnxTeacherConfig:
    model: Path
    input_size: tuple[int, int] = (256, 192)  # H, W
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    scale: float = 1.0 / 255.0
    channel_order: str = "rgb"
    output: str = "heatmap"
    simcc_split_ratio: float = 2.0
    keypoints: list[int] = field(default_factory=lambda: list(range(NUM_KEYPOINTS)))
    min_score: float = 0.3
    threads: int = 1

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base: Path, source: Path | None = None) -> OnnxTeacherConfig:
        where = source or base

        def bad(reason: str) -> InputError:
            return InputError(where, reason)

        if "model" not in raw:
            raise bad("teacher config lacks 'model' (path to the .onnx file)")
        model = Path(str(raw["model"]))
        model = model if model.is_absolute() else (base / model)
        size = raw.get("input_size", [256, 192])
        if not (isinstance(size, list | tuple) and len(size) == 2 and all(int(v) > 0 for v in size)):
            raise bad(f"input_size must be [H, W], got {size!r}")
        order = str(raw.get("channel_order", "rgb")).lower()
        if order not in ("rgb", "bgr"):
            raise bad(f"channel_order must be rgb or bgr, got {order!r}")
        output = str(raw.get("output", "heatmap")).lower()
        if output not in ("heatmap", "simcc"):
            raise bad(f"output must be heatmap or simcc, got {output!r}")
        kp = raw.get("keypoints", "gaitpose21")
        if isinstance(kp, str):
            if kp not in SOURCE_LAYOUTS:
                raise bad(f"unknown keypoint layout {kp!r}; known: {sorted(SOURCE_LAYOUTS)} or a list of 21 indices")
            index = list(SOURCE_LAYOUTS[kp])
        else:
            index = [int(v) for v in kp]
            if len(index) != NUM_KEYPOINTS:
                raise bad(f"keypoints index list must have {NUM_KEYPOINTS} entries, got {len(index)}")
        mean = tuple(float(v) for v in raw.get("mean", cls.mean))
        std = tuple(float(v) for v in raw.get("std", cls.std))
        if len(mean) != 3 or len(std) != 3 or any(s == 0 for s in std):
            raise bad("mean and std need three values each, std non-zero")
        return cls(
            model=model,
            input_size=(int(size[0]), int(size[1])),
            mean=mean,
            std=std,
            scale=float(raw.get("scale", 1.0 / 255.0)),
            channel_order=order,
            output=output,
            simcc_split_ratio=float(raw.get("simcc_split_ratio", 2.0)),
            keypoints=index,
            min_score=float(raw.get("min_score", 0.3)),
            threads=int(raw.get("threads", 1)),
        )


class OnnxTeacher:
    """Run a top-down ONNX pose model on a person crop; keypoints come back in the crop's pixels."""

    name = "onnx"

    def __init__(self, cfg: OnnxTeacherConfig) -> None:
        from gaitpose.infer.session import make_session

        self.cfg = cfg
        if not cfg.model.exists():
            raise InputError(cfg.model, "teacher model file does not exist")
        self.session = make_session(cfg.model, max(1, cfg.threads))
        self.input_name = self.session.get_inputs()[0].name
        outs = self.session.get_outputs()
        if cfg.output == "simcc" and len(outs) < 2:
            raise InputError(cfg.model, "output: simcc needs a model with two outputs (x and y logits)")
        self._mean = np.asarray(cfg.mean, np.float32).reshape(3, 1, 1)
        self._std = np.asarray(cfg.std, np.float32).reshape(3, 1, 1)
        self._index = np.asarray(cfg.keypoints, dtype=np.int64)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> OnnxTeacher:
        import yaml

        path = Path(path)
        if not path.exists():
            raise InputError(path, "teacher config does not exist")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InputError(path, f"not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(raw, dict):
            raise InputError(path, "teacher config must be a YAML mapping")
        return cls(OnnxTeacherConfig.from_dict(raw, path.resolve().parent, path))

    @property
    def input_wh(self) -> tuple[int, int]:
        return int(self.cfg.input_size[1]), int(self.cfg.input_size[0])

    def preprocess(self, crop_rgb: np.ndarray) -> np.ndarray:
        w, h = self.input_wh
        img = crop_rgb if crop_rgb.shape[:2] == (h, w) else cv2.resize(crop_rgb, (w, h), interpolation=cv2.INTER_LINEAR)
        if self.cfg.channel_order == "bgr":
            img = img[..., ::-1]
        x = img.astype(np.float32).transpose(2, 0, 1) * self.cfg.scale
        return ((x - self._mean) / self._std)[None].astype(np.float32)

    def decode(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Source-layout keypoints in network-input pixels and their scores."""
        w, h = self.input_wh
        if self.cfg.output == "heatmap":
            hm = np.asarray(outputs[0], np.float32)[0]
            stride_x, stride_y = w / hm.shape[-1], h / hm.shape[-2]
            if abs(stride_x - stride_y) > 1e-6:
                raise InputError(self.cfg.model, f"heatmap {hm.shape[-2:]} does not match input {h}x{w} aspect")
            coords, scores = decode_heatmaps(hm, stride_x)
            return coords, scores
        sx, sy = (np.asarray(o, np.float32)[0] for o in outputs[:2])
        r = self.cfg.simcc_split_ratio
        if sx.shape[-1] != round(w * r) and sy.shape[-1] == round(w * r):
            sx, sy = sy, sx
        x = np.argmax(sx, axis=-1).astype(np.float32) / r
        y = np.argmax(sy, axis=-1).astype(np.float32) / r
        scores = np.minimum(sx.max(axis=-1), sy.max(axis=-1))
        return np.stack([x, y], axis=-1), scores

    def __call__(self, crop_rgb: np.ndarray) -> TeacherOutput:
        ch, cw = crop_rgb.shape[:2]
        w, h = self.input_wh
        outputs = self.session.run(None, {self.input_name: self.preprocess(crop_rgb)})
        coords, scores = self.decode(outputs)
        if int(self._index.max()) >= len(coords):
            raise InputError(self.cfg.model, f"model gives {len(coords)} keypoints, config indexes {self._index.max()}")
        coords, scores = coords[self._index], scores[self._index]
        # network-input pixel centres -> crop pixel centres
        kp = np.empty_like(coords)
        kp[:, 0] = (coords[:, 0] + 0.5) * (cw / w) - 0.5
        kp[:, 1] = (coords[:, 1] + 0.5) * (ch / h) - 0.5
        scores = np.clip(scores, 0.0, 1.0).astype(np.float32)
        scores = np.where(scores >= self.cfg.min_score, scores, 0.0).astype(np.float32)
        return TeacherOutput(kp.astype(np.float32), scores)

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
