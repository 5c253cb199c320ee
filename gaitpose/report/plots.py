"""Sagittal joint-angle plots: over time (with events) and normalised to the gait cycle (mean ± sd)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

JOINTS = ("hip", "knee", "ankle")
SIDE_COLOURS = {"left": "#4287f5", "right": "#f58230"}


def _figure(**kwargs: Any) -> Any:
    """A figure with matplotlib's Figure/Axes API, drawn by ``gaitpose.report.chart`` (Pillow).

    Why not matplotlib itself: importing and laying it out cost about a second of CPU per
    analysis, a quarter of the whole job on a short clip; the chart module draws these plots in
    about a tenth of that. No global state (safe in service worker threads).
    """
    from gaitpose.report.chart import Figure

    return Figure(**kwargs)


def warm_up() -> None:
    """Import the plotting stack ahead of time (``analyze`` does it on a thread while frames decode)."""
    import PIL.Image
    import PIL.ImageDraw
    import PIL.ImageFont  # noqa: F401


def _save(fig: Any, path: Path) -> None:
    from gaitpose.fsutil import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def plot_angles(
    angles: Mapping[str, np.ndarray], fps: float, events: Sequence[Any], out_path: str | os.PathLike[str]
) -> Path:
    """Hip/knee/ankle angles (deg) against time, left vs right, heel strikes as vertical lines."""
    out_path = Path(out_path)
    fig = _figure(figsize=(9, 7))
    axes = fig.subplots(len(JOINTS), 1, sharex=True)
    for ax, joint in zip(axes, JOINTS, strict=True):
        for side, colour in SIDE_COLOURS.items():
            series = np.asarray(angles.get(f"{joint}_{side}", []), dtype=np.float64)
            if series.size:
                ax.plot(np.arange(series.size) / (fps or 1.0), series, color=colour, lw=1.4, label=side)
        for ev in events:
            if ev.event == "heel_strike":
                ax.axvline(ev.time_s, color=SIDE_COLOURS.get(ev.foot, "grey"), lw=0.6, ls="--", alpha=0.7)
        ax.set_ylabel(f"{joint} (deg)")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title("Sagittal joint angles (flexion +); dashed lines: heel strikes")
    axes[-1].set_xlabel("time (s)")
    # Fixed margins: tight_layout measures every text box and cost a third of the plot time.
    fig.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.09, hspace=0.25)
    _save(fig, out_path)
    return out_path


def plot_angle_cycles(
    cycles: Mapping[str, Mapping[str, Any]],
    out_path: str | os.PathLike[str],
    *,
    toe_off_pct: Mapping[str, float] | None = None,
    reference: bool = True,
) -> Path:
    """Angles normalised to 0-100 % of the gait cycle (heel strike to heel strike): mean ± 1 sd per side.

    With ``reference`` the healthy reference curve (mean ± 1 SD, ``gaitpose.report.normative``) is
    drawn behind in grey; ``toe_off_pct`` ({"left": 61.0, ...}, the mean stance %) marks toe-off
    per side with a dotted line, so swing is the part of the curve to its right.
    """
    from gaitpose.report.normative import SCHWARTZ, reference_curve

    out_path = Path(out_path)
    fig = _figure(figsize=(12, 3.8))
    axes = fig.subplots(1, len(JOINTS))
    pct = np.linspace(0, 100, 101)
    titles = {"hip": "Hip flexion (+) / extension", "knee": "Knee flexion (+)", "ankle": "Ankle dorsiflexion (+)"}
    for ax, joint in zip(axes, JOINTS, strict=True):
        any_data = False
        if reference:
            rp, rm, rs = reference_curve(joint)
            ax.fill_between(rp, rm - rs, rm + rs, color="#9e9e9e", alpha=0.25, lw=0, label="reference ±1 SD")
            ax.plot(rp, rm, color="#757575", lw=1.0, ls="--")
        for side, colour in SIDE_COLOURS.items():
            c = cycles.get(f"{joint}_{side}")
            if not c or not int(c.get("n", 0)):
                continue
            mean = np.asarray(c["mean"], dtype=np.float64)
            std = np.asarray(c["std"], dtype=np.float64)
            x = np.linspace(0, 100, mean.size) if mean.size != 101 else pct
            ax.plot(x, mean, color=colour, lw=1.8, label=f"{side} (n={int(c['n'])})")
            ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2)
            to = (toe_off_pct or {}).get(side)
            if to is not None and np.isfinite(to):
                ax.axvline(float(to), color=colour, lw=1.0, ls=":")
            any_data = True
        if not any_data:
            ax.text(0.5, 0.5, "no complete cycles", ha="center", va="center", transform=ax.transAxes)
        if toe_off_pct:
            ax.text(0.99, 0.02, "dotted: toe-off", ha="right", va="bottom", fontsize=7, color="#555",
                    transform=ax.transAxes)
        ax.legend(fontsize=7, loc="upper left")
        ax.set_title(titles.get(joint, joint), fontsize=10)
        ax.set_xlabel("% gait cycle (heel strike = 0)")
        ax.set_ylabel("degrees")
        ax.set_xlim(0, 100)
        ax.grid(alpha=0.3)
    if reference:
        fig.text(0.5, 0.005, f"grey: healthy reference mean ± 1 SD ({SCHWARTZ}, free speed)", ha="center",
                 fontsize=8, color="#555")
    fig.subplots_adjust(left=0.06, right=0.99, top=0.92, bottom=0.17, wspace=0.3)  # fixed: see plot_angles
    _save(fig, out_path)
    return out_path
