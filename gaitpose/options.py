"""Checks of user-given analysis options, one rule each for the CLI, the library and the service.

Why here: ``--roi`` and the subject height were checked in two places each (the analyzer and the
labeller; the analyzer and the HTTP API) with slightly different rules. A bad value is a
``ValueError`` naming the option, raised before any decoding starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["HEIGHT_CM_RANGE", "check_height_cm", "parse_roi"]

HEIGHT_CM_RANGE = (50.0, 250.0)
"""Subject heights accepted (cm): wider than any adult or child walking unaided, narrow enough to
catch metres or inches typed into a centimetre field."""


def check_height_cm(height_cm: float | str | None) -> float | None:
    """The subject height as a float in :data:`HEIGHT_CM_RANGE`, or None; ``ValueError`` otherwise."""
    if height_cm is None:
        return None
    lo, hi = HEIGHT_CM_RANGE
    try:
        h = float(height_cm)
    except (TypeError, ValueError):
        raise ValueError(f"--height-cm must be a number of centimetres, got {height_cm!r}") from None
    if not math.isfinite(h) or not lo <= h <= hi:
        raise ValueError(f"--height-cm must be between {lo:g} and {hi:g}, got {height_cm}")
    return h


def parse_roi(text: str | Sequence[float] | None) -> np.ndarray | None:
    """``"X,Y,W,H"`` (pixels of the first frame) -> float64 array; None or "" -> None."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        vals = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except (TypeError, ValueError):
        raise ValueError(f"--roi must be X,Y,W,H numbers, got {text!r}") from None
    if len(vals) != 4 or not np.isfinite(vals).all() or vals[2] <= 0 or vals[3] <= 0:
        raise ValueError(f"--roi must be X,Y,W,H with positive W and H, got {text!r}")
    return np.asarray(vals, dtype=np.float64)
