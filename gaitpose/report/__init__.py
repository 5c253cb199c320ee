"""Human-facing outputs of ``gaitpose analyze``: overlay video, angle plots and a one-page HTML report.

numpy/cv2/PyAV/matplotlib only (no torch): this runs on the serving path.
"""

from gaitpose.report.html import write_report
from gaitpose.report.overlay import draw_pose, write_overlay
from gaitpose.report.plots import plot_angle_cycles, plot_angles

__all__ = ["draw_pose", "plot_angle_cycles", "plot_angles", "write_overlay", "write_report"]
