"""gaitpose: compact gait keypoint detection for clinics.

The package is layered so the serving path (``gaitpose.infer``, ``gaitpose.gait``,
``gaitpose.report``, ``gaitpose.analyze``) imports only numpy, OpenCV, PyAV, Pillow and ONNX
Runtime (no SciPy, no matplotlib: about a second of CPU per analysis); torch is imported lazily by
the training, pruning and export sub-packages. Data flow: see ``gaitpose.analyze``.
"""

__version__ = "0.1.0"
