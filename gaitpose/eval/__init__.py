"""Evaluation of pose models (.pt checkpoints or .onnx files) against COCO label files.

``metrics`` is numpy + pycocotools only; torch is imported only when a .pt model is evaluated.
"""
