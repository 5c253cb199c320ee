"""Budget planning: label stride, training and pruning epochs, the pruning target, from measured times."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from gaitpose.specialise.options import MAX_EPOCHS


def plan_label_stride(frames: int, budget_s: float, workers: int, sec_per_frame: float = 0.25) -> int:
    """Label every N-th frame so labelling takes at most about a third of the budget.

    ``sec_per_frame`` is the teacher on the crop and its mirror plus the subject search, measured at
    about 0.1-0.2 s per frame and worker on a loaded 2-core machine; the plan uses the pessimistic end.
    """
    if frames <= 0:
        return 1
    est = frames * sec_per_frame / max(1, min(workers, 2))
    return max(1, math.ceil(est / max(budget_s / 3.0, 1.0)))


def plan_training(left_s: float, epoch_s: float, prune: bool, reserve_s: float) -> tuple[int, int]:
    """(training epochs, pruning epochs) that fit ``left_s`` after ``reserve_s`` for export/INT8/evaluation.

    Pruning epochs cost about 1.4 training epochs (the distillation teacher runs too, and each step is
    measured); training gets 60 % of the time when the network must be pruned, all of it otherwise.
    """
    usable = max(0.0, left_s - reserve_s)
    share = 0.6 if prune else 1.0
    train = int(max(1, min(MAX_EPOCHS, usable * share // max(epoch_s, 1e-3))))
    prune_epochs = int(max(2, min(MAX_EPOCHS, usable * (1 - share) // max(1.4 * epoch_s, 1e-3)))) if prune else 0
    return train, prune_epochs


def plan_prune(total_epochs: int) -> dict[str, int]:
    """Split a pruning epoch budget into sparsity, steps x fine-tune, and the final distilled fine-tune."""
    total = max(2, int(total_epochs))
    sparsity = round(0.15 * total) if total >= 8 else 0
    steps = max(1, min(6, total // 8))
    finetune = 1 if total - sparsity >= 2 * steps + 1 else 0
    final = max(1, total - sparsity - steps * finetune)
    return {"sparsity_epochs": sparsity, "steps": steps, "finetune_epochs": finetune, "final_epochs": final}


def steady_epoch_seconds(run_dir: Path) -> float | None:
    """Mean time of a training run's last (up to) six epochs, from its ``log.json``.

    The mean, not the median: what is projected is the time the next epochs take together, and on a
    shared machine epoch times are heavy-tailed (4 to 40 s for the same epoch in one lab run). The first
    epoch also decodes every image once, so it is left out when there are more."""
    try:
        history = json.loads((Path(run_dir) / "log.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    secs = [float(h["seconds"]) for h in history if h.get("seconds")]
    if len(secs) > 1:
        secs = secs[1:]
    return float(np.mean(secs[-6:])) if secs else None


def pick_target_macs(latency_ms: float, budget_ms: float | None) -> float:
    """The MACs fraction to prune to so a crop fits ``budget_ms`` (1.0: it already does).

    Latency shrinks less than MACs (memory traffic, fixed per-call costs), hence the 0.8 margin;
    never below a quarter of the MACs, where the shipped recipe lost too much accuracy.
    """
    if budget_ms is None or latency_ms <= budget_ms:
        return 1.0
    return float(max(0.25, min(0.9, 0.8 * budget_ms / latency_ms)))
