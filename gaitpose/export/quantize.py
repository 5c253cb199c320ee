"""INT8 static quantisation of an exported pose model with ONNX Runtime (QDQ, per-channel weights).

Why this recipe:
- static (calibrated) quantisation, because dynamic quantisation only covers MatMul/GEMM and
  leaves every convolution of this net in float;
- QDQ format, so ORT can fuse DequantizeLinear -> Conv -> QuantizeLinear into integer kernels and
  the file still reads as a normal graph;
- per-channel weights, because depthwise convolutions have very different ranges per channel;
- calibration on real training crops produced by ``OnnxPoseEstimator.preprocess`` (the serving
  preprocessing), never random tensors, which would give the wrong activation ranges;
- the heatmap head stays float: DARK decoding reads the log of the heatmap around its peak, and
  8-bit steps there move keypoints by a sizeable fraction of a heatmap cell.

The accuracy/latency report decides whether INT8 is worth shipping; the default model stays FP32
when it is slower or loses more than one PCK point.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError
from gaitpose.fsutil import atomic_path, write_json_atomic

log = logging.getLogger(__name__)

MAX_PCK_DROP = 1.0  # percentage points: above this INT8 is not recommended


def head_nodes(onnx_model: Any) -> list[str]:
    """Names of the Conv nodes that produce graph outputs (the heatmap head), to keep in float."""
    outputs = {o.name for o in onnx_model.graph.output}
    producers = {out: node for node in onnx_model.graph.node for out in node.output}
    names = []
    for out in outputs:
        node = producers.get(out)
        # Walk back through shape-neutral ops (e.g. Identity) to the convolution.
        while node is not None and node.op_type in ("Identity", "Reshape", "Transpose") and node.input:
            node = producers.get(node.input[0])
        if node is not None and node.op_type == "Conv":
            names.append(node.name)
    return names


def make_calibration_reader(crops: np.ndarray, input_name: str) -> Any:
    """A ``CalibrationDataReader`` feeding one real crop per call (batch 1, like serving)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _CropReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._iter = iter(range(len(crops)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            i = next(self._iter, None)
            return None if i is None else {input_name: np.ascontiguousarray(crops[i : i + 1], dtype=np.float32)}

        def rewind(self) -> None:
            self._iter = iter(range(len(crops)))

    return _CropReader()


def quantize_int8(
    fp32_path: str | os.PathLike[str],
    calib_source: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    num_calib: int = 128,
    per_channel: bool = True,
    activation: str = "u8",
    preprocess: bool = True,
    keep_head_float: bool = True,
    seed: int = 0,
) -> Path:
    """Quantise ``fp32_path`` to INT8 QDQ using crops from ``calib_source`` (label .json or video).

    ``activation`` ``u8`` (asymmetric uint8 activations, int8 weights: the fast path on AVX2 CPUs
    without VNNI) or ``s8``. The ``gaitpose`` metadata is copied with ``extra.quantized = "int8"``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from gaitpose.export.crops import real_crops
    from gaitpose.export.onnx_export import load_onnx, read_meta, set_meta
    from gaitpose.infer.pose import OnnxPoseEstimator

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    load_onnx(fp32_path)  # one-line error for a missing/corrupt file
    meta = read_meta(fp32_path)
    if meta.extra.get("quantized"):
        raise InputError(fp32_path, "model is already quantised; pass the FP32 export")
    if not Path(calib_source).exists():
        raise InputError(calib_source, "calibration source does not exist")
    est = OnnxPoseEstimator(fp32_path, threads=1)
    crops = real_crops(calib_source, est, limit=num_calib, seed=seed).crops
    log.info("calibrating on %d real crops from %s", len(crops), calib_source)
    act_type = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}[activation]
    with tempfile.TemporaryDirectory(prefix="gaitpose-quant-") as tmpdir:
        src = fp32_path
        if preprocess:
            pre = Path(tmpdir) / "pre.onnx"
            try:
                quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=False)
                src = pre
            except Exception as exc:  # pre-processing only helps; quantise the raw graph if it fails
                log.warning("quant_pre_process failed (%s); quantising the exported graph as is",
                            str(exc).splitlines()[0][:200])
        graph = onnx.load(str(src))
        exclude = head_nodes(graph) if keep_head_float else []
        log.info("keeping in float: %s", exclude or "nothing")
        reader = make_calibration_reader(crops, est.input_name)
        with atomic_path(out_path) as tmp:
            quantize_static(
                str(src), str(tmp), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                activation_type=act_type, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": activation == "s8"},
            )
            qmodel = onnx.load(str(tmp))
            meta.extra = {**meta.extra, "quantized": "int8", "quant": {
                "format": "QDQ", "per_channel": per_channel, "activation": activation,
                "num_calib": len(crops), "float_nodes": exclude}}
            set_meta(qmodel, meta)
            onnx.checker.check_model(qmodel)
            onnx.save(qmodel, str(tmp))
    return out_path


def evaluate_onnx(
    onnx_path: str | os.PathLike[str], label_path: str | os.PathLike[str], *, limit: int | None = None,
    threads: int = 2, seed: int = 0,
) -> dict[str, Any]:
    """OKS AP, PCK (overall/body/feet) of an ONNX model through the serving estimator on a label file.

    Uses ``gaitpose.eval.evaluate.evaluate_model`` when it is available and the whole file is
    wanted, so the numbers match ``gaitpose evaluate``; otherwise the same metric code
    (``gaitpose.eval.metrics.compute_metrics``) on predictions from ``OnnxPoseEstimator.predict``.
    """
    from gaitpose.export.crops import pick_records, read_rgb
    from gaitpose.infer.pose import OnnxPoseEstimator
    from gaitpose.labels import load_records

    if limit is None:
        try:
            from gaitpose.eval.evaluate import evaluate_model
        except ImportError:
            evaluate_model = None
        if evaluate_model is not None:
            metrics = _scalars(evaluate_model(onnx_path, label_path, flip_test=False))
            if all(k in metrics for k in ("PCK@0.1", "PCK@0.1_feet")):
                return metrics
            log.warning("evaluate_model returned no PCK@0.1/PCK@0.1_feet; computing metrics directly")
    from gaitpose.eval.metrics import compute_metrics

    est = OnnxPoseEstimator(onnx_path, threads=threads)
    records = pick_records(load_records(label_path), limit, seed)
    if not records:
        raise InputError(label_path, "label file has no usable annotations")
    preds, scores = [], []
    for rec in records:
        res = est.predict(read_rgb(rec.image_path), [rec.bbox])[0]
        preds.append(res.keypoints)
        scores.append(res.scores)
    return _scalars(compute_metrics(np.stack(preds), np.stack(scores), records))


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(float(v), 5) if isinstance(v, float) else v) for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


ACCURACY_KEYS = ("AP", "PCK@0.1", "PCK@0.1_feet", "PCK@0.1_body")


def crop_agreement(fp32_path: str | os.PathLike[str], int8_path: str | os.PathLike[str],
                   crops: np.ndarray) -> dict[str, float]:
    """How closely INT8 follows FP32 on the same crops: heatmap correlation and keypoint distance."""
    from gaitpose.codec import decode_heatmaps
    from gaitpose.infer.pose import OnnxPoseEstimator

    a = OnnxPoseEstimator(fp32_path, threads=1)
    b = OnnxPoseEstimator(int8_path, threads=1)
    ha, hb = a.run_heatmaps(crops), b.run_heatmaps(crops)
    ka, _ = decode_heatmaps(ha, a.meta.stride)
    kb, _ = decode_heatmaps(hb, b.meta.stride)
    dist = np.linalg.norm(ka - kb, axis=-1)
    corr = [float(np.corrcoef(x.ravel(), y.ravel())[0, 1]) for x, y in zip(ha, hb, strict=True)]
    return {
        "heatmap_corr_mean": round(float(np.mean(corr)), 5),
        "heatmap_corr_min": round(float(np.min(corr)), 5),
        "heatmap_max_abs_diff": round(float(np.abs(ha - hb).max()), 5),
        "kp_dist_mean_px": round(float(dist.mean()), 4),
        "kp_dist_median_px": round(float(np.median(dist)), 4),
        "num_crops": len(crops),
    }


def int8_report(
    fp32_path: str | os.PathLike[str],
    int8_path: str | os.PathLike[str],
    eval_source: str | os.PathLike[str],
    *,
    num_eval: int | None = 200,
    threads: tuple[int, ...] = (1, 2),
    runs: int = 100,
    out_json: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Accuracy drop and latency of INT8 vs FP32; writes JSON (atomically) when ``out_json`` is given."""
    from gaitpose.export.crops import real_crops
    from gaitpose.export.latency import compare_latency
    from gaitpose.infer.pose import OnnxPoseEstimator

    report: dict[str, Any] = {"fp32": str(fp32_path), "int8": str(int8_path), "eval_source": str(eval_source)}
    crops = real_crops(eval_source, OnnxPoseEstimator(fp32_path, threads=1), limit=32).crops
    report["agreement"] = crop_agreement(fp32_path, int8_path, crops)
    lat = compare_latency({"fp32": fp32_path, "int8": int8_path}, threads, runs=runs)
    lat32, lat8 = lat["fp32"], lat["int8"]
    report["latency_ms"] = {"fp32": lat32, "int8": lat8}
    speedups = {k: round(lat32[k]["median_ms"] / lat8[k]["median_ms"], 3) for k in lat32}
    report["speedup_median"] = speedups
    reasons = []
    if min(speedups.values()) <= 1.0:
        reasons.append(f"INT8 is not faster on this CPU (median speed-up {speedups})")
    if Path(eval_source).suffix.lower() == ".json":
        acc32 = evaluate_onnx(fp32_path, eval_source, limit=num_eval)
        acc8 = evaluate_onnx(int8_path, eval_source, limit=num_eval)
        report["accuracy"] = {"fp32": acc32, "int8": acc8}
        # PCK values are fractions; the drop is reported in percentage points.
        drop = {k: round(100.0 * (acc32[k] - acc8[k]), 3) for k in ("PCK@0.1", "PCK@0.1_feet") if k in acc32}
        report["pck_drop_points"] = drop
        if max(drop.values()) > MAX_PCK_DROP:
            reasons.append(f"INT8 loses more than {MAX_PCK_DROP:g} PCK point(s) ({drop})")
    else:
        reasons.append("no label file to measure accuracy on; only FP32 agreement was checked")
    report["recommend_int8"] = not reasons
    report["verdict"] = ("INT8 recommended" if not reasons
                         else "keep FP32 as the default model: " + "; ".join(reasons))
    if out_json is not None:
        write_json_atomic(out_json, report, indent=2)
    return report
