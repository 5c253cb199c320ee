"""Foot offsets from a standing (static) trial: the marker line's tilt when the sole is flat.

Why: the 2D ankle angle measures the foot by the line from the heel marker to the toe marker. Where a
marker set puts the heel marker higher or lower above the sole than the toe marker, that line is tilted
even with the foot flat on the floor, and every ankle angle carries the tilt as a constant: -8 to -10 deg
against OpenSim's model on its subject01, +4 deg on Moco's walk, enough to push normal terminal-stance
dorsiflexion past 20 deg. Gait labs remove it the way Plug-in Gait's "foot flat" option does: in a
standing trial the sole is flat, so the line's tilt there is the offset. In 2D that is one angle per
foot, measured in the sagittal plane of the standing trial (which contains the vertical, so the tilt
is kept), and subtracted from the ankle angle (``gaitpose gait --static``).
"""

from __future__ import annotations

import os

import numpy as np

from gaitpose.errors import InputError
from gaitpose.gait.markers import MarkerMapping
from gaitpose.gait.readers import read_trajectories
from gaitpose.gait.swap import leg_length_px
from gaitpose.skeleton import INDEX

__all__ = ["MAX_STANDING_SWAY", "foot_offsets_deg"]

MAX_STANDING_SWAY = 0.05
"""Largest spread (SD) of a heel or toe over the trial, in leg lengths, for it to count as standing."""


def foot_offsets_deg(path: str | os.PathLike[str], mapping: MarkerMapping | None = None) -> dict[str, float]:
    """{"left": deg, "right": deg}: tilt of the heel->toe line in a standing trial, toe up positive.

    One-line :class:`InputError` when the file is not a standing trial (a heel or toe moves by more than
    :data:`MAX_STANDING_SWAY` leg lengths) or lacks heels or toes.
    """
    tr = read_trajectories(path, mapping=mapping)
    k = tr.kpts
    leg = leg_length_px(k)
    out: dict[str, float] = {}
    for side in ("left", "right"):
        heel, toe = k[:, INDEX[f"{side}_heel"]], k[:, INDEX[f"{side}_toe"]]
        ok = np.isfinite(heel).all(-1) & np.isfinite(toe).all(-1)
        if ok.sum() < 3:
            raise InputError(path, f"static trial: the {side} heel and toe are not both seen in 3 frames or more")
        sway = max(float(np.nanstd(heel[ok], axis=0).max()), float(np.nanstd(toe[ok], axis=0).max()))
        if leg > 0 and sway > MAX_STANDING_SWAY * leg:
            raise InputError(path, f"not a standing trial: the {side} foot moves by {sway / leg:.2f} leg lengths "
                                   f"(SD; standing is < {MAX_STANDING_SWAY})")
        d = toe[ok] - heel[ok]
        # image y points down; the projection's x runs along the feet (standing: the pelvis does not travel)
        out[side] = float(np.degrees(np.arctan2(-np.median(d[:, 1]), abs(np.median(d[:, 0])))))
    return out
