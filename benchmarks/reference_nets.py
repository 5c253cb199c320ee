"""Reference top-down pose networks, rebuilt in plain torch, to compare the student's cost against.

Why rebuild them: no model hub is reachable and torchvision/timm are not dependencies, but a
latency comparison only needs the *architecture* (weights do not change the arithmetic). Each
network follows its paper / reference code closely enough that parameters and MACs land on the
published figures (see ``../shared/docs/anchors.md``):

- ``simplebaseline_r50``: Xiao et al. 2018, ResNet-50 + three 4x4 stride-2 deconvolutions of
  256 channels + 1x1 head (published: 34.0 M params, 5.46 GFLOPs at 256x192 for 17 joints).
- ``fastpose_r50``: AlphaPose FastPose, ResNet-50 + PixelShuffle + two DUC blocks (3x3 conv,
  BN, ReLU, PixelShuffle) + 3x3 head; the SE-less variant.
- ``rtmpose_t``: RTMPose-t, CSPNeXt backbone at widen 0.375 / deepen 0.167 + RTMCC head
  (7x7 conv, ScaleNorm, linear to 256-d tokens, one gated attention unit, SimCC x/y linears with
  split ratio 2). Published: 3.34 M params, 0.36 GFLOPs for 17 joints.

All heads output the 21 gaitpose keypoints. Weights are random (kaiming init); only latency,
parameter count, MACs and file size are meaningful.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gaitpose.fsutil import atomic_path
from gaitpose.nn import count_params_macs
from gaitpose.skeleton import NUM_KEYPOINTS

INPUT_SIZE = (256, 192)  # (height, width)

# ----------------------------------------------------------------------------- ResNet-50


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """ResNet-50 (v1.5, stride on the 3x3 conv as in torchvision) without the classifier: stride 32."""

    out_channels = 2048

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        layers = []
        cin = 64
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = []
            for i in range(blocks):
                stage.append(Bottleneck(cin, planes, stride if i == 0 else 1))
                cin = planes * Bottleneck.expansion
            layers.append(nn.Sequential(*stage))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


class SimpleBaseline(nn.Module):
    """ResNet-50 -> 3 x (4x4 deconv stride 2, 256 ch, BN, ReLU) -> 1x1 conv: 256x192 -> K x 64 x 48."""

    def __init__(self, num_keypoints: int = NUM_KEYPOINTS, deconv_channels: int = 256) -> None:
        super().__init__()
        self.backbone = ResNet50()
        layers: list[nn.Module] = []
        cin = ResNet50.out_channels
        for _ in range(3):
            layers += [
                nn.ConvTranspose2d(cin, deconv_channels, 4, 2, 1, output_padding=0, bias=False),
                nn.BatchNorm2d(deconv_channels),
                nn.ReLU(inplace=True),
            ]
            cin = deconv_channels
        self.deconv = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, num_keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.deconv(self.backbone(x)))


class DUC(nn.Module):
    """Dense upsampling convolution (AlphaPose): 3x3 conv, BN, ReLU, PixelShuffle."""

    def __init__(self, cin: int, cout: int, upscale: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shuffle = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.relu(self.bn(self.conv(x))))


class FastPose(nn.Module):
    """AlphaPose FastPose (ResNet-50, no SE): PixelShuffle(2) -> DUC(512->1024) -> DUC(256->512) -> 3x3 conv."""

    def __init__(self, num_keypoints: int = NUM_KEYPOINTS) -> None:
        super().__init__()
        self.backbone = ResNet50()
        self.shuffle1 = nn.PixelShuffle(2)  # 2048 -> 512 channels, stride 32 -> 16
        self.duc1 = DUC(512, 1024)  # -> 256 channels, stride 8
        self.duc2 = DUC(256, 512)  # -> 128 channels, stride 4
        self.conv_out = nn.Conv2d(128, num_keypoints, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.duc2(self.duc1(self.shuffle1(self.backbone(x)))))


# ----------------------------------------------------------------------------- RTMPose-t


class ConvModule(nn.Sequential):
    """conv + BN + SiLU, as mmcv's ConvModule with the CSPNeXt defaults."""

    def __init__(self, cin: int, cout: int, k: int = 1, s: int = 1, groups: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.SiLU(inplace=True))
        super().__init__(*layers)


class CSPNeXtBlock(nn.Module):
    """3x3 conv, then a 5x5 depthwise-separable conv, with identity."""

    def __init__(self, cin: int, cout: int, add_identity: bool) -> None:
        super().__init__()
        self.conv1 = ConvModule(cin, cout, 3)
        self.dw = ConvModule(cout, cout, 5, groups=cout)
        self.pw = ConvModule(cout, cout, 1)
        self.add_identity = add_identity and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pw(self.dw(self.conv1(x)))
        return x + out if self.add_identity else out


class ChannelAttention(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc(w))


class CSPLayer(nn.Module):
    def __init__(self, cin: int, cout: int, num_blocks: int, add_identity: bool) -> None:
        super().__init__()
        mid = int(cout * 0.5)
        self.main = ConvModule(cin, mid, 1)
        self.short = ConvModule(cin, mid, 1)
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, mid, add_identity) for _ in range(num_blocks)])
        self.attention = ChannelAttention(2 * mid)
        self.final = ConvModule(2 * mid, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.blocks(self.main(x)), self.short(x)], dim=1)
        return self.final(self.attention(y))


class SPPBottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, kernels: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        mid = cin // 2
        self.conv1 = ConvModule(cin, mid, 1)
        self.pools = nn.ModuleList([nn.MaxPool2d(k, 1, k // 2) for k in kernels])
        self.conv2 = ConvModule(mid * (len(kernels) + 1), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x, *[p(x) for p in self.pools]], dim=1))


class CSPNeXt(nn.Module):
    """CSPNeXt P5 backbone (RTMDet / RTMPose), returning the stride-32 feature map."""

    # in, out, blocks, add_identity, use_spp
    ARCH = ((64, 128, 3, True, False), (128, 256, 6, True, False), (256, 512, 6, True, False),
            (512, 1024, 3, False, True))

    def __init__(self, widen: float = 0.375, deepen: float = 0.167) -> None:
        super().__init__()
        stem = int(64 * widen)
        self.stem = nn.Sequential(ConvModule(3, stem // 2, 3, 2), ConvModule(stem // 2, stem // 2, 3),
                                  ConvModule(stem // 2, stem, 3))
        stages = []
        for cin, cout, n, add_identity, use_spp in self.ARCH:
            cin, cout = int(cin * widen), int(cout * widen)
            n = max(round(n * deepen), 1)
            layers: list[nn.Module] = [ConvModule(cin, cout, 3, 2)]
            if use_spp:
                layers.append(SPPBottleneck(cout, cout))
            layers.append(CSPLayer(cout, cout, n, add_identity))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.out_channels = int(1024 * widen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class ScaleNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = dim**-0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class GAU(nn.Module):
    """RTMCC block: gated attention unit over the keypoint tokens (self-attention, squared ReLU)."""

    def __init__(self, num_tokens: int, dim: int, expansion: int = 2, s: int = 128) -> None:
        super().__init__()
        self.e = dim * expansion
        self.s = s
        self.ln = ScaleNorm(dim)
        self.uv = nn.Linear(dim, 2 * self.e + s, bias=False)
        self.gamma = nn.Parameter(torch.rand(2, s))
        self.beta = nn.Parameter(torch.rand(2, s))
        self.o = nn.Linear(self.e, dim, bias=False)
        self.res_scale = nn.Parameter(torch.ones(dim))
        self.num_tokens = num_tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.silu(self.uv(self.ln(x)))
        u, v, base = torch.split(y, [self.e, self.e, self.s], dim=-1)
        base = base.unsqueeze(2) * self.gamma[None, None] + self.beta[None, None]
        q, k = base[:, :, 0], base[:, :, 1]
        kernel = F.relu(torch.bmm(q, k.transpose(1, 2)) / math.sqrt(self.s)) ** 2
        out = self.o(u * torch.bmm(kernel, v))
        return x * self.res_scale + out


class RTMCCHead(nn.Module):
    def __init__(self, cin: int, num_keypoints: int, feat_hw: tuple[int, int], input_hw: tuple[int, int],
                 hidden: int = 256, split_ratio: float = 2.0, kernel: int = 7) -> None:
        super().__init__()
        self.final = nn.Conv2d(cin, num_keypoints, kernel, padding=kernel // 2)
        flat = feat_hw[0] * feat_hw[1]
        self.norm = ScaleNorm(flat)
        self.mlp = nn.Linear(flat, hidden, bias=False)
        self.gau = GAU(num_keypoints, hidden)
        self.cls_x = nn.Linear(hidden, int(input_hw[1] * split_ratio), bias=False)
        self.cls_y = nn.Linear(hidden, int(input_hw[0] * split_ratio), bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.final(x).flatten(2)
        x = self.gau(self.mlp(self.norm(x)))
        return self.cls_x(x), self.cls_y(x)


class RTMPoseT(nn.Module):
    """RTMPose-t-sized: CSPNeXt(0.375, 0.167) + RTMCC head -> SimCC x (K, 384) and y (K, 512) logits."""

    def __init__(self, num_keypoints: int = NUM_KEYPOINTS, input_hw: tuple[int, int] = INPUT_SIZE) -> None:
        super().__init__()
        self.backbone = CSPNeXt(0.375, 0.167)
        feat_hw = (input_hw[0] // 32, input_hw[1] // 32)
        self.head = RTMCCHead(self.backbone.out_channels, num_keypoints, feat_hw, input_hw)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(x))


def _init(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model.eval()


REFERENCE_NETS: dict[str, tuple[str, Callable[[], nn.Module]]] = {
    "simplebaseline_r50": ("SimpleBaseline ResNet-50", lambda: _init(SimpleBaseline())),
    "fastpose_r50": ("AlphaPose FastPose ResNet-50", lambda: _init(FastPose())),
    "rtmpose_t": ("RTMPose-t-sized (CSPNeXt-t + RTMCC)", lambda: _init(RTMPoseT())),
}


def build_reference(name: str) -> nn.Module:
    """Build one reference network by key (see ``REFERENCE_NETS``), random weights, eval mode."""
    if name not in REFERENCE_NETS:
        raise ValueError(f"unknown reference network {name!r}; choose from {', '.join(REFERENCE_NETS)}")
    torch.manual_seed(0)
    return REFERENCE_NETS[name][1]()


def count_macs(model: nn.Module, input_size: tuple[int, int] = INPUT_SIZE) -> tuple[int, int]:
    """(params, MACs): ``gaitpose.nn.count_params_macs`` plus transposed convolutions and attention matmuls.

    The shared counter hooks Conv2d and Linear only; SimpleBaseline spends ~1.4 G MACs in
    ConvTranspose2d, which the published 5.46 GFLOPs include, so they are added here. The GAU's
    two batched matmuls are added too (tiny: K x K x s + K x K x e).
    """
    extra = 0

    def deconv_hook(mod: nn.ConvTranspose2d, inp: Any, _out: torch.Tensor) -> None:
        nonlocal extra
        x = inp[0]
        kh, kw = mod.kernel_size
        extra += int(x.numel() // x.shape[0]) * (mod.out_channels // mod.groups) * kh * kw

    def gau_hook(mod: GAU, inp: Any, _out: torch.Tensor) -> None:
        nonlocal extra
        t = mod.num_tokens
        extra += t * t * mod.s + t * t * mod.e

    handles = []
    for m in model.modules():
        if isinstance(m, nn.ConvTranspose2d):
            handles.append(m.register_forward_hook(deconv_hook))
        elif isinstance(m, GAU):
            handles.append(m.register_forward_hook(gau_hook))
    try:
        params, macs = count_params_macs(model, input_size)  # its one forward pass fires these hooks too
    finally:
        for h in handles:
            h.remove()
    return params, macs + extra


@dataclass
class ReferenceModel:
    """One exported reference network and its static cost."""

    key: str
    title: str
    onnx_path: str
    params: int
    macs: int
    file_bytes: int
    output_shapes: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_reference(name: str, cache_dir: str | os.PathLike[str], *, opset: int = 17) -> ReferenceModel:
    """Build, measure and export one reference net to ``cache_dir/<name>.onnx`` (reused when present).

    Batch size is fixed at 1: the benchmark measures per-crop latency, and a static shape lets
    ONNX Runtime plan the whole graph, as a deployment of these models would.
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    title = REFERENCE_NETS[name][0] if name in REFERENCE_NETS else name
    model = build_reference(name)
    params, macs = count_macs(model)
    dummy = torch.zeros(1, 3, *INPUT_SIZE)
    with torch.no_grad():
        out = model(dummy)
    outs = out if isinstance(out, tuple) else (out,)
    shapes = [list(o.shape) for o in outs]
    path = cache / f"{name}.onnx"
    if not path.exists():
        names = ["simcc_x", "simcc_y"] if len(outs) == 2 else ["heatmaps"]
        with atomic_path(path) as tmp:
            torch.onnx.export(model, (dummy,), str(tmp), input_names=["input"], output_names=names,
                              opset_version=opset, do_constant_folding=True, dynamo=False)
    return ReferenceModel(name, title, str(path), params, macs, path.stat().st_size, shapes)
