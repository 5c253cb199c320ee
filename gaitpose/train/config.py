"""Training configuration: one dataclass, saved as YAML beside every run.

Precedence is defaults < ``--config cfg.yaml`` < command-line flags, and the *resolved* config is
written to the run folder so a run can be repeated from its own output. No torch import here.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from gaitpose.errors import InputError


@dataclass
class AugConfig:
    """Augmentation of training crops (all off when the dataset is built with ``augment=False``)."""

    scale: float = 0.25  # crop size multiplied by a factor in [1 - scale, 1 + scale]
    rotation: float = 30.0  # degrees, N(0, rotation) clipped to +-2*rotation
    rotation_prob: float = 0.6
    shift: float = 0.05  # centre jitter as a fraction of the crop size
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_keypoints: int = 6  # labelled joints a record needs before half-body is tried
    brightness: float = 0.25  # multiplicative, factor in [1 - b, 1 + b]
    contrast: float = 0.25
    saturation: float = 0.25
    blur_prob: float = 0.1  # light Gaussian blur: motion blur of walking limbs
    # The frame ends inside the crop (a patient walking into or out of view): black out the crop
    # beyond a cut up to ``border_cut_max`` of the subject's extent into it, on the left, right or
    # bottom, and drop the labels there; runtime crops are padded with the same black.
    border_cut_prob: float = 0.2
    border_cut_max: float = 0.35
    depth_dropout_prob: float = 0.2  # zero the depth channel so 4-channel models still work without depth


@dataclass
class TrainConfig:
    """Everything a training run needs besides the data and the network weights."""

    epochs: int = 120
    batch_size: int = 32
    lr: float = 2e-3
    min_lr_ratio: float = 0.01  # cosine schedule ends at lr * min_lr_ratio
    weight_decay: float = 1e-4  # not applied to BN and biases (network slimming ranks BN scales)
    warmup_epochs: float = 2.0
    grad_clip: float | None = 5.0
    sigma: float = 2.0
    input_size: tuple[int, int] = (256, 192)  # (height, width)
    in_channels: int = 3
    stride: int = 4
    padding: float = 1.25
    min_keypoints: int = 1  # records with fewer labelled joints are skipped
    augment: bool = True  # False: train on the plain crops (overfitting checks, ablations)
    aug: AugConfig = field(default_factory=AugConfig)
    seed: int = 0
    workers: int = 2
    cache_images: bool = True  # decode each subject region once and keep it in memory (see PoseDataset)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    threads: int = 2  # torch.set_num_threads on CPU
    channels_last: bool = True  # about 2x faster training on CPU for depthwise convs
    amp: bool = True  # bfloat16/float16 autocast, used only on CUDA
    val_every: int = 1
    flip_test: bool = False  # flip test during validation
    pck_threshold: float = 0.1  # validation metric: PCK at this fraction of the box's longer side
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides (stages, widths...)

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        if isinstance(self.aug, dict):
            self.aug = _build(AugConfig, self.aug, "aug")

    @property
    def input_wh(self) -> tuple[int, int]:
        return self.input_size[1], self.input_size[0]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return _build(cls, d, "")

    def updated(self, **overrides: Any) -> TrainConfig:
        """Copy with the given (non-None) fields replaced: how CLI flags override YAML."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def model_config_dict(self) -> dict[str, Any]:
        """ModelConfig fields implied by this training config (input, channels, stride + overrides)."""
        d = dict(self.model)
        d.update(input_size=list(self.input_size), in_channels=self.in_channels, stride=self.stride)
        return d


def _build(cls: type, d: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ValueError(f"unknown training option(s): {', '.join(prefix + u for u in unknown)}")
    kwargs = dict(d)
    if "input_size" in kwargs:
        kwargs["input_size"] = parse_input_size(kwargs["input_size"])
    return cls(**kwargs)


def parse_input_size(value: str | list[int] | tuple[int, int]) -> tuple[int, int]:
    """'256x192' (height x width) or a two-item sequence -> (height, width)."""
    if isinstance(value, str):
        parts = value.lower().replace(",", "x").split("x")
    else:
        parts = list(value)
    try:
        h, w = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"input size must look like 256x192 (height x width), got {value!r}") from None
    if h < 32 or w < 32 or h % 4 or w % 4:
        raise ValueError(f"input size {h}x{w} must be multiples of 4 (the heatmap stride), at least 32")
    return h, w


def load_config(path: str | os.PathLike[str] | None, base: TrainConfig | None = None) -> TrainConfig:
    """Defaults overridden by a YAML file (keys as in TrainConfig; ``aug`` and ``model`` nested)."""
    cfg = base or TrainConfig()
    if path is None:
        return cfg
    path = Path(path)
    if not path.exists():
        raise InputError(path, "config file does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise InputError(path, "config must be a YAML mapping of option: value")
    merged = cfg.to_dict()
    aug = {**merged["aug"], **(raw.pop("aug", None) or {})}
    model = {**merged["model"], **(raw.pop("model", None) or {})}
    merged.update(raw)
    merged["aug"] = aug
    merged["model"] = model
    try:
        return TrainConfig.from_dict(merged)
    except (TypeError, ValueError) as exc:
        raise InputError(path, str(exc)) from None


def save_config(cfg: TrainConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML (atomically)."""
    from gaitpose.fsutil import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
