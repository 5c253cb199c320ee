"""The model-file steps of ``convert_blazepose.py``: densify sparse tflite weights, tf2onnx, keep
only the used outputs, onnxslim, fp16 weight storage.

Why a module of its own: these edit model graphs and know nothing of gaitpose; the script around
them finds the models, writes the metadata and checks parity. Imported by the script as a sibling
(run it as ``python scripts/convert_blazepose.py``), in the conversion environment it documents.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

__all__ = ["densify_tflite", "prune_and_rename", "slim", "store_fp16", "tf2onnx_convert"]


def tf2onnx_convert(tflite: Path, out: Path, opset: int) -> None:
    cmd = [sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite), "--output", str(out),
           "--opset", str(opset)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        tail = "\n".join(res.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"tf2onnx failed on {tflite.name}:\n{tail}")


def densify_tflite(src: Path, dst: Path) -> int:
    """Write a copy of ``src`` whose sparse constant tensors are stored dense; returns how many.

    TensorFlow Lite's interpreter runs the model's DENSIFY ops; with all tensors preserved their
    outputs hold the dense (fp16) weights. Each DENSIFY op is removed and its output tensor gets
    those values as a constant buffer, which is the ordinary fp16-weights + DEQUANTIZE pattern
    that tf2onnx converts; the sparse input tensor loses its buffer so tf2onnx never reads it.
    """
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    interp = tf.lite.Interpreter(model_path=str(src), experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
    interp.invoke()
    model = fbu.read_model(str(src))
    g = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    n = 0
    keep = []
    for op in g.operators:
        if codes[op.opcodeIndex] != schema.BuiltinOperator.DENSIFY:
            keep.append(op)
            continue
        out_idx, in_idx = int(op.outputs[0]), int(op.inputs[0])
        dense = interp.get_tensor(out_idx)
        buf = schema.BufferT()
        buf.data = np.frombuffer(dense.tobytes(), dtype=np.uint8)
        model.buffers.append(buf)
        g.tensors[out_idx].buffer = len(model.buffers) - 1
        g.tensors[in_idx].buffer = 0
        g.tensors[in_idx].sparsity = None
        n += 1
    g.operators = keep
    fbu.write_model(model, str(dst))
    return n


def prune_and_rename(path: Path, out: Path, outputs: dict[str, str]) -> None:
    """Keep only ``outputs`` (renamed to their values; the input becomes ``image``); the rest goes."""
    import onnx
    from onnx import utils as onnx_utils

    model = onnx.load(str(path))
    in_name = model.graph.input[0].name
    extracted = onnx_utils.Extractor(model).extract_model([in_name], list(outputs))
    rename = dict(outputs)
    rename[in_name] = "image"
    for node in extracted.graph.node:
        node.input[:] = [rename.get(x, x) for x in node.input]
        node.output[:] = [rename.get(x, x) for x in node.output]
    for vi in [*extracted.graph.input, *extracted.graph.output]:
        vi.name = rename.get(vi.name, vi.name)
    onnx.checker.check_model(extracted)
    onnx.save(extracted, str(out))


def slim(path: Path) -> str:
    """Run onnxslim in place when available; returns a short note for meta.json."""
    try:
        import onnxslim
    except ImportError:
        return "onnxslim not installed: not slimmed"
    import onnx

    before = len(onnx.load(str(path)).graph.node)
    model = onnxslim.slim(str(path))
    onnx.save(model, str(path))
    after = len(model.graph.node)
    return f"onnxslim {getattr(onnxslim, '__version__', '?')}: {before} -> {after} nodes"


def store_fp16(path: Path) -> int:
    """Store float32 weights that are exactly representable in fp16 as fp16 + Cast; returns how many.

    MediaPipe ships these models with fp16 weights, so the round trip is lossless (checked per
    tensor) and halves the committed file. ORT folds the Casts when it loads the session, so the
    network still computes in fp32 at the same speed.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    casts, n = [], 0
    for init in g.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype != np.float32 or a.size <= 16:
            continue
        h = a.astype(np.float16)
        if not np.array_equal(h.astype(np.float32), a):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(h, name=name + "_fp16"))
        casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=onnx.TensorProto.FLOAT,
                                      name=name + "_cast"))
        n += 1
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return n
