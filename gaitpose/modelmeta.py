"""Metadata embedded in every exported ONNX model (key ``gaitpose``), read by the runtime.

The runtime needs nothing but the .onnx file: input size, normalisation, channels, keypoint
names and stride travel inside it, so a model and its pre-/post-processing cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from gaitpose.skeleton import FLIP_PAIRS, KEYPOINTS

META_KEY = "gaitpose"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelMeta:
    """What a runtime needs to run a gaitpose ONNX model."""

    kind: str = "sppe"  # "sppe" (top-down pose) or "localizer" (person centre + size)
    input_size: tuple[int, int] = (256, 192)  # (height, width)
    in_channels: int = 3  # 3 = RGB, 4 = RGB + depth
    mean: tuple[float, ...] = IMAGENET_MEAN  # per channel, on 0..1 RGB
    std: tuple[float, ...] = IMAGENET_STD
    stride: int = 4  # input pixels per output cell
    keypoint_names: tuple[str, ...] = KEYPOINTS
    flip_pairs: tuple[tuple[int, int], ...] = FLIP_PAIRS
    depth_mean_mm: float = 3000.0  # normalisation of the optional depth channel
    depth_std_mm: float = 1500.0
    padding: float = 1.25  # box padding used by the crop
    version: str = "0.1.0"
    source_sha256: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        raw = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in raw.items() if k in known}
        for key in ("input_size", "mean", "std", "keypoint_names"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        if "flip_pairs" in kwargs:
            kwargs["flip_pairs"] = tuple(tuple(p) for p in kwargs["flip_pairs"])
        return cls(**kwargs)

    @property
    def input_wh(self) -> tuple[int, int]:
        return int(self.input_size[1]), int(self.input_size[0])

    @property
    def aspect_ratio(self) -> float:
        return self.input_size[1] / self.input_size[0]
