"""Heatmap regression loss weighted by teacher confidence."""

from __future__ import annotations

import torch
from torch import nn


class KeypointMSELoss(nn.Module):
    """Mean squared error between predicted and target heatmaps, per joint weighted.

    The weight is the teacher's confidence (0 for dropped or off-crop joints), so uncertain
    pseudo-labels pull less and missing joints do not teach "nothing here". The 0.5 factor and
    per-joint mean follow SimpleBaseline/HRNet, which keeps learning rates comparable to theirs.
    """

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        err = (pred.float() - target.float()).pow(2).mean(dim=(2, 3))  # (N, K)
        return 0.5 * (err * weight.float()).mean()
