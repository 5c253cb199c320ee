"""Predictors for evaluation: ONNX (the serving runtime itself) and torch checkpoints.

``TorchPredictor`` subclasses the serving ``OnnxPoseEstimator`` and replaces only the network
call, so a checkpoint is evaluated with literally the same numpy crop, normalisation, flip test
and DARK decoding as the exported model in production. Torch is imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.infer.pose import OnnxPoseEstimator
from gaitpose.modelmeta import ModelMeta
from gaitpose.normalise import rgb_normaliser


class TorchPredictor(OnnxPoseEstimator):
    """A torch student behind the OnnxPoseEstimator interface (preprocess/predict_crops/predict)."""

    def __init__(self, model: Any, meta: ModelMeta, device: str = "cpu", path: str | os.PathLike[str] = "") -> None:
        # Deliberately not calling OnnxPoseEstimator.__init__: there is no ONNX session; every
        # other method of the parent only needs meta, _normaliser and run_heatmaps.
        import torch

        self.path = Path(path)
        self.meta = meta
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self._normaliser = rgb_normaliser(meta)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: str = "cpu") -> TorchPredictor:
        from gaitpose.nn.checkpoint import load_model, model_meta

        model, cfg, ckpt = load_model(path, map_location=device)
        return cls(model, model_meta(cfg, ckpt.get("train_cfg")), device=device, path=path)

    def run_heatmaps(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            return self.model(x).float().cpu().numpy()


def count_onnx_params_macs(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(parameters, MACs) of an ONNX graph for batch 1: Conv/Gemm/MatMul MACs from inferred shapes.

    Parameters are the element counts of all initializers (so quantized models count the same
    as float ones); MACs count convolutions and matrix products only, like ``count_params_macs``.
    """
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(os.fspath(path))
    graph = model.graph
    init_names = {i.name for i in graph.initializer}
    for inp in graph.input:  # fix a symbolic batch to 1 so shapes resolve
        if inp.name in init_names:
            continue
        dims = inp.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
    inferred = shape_inference.infer_shapes(model)
    shapes: dict[str, list[int]] = {}
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in dims]
    inits = {i.name: i for i in graph.initializer}
    for i in graph.initializer:
        shapes[i.name] = list(i.dims)
    params = sum(int(np.prod(i.dims)) if len(i.dims) else 1 for i in graph.initializer)
    macs = 0
    for node in inferred.graph.node:
        if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            w_name = node.input[3] if node.op_type == "QLinearConv" else node.input[1]
            out = shapes.get(node.output[0])
            w = shapes.get(w_name)
            if w_name in inits:
                w = list(numpy_helper.to_array(inits[w_name]).shape)
            if out and w:
                macs += int(np.prod(out[1:])) * int(np.prod(w[1:]))
        elif node.op_type in ("Gemm", "MatMul", "MatMulInteger"):
            a = shapes.get(node.input[0])
            out = shapes.get(node.output[0])
            if a and out:
                macs += int(np.prod(out)) * int(a[-1])
    return int(params), int(macs)
