"""The compact top-down SPPE student: inverted-residual encoder + light top-down decoder.

Design notes
- MobileNetV2-style inverted residual blocks (1x1 expand, 3x3 depthwise, 1x1 project) with a
  BatchNorm after *every* convolution: network slimming ranks channels by BN scale.
- A small FPN-like decoder fuses stride 32/16/8/4 features by nearest upsampling and addition,
  then a depthwise-separable refinement at stride 4 and a 1x1 heatmap head. Upsampling by
  interpolation rather than transposed convolutions keeps MACs low and exports cleanly.
- Plain torch only; no pretrained weights (none are reachable), trained from scratch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gaitpose.skeleton import NUM_KEYPOINTS


@dataclass
class ModelConfig:
    """Architecture hyper-parameters; saved next to every checkpoint."""

    input_size: tuple[int, int] = (256, 192)  # (height, width)
    in_channels: int = 3
    num_keypoints: int = NUM_KEYPOINTS
    # (expansion, out_channels, repeats, stride) per encoder stage, after a stride-2 stem.
    stages: list[tuple[int, int, int, int]] = field(
        default_factory=lambda: [
            (1, 16, 1, 1),  # stride 2
            (4, 24, 2, 2),  # stride 4
            (4, 32, 3, 2),  # stride 8
            (4, 64, 3, 2),  # stride 16
            (4, 96, 2, 1),  # stride 16
            (4, 160, 2, 2),  # stride 32
        ]
    )
    stem_channels: int = 16
    decoder_channels: int = 64
    stride: int = 4

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["stages"] = [list(s) for s in self.stages]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        d = dict(d)
        if "input_size" in d:
            d["input_size"] = tuple(d["input_size"])
        if "stages" in d:
            d["stages"] = [tuple(s) for s in d["stages"]]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def init_conv_bn_weights(module: nn.Module) -> None:
    """He-normal convolutions, unit BN scales: the start every gaitpose network trains from."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn(cin, hidden, 1))
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class StudentPose(nn.Module):
    """Person crop (N, C, H, W) -> heatmaps (N, K, H/4, W/4)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.stem = conv_bn(cfg.in_channels, cfg.stem_channels, 3, 2)
        stages = []
        cin = cfg.stem_channels
        stride = 2
        self.tap_strides: list[int] = []
        for t, c, n, s in cfg.stages:
            blocks = []
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
            stride *= s
            stages.append(nn.Sequential(*blocks))
            self.tap_strides.append(stride)
        self.stages = nn.ModuleList(stages)
        # Lateral taps: the last stage at each stride 4, 8, 16, 32.
        self.tap_index: dict[int, int] = {}
        for i, st in enumerate(self.tap_strides):
            if st >= cfg.stride:
                self.tap_index[st] = i
        tap_channels = {st: cfg.stages[i][1] for st, i in self.tap_index.items()}
        d = cfg.decoder_channels
        self.lateral_strides = sorted(self.tap_index)  # e.g. [4, 8, 16, 32]
        self.laterals = nn.ModuleList([conv_bn(tap_channels[st], d, 1) for st in self.lateral_strides])
        self.refine = nn.Sequential(conv_bn(d, d, 3, groups=d), conv_bn(d, d, 1))
        self.head = nn.Conv2d(d, cfg.num_keypoints, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        init_conv_bn_weights(self)
        nn.init.normal_(self.head.weight, std=0.001)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        taps: dict[int, torch.Tensor] = {}
        for i, stage in enumerate(self.stages):
            x = stage(x)
            for st, idx in self.tap_index.items():
                if idx == i:
                    taps[st] = x
        y = None
        for st, lateral in zip(reversed(self.lateral_strides), reversed(self.laterals), strict=True):
            f = lateral(taps[st])
            y = f if y is None else f + F.interpolate(y, size=f.shape[-2:], mode="nearest")
        assert y is not None
        return self.head(self.refine(y))


def build_model(cfg: ModelConfig | dict[str, Any] | None = None) -> StudentPose:
    """Build the student from a config (dataclass or dict, e.g. read back from a checkpoint)."""
    if cfg is None:
        cfg = ModelConfig()
    elif isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    return StudentPose(cfg)


def count_params_macs(model: nn.Module, input_size: tuple[int, int], in_channels: int = 3) -> tuple[int, int]:
    """(parameters, multiply-accumulates) for one crop, counted by hooks on conv/linear layers.

    MACs of convolutions and linear layers only (BN/ReLU/add are negligible and are not counted
    by the RTMPose / Lite-HRNet papers either).
    """
    macs = 0

    def conv_hook(mod: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = mod.kernel_size
        macs += int(out.numel() // out.shape[0]) * (mod.in_channels // mod.groups) * kh * kw

    def linear_hook(mod: nn.Linear, _inp: Any, out: torch.Tensor) -> None:
        nonlocal macs
        macs += int(out.numel() // out.shape[0]) * mod.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, in_channels, *input_size, device=p.device, dtype=p.dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return params, macs
