"""Gait analytics on keypoint trajectories: cleaning, swap fixing, events, angles, 3D lift, metrics.

numpy only (this is on the serving path: never torch, and no SciPy: see ``gaitpose.gait.dsp``). Entry point:
:func:`gaitpose.gait.analysis.analyze_gait`. What the algorithms assume: one person, a side
(sagittal) view from a still camera, image x to the right and y down, keypoints in gaitpose's
21-point order (COCO-17 + heels + big toes), a constant frame rate. Walking is found overground
(the pelvis travels) or on a treadmill (the feet cycle while the pelvis stays).

Keypoints from files (keypoints.json/.csv, TRC, C3D with marker mappings): ``gaitpose.gait.readers``
and ``gaitpose.gait.markers``; agreement with a lab's reference events and model angles:
``gaitpose.gait.validation``; foot offsets from a standing trial: ``gaitpose.gait.static``; the
``gaitpose gait`` job (an orchestrator beside ``gaitpose.analyze``): ``gaitpose.analyze_files``.
"""

from __future__ import annotations

from gaitpose.gait.analysis import GaitResult, analyze_gait
from gaitpose.gait.events import GaitEvent

__all__ = ["GaitEvent", "GaitResult", "analyze_gait"]
