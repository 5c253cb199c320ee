"""A tiny CenterNet-style person localiser (torch): full frame in, person centres and sizes out.

Why it exists: the SPPE is top-down and needs a person box. The subject tracker gets that box from
the previous frame's keypoints almost always; this network only (re)finds the person at the start
and when the track is lost, so it is kept very small (~0.11 M parameters) and runs on the whole
frame letterboxed to a low resolution (default 192x320 HxW, landscape like most clinic videos).

Outputs at stride 4 (one tensor, channels in this order):
  0     centre heatmap logit (sigmoid + focal loss while training; the exported graph applies the sigmoid)
  1, 2  box width and height divided by the network input width and height
  3, 4  sub-cell offset of the centre, in heatmap cells (cell j <-> input pixel (j + 0.5) * 4 - 0.5)

Design: MobileNet-like depthwise-separable blocks with BatchNorm after every convolution, a
small FPN (nearest upsampling + addition) back to stride 4, 1x1 heads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gaitpose.nn.student import conv_bn, init_conv_bn_weights

HEAT, SIZE_W, SIZE_H, OFF_X, OFF_Y = range(5)


@dataclass
class LocalizerConfig:
    input_size: tuple[int, int] = (192, 320)  # (height, width), multiple of 32
    stem_channels: int = 24
    # (out_channels, repeats) per stage; every stage halves the resolution (stride 4, 8, 16, 32).
    stages: list[tuple[int, int]] = field(default_factory=lambda: [(32, 1), (64, 2), (96, 3), (160, 2)])
    decoder_channels: int = 64
    stride: int = 4

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["stages"] = [list(s) for s in self.stages]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LocalizerConfig:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "input_size" in d:
            d["input_size"] = tuple(d["input_size"])
        if "stages" in d:
            d["stages"] = [tuple(s) for s in d["stages"]]
        return cls(**d)


class DSBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1, both followed by BN; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.dw = conv_bn(cin, cin, 3, stride, groups=cin)
        self.pw = conv_bn(cin, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return x + y if self.residual else y


class PersonLocalizer(nn.Module):
    """Letterboxed frame (N, 3, H, W) -> raw maps (N, 5, H/4, W/4) (channel 0 is a logit)."""

    def __init__(self, cfg: LocalizerConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or LocalizerConfig()
        if cfg.stride != 4:
            raise ValueError("the localiser decodes at stride 4")
        self.stem = conv_bn(3, cfg.stem_channels, 3, 2)
        cin = cfg.stem_channels
        stages = []
        for cout, reps in cfg.stages:
            blocks = [DSBlock(cin, cout, 2)] + [DSBlock(cout, cout, 1) for _ in range(reps - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.ModuleList(stages)
        d = cfg.decoder_channels
        self.laterals = nn.ModuleList([conv_bn(c, d, 1) for c, _ in cfg.stages])
        self.refine = nn.Sequential(DSBlock(d, d, 1), DSBlock(d, d, 1))
        self.heat = nn.Conv2d(d, 1, 1)
        self.box = nn.Conv2d(d, 4, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        init_conv_bn_weights(self)
        nn.init.normal_(self.heat.weight, std=0.001)
        nn.init.constant_(self.heat.bias, -4.6)  # CenterNet prior: sigmoid ~ 0.01 everywhere
        nn.init.normal_(self.box.weight, std=0.001)
        nn.init.zeros_(self.box.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        y = None
        for f, lateral in zip(reversed(feats), reversed(self.laterals), strict=True):
            f = lateral(f)
            y = f if y is None else f + F.interpolate(y, size=f.shape[-2:], mode="nearest")
        assert y is not None
        y = self.refine(y)
        return torch.cat([self.heat(y), self.box(y)], dim=1)


class LocalizerForExport(nn.Module):
    """The graph that ships: the centre channel goes through a sigmoid so the runtime reads probabilities."""

    def __init__(self, net: PersonLocalizer) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return torch.cat([torch.sigmoid(y[:, :1]), y[:, 1:]], dim=1)


def build_localizer(cfg: LocalizerConfig | dict[str, Any] | None = None) -> PersonLocalizer:
    if isinstance(cfg, dict):
        cfg = LocalizerConfig.from_dict(cfg)
    return PersonLocalizer(cfg)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss on a Gaussian-splat centre target (1.0 at centres)."""
    pred = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.ge(0.999).float()
    neg = 1.0 - pos
    pos_loss = torch.log(pred) * (1 - pred) ** alpha * pos
    neg_loss = torch.log(1 - pred) * pred**alpha * (1 - target) ** beta * neg
    n_pos = pos.sum().clamp(min=1.0)
    return -(pos_loss.sum() + neg_loss.sum()) / n_pos


def localizer_loss(
    out: torch.Tensor, heat_t: torch.Tensor, reg_t: torch.Tensor, reg_mask: torch.Tensor, size_weight: float = 5.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """Focal loss on centres + L1 on size and offset at the centre cells only.

    ``reg_t`` (N, 4, h, w) holds (w, h, dx, dy) targets and ``reg_mask`` (N, 1, h, w) marks centre cells.
    Size is normalised by the input size (values ~0.1-1), so it gets a larger weight than the offset.
    """
    hl = focal_loss(out[:, :1], heat_t)
    n = reg_mask.sum().clamp(min=1.0)
    l1 = (out[:, 1:] - reg_t).abs() * reg_mask
    size_l = l1[:, :2].sum() / n
    off_l = l1[:, 2:].sum() / n
    total = hl + size_weight * size_l + off_l
    return total, {"heat": float(hl.detach()), "size": float(size_l.detach()), "offset": float(off_l.detach())}
