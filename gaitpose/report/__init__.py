"""Human-facing outputs of ``gaitpose analyze``: files, angle charts, key frames, HTML report, overlay video.

numpy/cv2/PyAV/Pillow only (no torch): this runs on the serving path. The names below are loaded
on first use (PEP 562), so importing one module of the package (``gaitpose.report.writers``) does
not load the others, and the modules can import each other without an import cycle.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "write_report": "gaitpose.report.html",
    "draw_pose": "gaitpose.report.overlay",
    "write_overlay": "gaitpose.report.overlay",
    "plot_angle_cycles": "gaitpose.report.plots",
    "plot_angles": "gaitpose.report.plots",
}

__all__ = ["draw_pose", "plot_angle_cycles", "plot_angles", "write_overlay", "write_report"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gaitpose.report' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
