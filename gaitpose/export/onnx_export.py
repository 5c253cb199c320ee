"""torch -> ONNX export with embedded ``gaitpose`` metadata and a torch/ONNX Runtime parity check.

Why the pieces:
- the legacy TorchScript exporter (``dynamo=False``) gives a plain, stable graph for these
  conv nets that ONNX Runtime and its quantiser handle well;
- ``onnxslim`` folds constants and removes shape plumbing; if it fails the unsimplified graph is
  kept (with a warning) because a bigger graph is better than no model;
- metadata (``ModelMeta`` JSON under key ``gaitpose``) makes the .onnx self-describing, so the
  serving path needs no config file that could drift from the weights;
- the file appears under its final name only once it is complete and checked (atomic rename).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError
from gaitpose.fsutil import atomic_path, file_sha256
from gaitpose.modelmeta import META_KEY, ModelMeta

log = logging.getLogger(__name__)


class ParityError(InputError):
    """The exported model does not reproduce the torch model closely enough."""


def meta_from_checkpoint(
    model_cfg: Any, ckpt: dict[str, Any] | None = None, source_checkpoint: str | os.PathLike[str] | None = None
) -> ModelMeta:
    """ModelMeta for a pose student: geometry from its ModelConfig, provenance from the checkpoint."""
    import gaitpose
    from gaitpose.skeleton import FLIP_PAIRS, KEYPOINTS

    ckpt = ckpt or {}
    train_cfg = ckpt.get("train_cfg") or {}
    if not isinstance(train_cfg, dict):
        train_cfg = getattr(train_cfg, "__dict__", {})
    meta = ModelMeta(
        kind="sppe",
        input_size=(int(model_cfg.input_size[0]), int(model_cfg.input_size[1])),
        in_channels=int(model_cfg.in_channels),
        stride=int(model_cfg.stride),
        version=gaitpose.__version__,
    )
    if int(model_cfg.num_keypoints) != len(KEYPOINTS):
        meta.keypoint_names = tuple(f"kp{i}" for i in range(int(model_cfg.num_keypoints)))
        meta.flip_pairs = ()
    else:
        meta.keypoint_names, meta.flip_pairs = KEYPOINTS, FLIP_PAIRS
    for key in ("mean", "std"):
        if train_cfg.get(key):
            setattr(meta, key, tuple(float(v) for v in train_cfg[key]))
    for key in ("padding", "depth_mean_mm", "depth_std_mm"):
        if train_cfg.get(key) is not None:
            setattr(meta, key, float(train_cfg[key]))
    summary = ckpt.get("data_summary") or ckpt.get("data")
    meta.training = dict(summary) if isinstance(summary, dict) else {}
    for key in ("epoch", "best_metric"):
        if ckpt.get(key) is not None:
            meta.training.setdefault(key, ckpt[key])
    meta.extra = {"model_cfg": model_cfg.to_dict(), "pruned": bool(ckpt.get("pruned_state"))}
    if source_checkpoint is not None:
        meta.source_sha256 = file_sha256(source_checkpoint)
    return meta


def _output_names(model: Any, dummy: Any, kind: str) -> list[str]:
    import torch

    with torch.no_grad():
        out = model(dummy)
    if isinstance(out, torch.Tensor):
        return ["heatmaps" if kind == "sppe" else "output"]
    return [f"output{i}" for i in range(len(out))]


def set_meta(onnx_model: Any, meta: ModelMeta) -> None:
    """Write ``meta`` into the model's metadata_props under ``gaitpose`` (replacing any old entry)."""
    props = [p for p in onnx_model.metadata_props if p.key != META_KEY]
    del onnx_model.metadata_props[:]
    onnx_model.metadata_props.extend(props)
    entry = onnx_model.metadata_props.add()
    entry.key, entry.value = META_KEY, meta.to_json()


def read_meta(path: str | os.PathLike[str]) -> ModelMeta:
    """ModelMeta from an ONNX file via the onnx package (no inference session)."""

    model = load_onnx(path)
    for p in model.metadata_props:
        if p.key == META_KEY:
            return ModelMeta.from_json(p.value)
    raise InputError(path, f"ONNX model has no '{META_KEY}' metadata")


def load_onnx(path: str | os.PathLike[str]) -> Any:
    """onnx.ModelProto or a one-line InputError for a missing/corrupt file."""
    import onnx

    path = Path(path)
    if not path.exists():
        raise InputError(path, "ONNX file does not exist")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf DecodeError, onnx ValidationError, ...
        reason = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
        raise InputError(path, f"not a valid ONNX model ({reason})") from None
    return model


def export_onnx(
    model: Any,
    meta: ModelMeta,
    out_path: str | os.PathLike[str],
    *,
    opset: int = 17,
    dynamic_batch: bool = True,
    simplify: bool = True,
    source_checkpoint: str | os.PathLike[str] | None = None,
) -> Path:
    """Export any image network taking (N, meta.in_channels, H, W) crops; returns the written path.

    Generic on purpose (pose student, person localiser): the input shape comes from
    ``meta.input_size`` / ``meta.in_channels`` and outputs are named from what the model returns.
    """
    import onnx
    import torch

    out_path = Path(out_path)
    if source_checkpoint is not None and not meta.source_sha256:
        meta.source_sha256 = file_sha256(source_checkpoint)
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        dummy = torch.randn(1, int(meta.in_channels), *map(int, meta.input_size), dtype=torch.float32,
                            device=p.device)
        out_names = _output_names(model, dummy, meta.kind)
        axes = {n: {0: "batch"} for n in ["input", *out_names]} if dynamic_batch else None
        with atomic_path(out_path) as tmp:
            torch.onnx.export(
                model, (dummy,), str(tmp), input_names=["input"], output_names=out_names,
                opset_version=opset, dynamic_axes=axes, do_constant_folding=True, dynamo=False,
            )
            graph = onnx.load(str(tmp))
            onnx.checker.check_model(graph)
            if simplify:
                graph = _slim(graph)
            graph.producer_name = "gaitpose"
            graph.doc_string = f"gaitpose {meta.kind} model"
            set_meta(graph, meta)
            onnx.checker.check_model(graph)
            onnx.save(graph, str(tmp))
    finally:
        model.train(was_training)
    log.info("exported %s (opset %d, %.1f kB)", out_path, opset, out_path.stat().st_size / 1024)
    return out_path


def _slim(graph: Any) -> Any:
    import onnx

    try:
        import onnxslim

        slim = onnxslim.slim(graph)
        if slim is None:
            raise RuntimeError("onnxslim returned no model")
        onnx.checker.check_model(slim)
        return slim
    except Exception as exc:  # slimming is an optimisation: never lose the export over it
        log.warning("onnxslim failed (%s); keeping the unsimplified graph", str(exc).splitlines()[0][:200])
        return graph


@dataclass
class ParityResult:
    num_crops: int
    max_abs_diff: float
    max_kp_dist_px: float
    mean_kp_dist_px: float
    atol: float
    px_tol: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff < self.atol and self.max_kp_dist_px <= self.px_tol

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_parity(
    model: Any,
    onnx_path: str | os.PathLike[str],
    crops: np.ndarray,
    *,
    stride: int = 4,
    atol: float = 1e-4,
    px_tol: float = 0.5,
    batch_size: int = 8,
) -> ParityResult:
    """Compare torch and ONNX Runtime on real crops: heatmap max abs diff and decoded keypoints."""
    import torch

    from gaitpose.codec import decode_heatmaps
    from gaitpose.infer.session import make_session

    sess = make_session(onnx_path)
    name = sess.get_inputs()[0].name
    model.eval()
    max_diff, dists = 0.0, []
    for i in range(0, len(crops), batch_size):
        x = np.ascontiguousarray(crops[i : i + batch_size], dtype=np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).cpu().numpy()
        got = sess.run(None, {name: x})[0]
        if ref.shape != got.shape:
            raise ParityError(onnx_path, f"output shape {got.shape} differs from torch {ref.shape}")
        max_diff = max(max_diff, float(np.abs(ref - got).max()))
        kr, _ = decode_heatmaps(ref, stride)
        kg, _ = decode_heatmaps(got, stride)
        dists.append(np.linalg.norm(kr - kg, axis=-1).ravel())
    d = np.concatenate(dists) if dists else np.zeros(1)
    return ParityResult(len(crops), max_diff, float(d.max()), float(d.mean()), atol, px_tol)


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    opset: int = 17,
    simplify: bool = True,
    parity_source: str | os.PathLike[str] | None = None,
    parity_crops: int = 16,
) -> tuple[Path, ParityResult | None]:
    """``gaitpose export``: checkpoint -> .onnx, then parity on real crops; a failed check removes the file."""
    from gaitpose.export.ckpt import load_student
    from gaitpose.export.crops import real_crops
    from gaitpose.infer.pose import OnnxPoseEstimator

    model, cfg, ckpt = load_student(checkpoint)
    meta = meta_from_checkpoint(cfg, ckpt, source_checkpoint=checkpoint)
    out_path = Path(out_path)
    if parity_source is not None and not Path(parity_source).exists():
        raise InputError(parity_source, "parity source does not exist")
    # Export beside the target first so a model failing parity never appears under the final name.
    with atomic_path(out_path) as tmp_final:
        export_onnx(model, meta, tmp_final, opset=opset, simplify=simplify)
        result = None
        if parity_source is not None:
            est = OnnxPoseEstimator(tmp_final, threads=1)
            crops = real_crops(parity_source, est, limit=parity_crops).crops
            result = check_parity(model, tmp_final, crops, stride=meta.stride)
            log.info("parity on %d crops: max |diff| %.2e, max keypoint shift %.3f px", result.num_crops,
                     result.max_abs_diff, result.max_kp_dist_px)
            if not result.ok:
                raise ParityError(out_path, f"torch/ONNX parity violated: max |diff| {result.max_abs_diff:.2e} "
                                  f"(limit {result.atol:g}), max keypoint shift {result.max_kp_dist_px:.3f} px "
                                  f"(limit {result.px_tol:g})")
    return out_path, result
