"""Human-facing outputs of ``gaitpose analyze``: overlay video, angle plots and a one-page HTML report.

numpy/cv2/PyAV/matplotlib only (no torch): this runs on the serving path.
"""

from gaitpose.report.html import write_report
from gaitpose.report.overlay import draw_pose, overlay_frame_size, scaled_frame, write_overlay
from gaitpose.report.plots import plot_angle_cycles, plot_angles

__all__ = [
    "draw_pose",
    "overlay_frame_size",
    "plot_angle_cycles",
    "plot_angles",
    "scaled_frame",
    "write_overlay",
    "write_report",
]
