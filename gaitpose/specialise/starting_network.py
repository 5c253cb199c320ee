"""The starting network for training: a ``.pt`` checkpoint, or an exported (BatchNorm-folded) FP32 ONNX,
pruned or not, rebuilt into a trainable torch network that computes what the ONNX computes."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError


def model_from_onnx(path: str | os.PathLike[str], calib: np.ndarray | None = None) -> Any:
    """Rebuild a trainable student from an FP32 ONNX export, pruned or not (for ``--init``).

    The export folds every BatchNorm into its convolution. The torch network is rebuilt from the
    architecture in the embedded metadata, the folded weights are copied into its convolutions in
    execution order (shapes checked), and each BatchNorm is set so that it reproduces the folded
    bias exactly in eval mode: running mean ``m`` and variance ``s^2`` of the convolution's output on
    real crops (``calib``), scale ``sqrt(s^2 + eps)`` and shift ``bias + m``. In training mode the batch statistics
    are then close to those, so fine-tuning starts from the exported function rather than from a
    network whose BatchNorms renormalise everything. A pruned export works too: its layers take the
    widths of its exported weights (the checkpoints it leads to are saved as pruned ones).
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from torch import nn

    from gaitpose.export.onnx_export import read_meta
    from gaitpose.nn.student import build_model

    path = Path(path)
    meta = read_meta(path)
    cfg = (meta.extra or {}).get("model_cfg")
    if not cfg:
        raise InputError(path, "ONNX metadata has no model_cfg; pass a .pt checkpoint to --init")
    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    onnx_convs = [n for n in graph.node if n.op_type == "Conv"]
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node):
        raise InputError(path, "is a quantised export; --init needs an FP32 model or a .pt checkpoint")
    model = build_model(cfg).eval()
    names = {id(m): n for n, m in model.named_modules()}
    order = [_module_of(model, node.name, path) for node in onnx_convs]
    if len(set(map(id, order))) != len(order) or len(order) != sum(isinstance(m, nn.Conv2d) for m in model.modules()):
        raise InputError(path, "its convolutions do not map one to one onto the architecture in its metadata")
    bn_name: dict[str, str] = {}
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            for a, b in itertools.pairwise(list(seq)):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    bn_name[names[id(a)]] = names[id(b)]
    # A pruned export has narrower layers than its metadata's architecture: give each convolution
    # (and its BatchNorm) the shape of its exported weights, as the pruner left them.
    for i, (conv, node) in enumerate(zip(order, onnx_convs, strict=True)):
        wt = inits.get(node.input[1])
        if wt is None:
            raise InputError(path, f"convolution {node.name} has no weight initializer")
        groups = next((int(a.i) for a in node.attribute if a.name == "group"), 1)
        if tuple(wt.shape) == tuple(conv.weight.shape) and groups == conv.groups:
            continue
        name = names[id(conv)]
        new = nn.Conv2d(int(wt.shape[1]) * groups, int(wt.shape[0]), conv.kernel_size, conv.stride, conv.padding,
                        groups=groups, bias=conv.bias is not None)
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, new)
        order[i] = new
        if name in bn_name:
            bparent, _, battr = bn_name[name].rpartition(".")
            setattr(model.get_submodule(bparent) if bparent else model, battr, nn.BatchNorm2d(int(wt.shape[0])))
    bn_after: dict[nn.Conv2d, nn.BatchNorm2d] = {}
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            for a, b in itertools.pairwise(list(seq)):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    bn_after[a] = b
    biases: dict[nn.Conv2d, np.ndarray] = {}
    with torch.no_grad():
        for conv, node in zip(order, onnx_convs, strict=True):
            wt = inits.get(node.input[1])
            if wt is None or tuple(wt.shape) != tuple(conv.weight.shape):
                raise InputError(path, f"convolution {node.name} does not fit the architecture in the metadata "
                                       f"({None if wt is None else wt.shape} vs {tuple(conv.weight.shape)})")
            b = inits[node.input[2]] if len(node.input) > 2 and node.input[2] in inits else np.zeros(wt.shape[0])
            conv.weight.copy_(torch.from_numpy(np.array(wt, np.float32)))
            if conv in bn_after:
                bn = bn_after[conv]
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(b.astype(np.float32)))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                biases[conv] = b.astype(np.float32)
            elif conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(b.astype(np.float32)))
            else:
                raise InputError(path, f"convolution {node.name} has a bias the architecture has no place for")
        if calib is not None and len(calib):
            stats: dict[nn.Conv2d, tuple[np.ndarray, np.ndarray]] = {}

            def record(mod: nn.Conv2d, _i: Any, out: torch.Tensor) -> None:
                if mod in biases:
                    y = out.detach().double()
                    stats[mod] = (y.mean(dim=(0, 2, 3)).numpy(), y.std(dim=(0, 2, 3)).numpy())

            hooks = [c.register_forward_hook(record) for c in biases]
            model.eval()  # layers swapped in for a pruned export start in training mode
            model(torch.from_numpy(np.ascontiguousarray(calib, dtype=np.float32)))
            for hk in hooks:
                hk.remove()
            for conv, (mean, std) in stats.items():
                bn = bn_after[conv]
                var = np.maximum(std**2, 1e-6)
                bn.running_mean.copy_(torch.from_numpy(mean.astype(np.float32)))
                bn.running_var.copy_(torch.from_numpy(var.astype(np.float32)))
                bn.weight.copy_(torch.from_numpy(np.sqrt(var + bn.eps).astype(np.float32)))
                bn.bias.copy_(torch.from_numpy((biases[conv] + mean).astype(np.float32)))
    return model.eval()


def _module_of(model: Any, node_name: str, path: Path) -> Any:
    """The torch module an exported node came from, from its scope name.

    ``/stages.1/stages.1.0/block/block.0/block.0.0/Conv``: each scope is either the previous one plus
    ``.<child>`` or a child attribute of the module reached so far.
    """
    from torch import nn

    cur, prev = model, None
    for part in node_name.strip("/").split("/")[:-1]:
        rel = part[len(prev) + 1:] if prev is not None and part.startswith(prev + ".") else part
        try:
            cur = cur.get_submodule(rel)
        except AttributeError:
            raise InputError(path, f"node {node_name} has no module {rel!r} in the architecture") from None
        prev = part
    if not isinstance(cur, nn.Conv2d):
        raise InputError(path, f"node {node_name} does not come from a convolution of the architecture")
    return cur


def load_init(path: Path, train_json: Path) -> tuple[Any, tuple[int, int]]:
    """(starting network, its input size) from a .pt checkpoint or an FP32 ONNX export."""
    if path.suffix.lower() == ".onnx":
        from gaitpose.export.crops import label_crops
        from gaitpose.infer.pose import OnnxPoseEstimator

        est = OnnxPoseEstimator(path, threads=1)
        crops = label_crops(train_json, est, limit=64).crops
        model = model_from_onnx(path, crops)
        return model, tuple(int(v) for v in est.meta.input_size)  # type: ignore[return-value]
    from gaitpose.export.ckpt import load_student

    model, cfg, _ = load_student(path)
    return model, tuple(int(v) for v in cfg.input_size)  # type: ignore[return-value]
