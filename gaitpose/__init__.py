"""gaitpose: compact gait keypoint detection for clinics.

The package is layered so the serving path (``gaitpose.infer``, ``gaitpose.gait``,
``gaitpose.analyze``) imports only numpy, OpenCV, PyAV, scipy and ONNX Runtime; torch is
imported lazily by the training, pruning and export sub-packages.
"""

__version__ = "0.1.0"
