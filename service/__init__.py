"""gaitpose edge service: HTTP API, job queue and web page around the ONNX analysis engine.

Importing this package is cheap and imports no torch: the app is built only by
:func:`service.app.create_app`, and worker processes import only :mod:`service.worker`.
"""
