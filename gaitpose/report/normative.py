"""Reference values for the clinical report: healthy walking, with the published source of each number.

Two kinds of limits, kept apart on purpose:

- ``Reference``: what healthy adults show at a self-selected speed (a published mean) and the band
  this report treats as "within the usual range". Values outside are *flagged*, not diagnosed.
- ``PLAUSIBLE``: wide limits beyond which a value is far more likely a measurement error (a
  missed or misplaced gait event, a left/right mix-up) than anyone's gait. These are this
  project's engineering limits, not published norms, and the report says so.

Spatio-temporal means: Perry & Burnfield (2010), the adult stride characteristics of the Rancho
Los Amigos gait laboratory (free walking). Relative lengths (in leg lengths, used when no depth
and no height are given) are derived from those metres with Winter's (2009) segment proportions
(hip-knee-ankle leg = (0.530 - 0.039) x stature) for a 1.70 m adult; they are derived, not
measured, and labelled so. The angle curves are the free-speed mean and SD of Schwartz et al.
(2008), a published normative data set of typically developing children and adolescents
(the adult sagittal pattern has the same shape; no adult curve set of that size is public in a
form we can ship).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PERRY = "Perry & Burnfield 2010"
WINTER = "Winter 2009"
SCHWARTZ = "Schwartz et al. 2008"
SOURCES: dict[str, str] = {
    PERRY: "Perry J, Burnfield JM. Gait Analysis: Normal and Pathological Function. 2nd ed. "
           "Thorofare, NJ: SLACK; 2010 (adult stride characteristics, free walking).",
    WINTER: "Winter DA. Biomechanics and Motor Control of Human Movement. 4th ed. Hoboken, NJ: Wiley; 2009 "
            "(segment lengths as fractions of stature).",
    SCHWARTZ: "Schwartz MH, Rozumalski A, Trost JP. The effect of walking speed on the gait of typically "
              "developing children. J Biomech. 2008;41(8):1639-1650 (published normative curves, free speed, "
              "mean and SD every 2 % of the cycle).",
}

LEG_LENGTH_PER_STATURE = 0.530 - 0.039
"""Hip (greater trochanter) height minus ankle (malleolus) height, as a fraction of stature (Winter 2009)."""
REFERENCE_STATURE_M = 1.70
"""Stature used only to turn the metre references into leg lengths (a typical adult; stated in the report)."""


@dataclass(frozen=True)
class Reference:
    """A healthy-adult reference: published ``mean``; ``low``-``high`` is the band used for flags."""

    mean: float
    low: float
    high: float
    unit: str
    source: str
    derived: bool = False  # computed from the source's numbers (e.g. unit conversion), not quoted

    def text(self, nd: int = 0) -> str:
        """"60 (58-64)" style, as printed in the report."""
        return f"{self.mean:.{nd}f} ({self.low:.{nd}f}–{self.high:.{nd}f})"


_LEG_M = LEG_LENGTH_PER_STATURE * REFERENCE_STATURE_M  # about 0.83 m

# Perry & Burnfield: free walking 82 m/min (1.37 m/s), 113 steps/min, stride 1.41 m; stance 60 %,
# swing 40 %, double limb support about 10 % at each end of stance (about 20 % of the cycle).
SPATIOTEMPORAL: dict[str, Reference] = {
    "cadence_steps_per_min": Reference(113.0, 100.0, 125.0, "steps/min", PERRY),
    "step_time_s": Reference(0.53, 0.48, 0.60, "s", PERRY, derived=True),  # 60 / cadence
    "stride_time_s": Reference(1.06, 0.96, 1.20, "s", PERRY, derived=True),  # 2 x step time
    "stance_pct": Reference(60.0, 57.0, 64.0, "% of cycle", PERRY),
    "swing_pct": Reference(40.0, 36.0, 43.0, "% of cycle", PERRY),
    "double_support_pct": Reference(20.0, 16.0, 26.0, "% of cycle", PERRY),
    "step_length_m": Reference(0.70, 0.58, 0.82, "m", PERRY, derived=True),  # stride / 2
    "stride_length_m": Reference(1.41, 1.16, 1.64, "m", PERRY),
    "walking_speed_m": Reference(1.37, 1.10, 1.60, "m/s", PERRY),
    "step_length_rel": Reference(0.70 / _LEG_M, 0.58 / _LEG_M, 0.82 / _LEG_M, "leg lengths", PERRY, derived=True),
    "stride_length_rel": Reference(1.41 / _LEG_M, 1.16 / _LEG_M, 1.64 / _LEG_M, "leg lengths", PERRY, derived=True),
    "walking_speed_rel": Reference(1.37 / _LEG_M, 1.10 / _LEG_M, 1.60 / _LEG_M, "leg lengths/s", PERRY, derived=True),
}

SYMMETRY_LIMIT_PCT = 10.0
"""Symmetry index above which a left/right difference is flagged (healthy gait is nearly symmetric;
a common screening threshold, this project's choice)."""

PLAUSIBLE: dict[str, tuple[float, float]] = {
    # Outside these, walking is not what the numbers describe: check the events in the video.
    "cadence_steps_per_min": (40.0, 180.0),
    "step_time_s": (0.3, 1.5),
    "stride_time_s": (0.6, 2.5),
    "stance_pct": (50.0, 80.0),
    "swing_pct": (20.0, 50.0),
    "double_support_pct": (2.0, 50.0),
    "step_length_rel": (0.2, 1.4),
    "stride_length_rel": (0.4, 2.6),
    "walking_speed_rel": (0.1, 3.5),
    "step_length_m": (0.15, 1.2),
    "stride_length_m": (0.3, 2.2),
    "walking_speed_m": (0.1, 2.8),
}
SYMMETRY_PLAUSIBLE_PCT = 50.0
"""A symmetry index above this (e.g. one step twice the other) is flagged as likely a measurement error."""
CONSISTENCY_TOLERANCE = 0.2
"""Relative tolerance for cross-checks such as left + right step length = stride length."""

# Sagittal angles over the gait cycle (degrees, flexion / dorsiflexion positive), 0, 2, ..., 100 %.
# Schwartz et al. 2008, free speed: mean and SD.
CURVE_PCT = np.arange(0, 101, 2, dtype=np.float64)
ANGLE_CURVES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "hip": (
        (35.8, 35.7, 35.5, 35.1, 34.2, 32.8, 31.1, 29.1, 26.9, 24.7, 22.5, 20.3, 18.1, 15.8, 13.6, 11.4, 9.3,
         7.3, 5.3, 3.4, 1.6, -0.1, -1.7, -3.2, -4.4, -5.3, -5.8, -5.7, -4.9, -3.4, -0.9, 2.3, 6.1, 10.1, 14.1,
         17.9, 21.4, 24.6, 27.4, 29.9, 32.0, 33.7, 35.1, 36.0, 36.6, 36.7, 36.5, 36.2, 35.8, 35.6, 35.5),
        (5.4, 5.5, 5.6, 5.8, 5.9, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 5.9, 5.9, 6.0, 6.0, 6.1, 6.3, 6.4, 6.6,
         6.7, 6.8, 6.8, 6.8, 6.8, 6.8, 6.8, 6.8, 6.7, 6.8, 6.8, 6.7, 6.6, 6.5, 6.3, 6.2, 6.0, 5.9, 5.7, 5.6,
         5.5, 5.4, 5.4, 5.4, 5.4, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5),
    ),
    "knee": (
        (5.6, 7.9, 10.9, 14.1, 16.9, 18.6, 19.3, 19.2, 18.6, 17.6, 16.5, 15.2, 13.9, 12.6, 11.3, 10.1, 9.0,
         8.0, 7.2, 6.6, 6.2, 6.3, 6.8, 7.9, 9.5, 11.6, 14.5, 18.1, 22.6, 27.9, 33.9, 40.2, 46.3, 51.7, 55.7,
         58.2, 59.1, 58.7, 56.9, 53.9, 49.8, 44.7, 38.8, 32.4, 25.5, 18.7, 12.5, 7.6, 4.6, 4.0, 5.4),
        (5.7, 5.5, 5.6, 5.8, 6.1, 6.3, 6.3, 6.3, 6.2, 6.1, 5.9, 5.8, 5.7, 5.6, 5.5, 5.5, 5.5, 5.6, 5.7, 5.7,
         5.7, 5.7, 5.7, 5.7, 5.6, 5.7, 5.8, 5.9, 6.2, 6.4, 6.6, 6.6, 6.4, 6.0, 5.7, 5.6, 5.9, 6.3, 6.8, 7.4,
         7.8, 8.2, 8.5, 8.7, 8.7, 8.5, 8.1, 7.4, 6.6, 6.0, 5.6),
    ),
    "ankle": (
        (-2.1, -3.9, -5.6, -5.6, -4.1, -2.1, -0.2, 1.5, 2.9, 4.1, 5.2, 6.1, 6.8, 7.4, 8.0, 8.6, 9.1, 9.7,
         10.2, 10.7, 11.1, 11.5, 11.8, 11.8, 11.5, 10.4, 8.4, 4.9, -0.2, -6.9, -13.8, -18.5, -19.8, -18.0,
         -14.7, -11.2, -7.9, -4.9, -2.4, -0.3, 1.1, 2.1, 2.5, 2.4, 1.8, 1.0, 0.1, -0.6, -1.1, -1.4, -2.3),
        (5.6, 5.2, 4.8, 4.3, 4.0, 4.0, 4.0, 4.0, 4.0, 3.9, 3.8, 3.7, 3.7, 3.7, 3.8, 3.8, 3.9, 4.0, 4.1, 4.3,
         4.4, 4.5, 4.7, 4.9, 5.2, 5.6, 6.2, 7.2, 8.3, 9.3, 9.5, 9.1, 8.8, 8.7, 8.2, 7.5, 6.8, 6.2, 5.7, 5.3,
         4.9, 4.5, 4.2, 4.1, 4.1, 4.4, 4.7, 5.1, 5.3, 5.5, 5.4),
    ),
}
ANGLE_NOTES: dict[str, str] = {
    "hip": "reference hip angle is thigh to pelvis (includes ~10° pelvic tilt); this video measure is thigh "
           "to trunk line, so expect it a few degrees lower",
    "knee": "",
    "ankle": "",
}
HIP_PELVIS_NOTE = "thigh to pelvis (ASIS/PSIS markers), as the reference curve"
"""Replaces the hip note where the hip angle was measured from the pelvis (motion capture)."""
ANGLE_PLAUSIBLE: dict[str, tuple[float, float]] = {
    # Outside these a video angle is a keypoint error (e.g. toe point on the other foot), not gait.
    "hip": (-45.0, 75.0),
    "knee": (-20.0, 95.0),
    "ankle": (-45.0, 40.0),
}


def reference_curve(joint: str, n_points: int = 101) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(percent of cycle, mean, SD) of the reference curve for ``joint`` ("hip", "knee", "ankle")."""
    mean, sd = (np.asarray(v, dtype=np.float64) for v in ANGLE_CURVES[joint])
    pct = np.linspace(0.0, 100.0, n_points)
    return pct, np.interp(pct, CURVE_PCT, mean), np.interp(pct, CURVE_PCT, sd)


def reference_peaks(joint: str) -> dict[str, float]:
    """min / max / range of the reference mean curve (degrees), for the angle table."""
    mean = np.asarray(ANGLE_CURVES[joint][0], dtype=np.float64)
    lo, hi = float(mean.min()), float(mean.max())
    return {"min": lo, "max": hi, "range": hi - lo}


def spatiotemporal_reference(key: str, units: str) -> Reference | None:
    """Reference for a metrics key; lengths and speed pick metres or leg lengths by ``units``."""
    if key in ("step_length", "stride_length", "walking_speed"):
        key = f"{key}_{'m' if units == 'm' else 'rel'}"
    return SPATIOTEMPORAL.get(key)


def plausible_range(key: str, units: str) -> tuple[float, float] | None:
    """Engineering limits for a metrics key (see module docstring), or None."""
    if key in ("step_length", "stride_length", "walking_speed"):
        key = f"{key}_{'m' if units == 'm' else 'rel'}"
    return PLAUSIBLE.get(key)


__all__ = [
    "ANGLE_CURVES",
    "ANGLE_NOTES",
    "ANGLE_PLAUSIBLE",
    "HIP_PELVIS_NOTE",
    "PLAUSIBLE",
    "SOURCES",
    "SPATIOTEMPORAL",
    "SYMMETRY_LIMIT_PCT",
    "Reference",
    "plausible_range",
    "reference_curve",
    "reference_peaks",
    "spatiotemporal_reference",
]
