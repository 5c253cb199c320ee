"""What ``gaitpose specialise`` takes (:class:`SpecialiseOptions`) and the constants its stages share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

STATE_VERSION = 1
STAGES = ("extract", "label", "split", "train", "prune", "polish", "export", "int8", "evaluate", "domain",
          "report")
OUT_MARKER = ".gaitpose-specialise"
# Frames per recording the domain reference is measured on: enough for stable percentiles (a few
# seconds of walking at 30-60 fps) while a clinic's long recordings do not stretch the run.
REFERENCE_MAX_FRAMES = 600
DEFAULT_INPUT_SIZE = (192, 144)
# Module-name prefixes the pruner never cuts (as in the shipped recipe: cutting the stem, first stage,
# decoder and residual-stream projections cost 20-40 PCK points).
PROTECT = ("stem", "stages.0", "laterals", "refine", "stages.*.block.2.*")
MAX_EPOCHS = 300
PROBE_RECORDS = 64  # crops in the one-epoch timing run that plans the training epochs
SPEEDUP_TARGET = 5.0  # the product target: per crop at least 5x faster than the general default
MAX_PRUNE_LOSS = 0.01  # PCK@0.1 the pruned network may lose against its parent (issue 3's rule)


@dataclass
class SpecialiseOptions:
    """Everything ``gaitpose specialise`` takes; see the command's help for each option."""

    recordings: list[Path]
    out: Path
    minutes: float = 20.0
    device: str = "auto"
    subjects_csv: Path | None = None
    roi: str | None = None
    held_out: list[Path] = field(default_factory=list)  # evaluation only, never trained on
    init: Path | None = None  # None: the shipped pretrained student when present
    no_init: bool = False  # train from random weights even when a pretrained student exists
    input_size: tuple[int, int] | None = None  # default: the init's, else 192x144
    epochs: int | None = None  # fixed training epochs instead of the budget's choice
    prune_epochs: int | None = None  # fixed pruning epoch budget instead of the budget's choice
    target_macs: float | None = None  # fixed pruning target (1.0: no pruning)
    crop_budget_ms: float | None = None  # per-crop latency budget (1 thread) the pruning aims at
    general_model: Path | None = None  # the model compared against (default: the shipped default)
    stride: int = 1  # extraction stride (every N-th frame)
    max_frames: int | None = None  # per recording
    max_size: int | None = None  # longest side of the extracted frames
    label_stride: int | None = None  # None: planned from the budget
    # Weight of the starting network's heatmaps beside the labels. 0.7: with a few minutes of one clinic's
    # video, the pull toward the general starting network keeps what the clinic's recordings do not show
    # (on the lab videos, fine-tuning on two front/side views at 0.3 lost 22 PCK points on the view from
    # behind through left/right swaps; 0.7 kept the starting network's level). Chosen after those two runs.
    distill_weight: float = 0.7
    workers: int = 2  # recordings labelled in parallel
    threads: int = 2  # torch / ONNX Runtime threads
    seed: int = 0
    latency_runs: int = 100

    def validate(self) -> None:
        if self.minutes <= 0:
            raise ValueError(f"--minutes must be positive, got {self.minutes}")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"--distill-weight must be in [0, 1], got {self.distill_weight}")
        if self.target_macs is not None and not 0.05 <= self.target_macs <= 1.0:
            raise ValueError(f"--target-macs must be in [0.05, 1], got {self.target_macs}")
        for name in ("stride", "workers", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError("--epochs must be at least 1")
        if self.init is not None and self.no_init:
            raise ValueError("--init and --no-init exclude each other")
