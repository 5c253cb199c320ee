"""The evaluation stage: the specialised model, its starting network and the general default on the
held-out recordings (agreement with the teacher, angle errors, per-crop latency side by side)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gaitpose.specialise.context import RunContext
from gaitpose.specialise.report import _f, _worse_than_start


def _json_safe(v: Any) -> Any:
    """NaN (nothing comparable) -> None, recursively, so meta.json stays strict JSON."""
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def evaluate_onnx_model(path: Path, ann: Path, threads: int) -> dict[str, Any]:
    """PCK/AP and the sagittal angle errors (``gaitpose.eval``) of one ONNX model on a label file."""
    from gaitpose.eval.evaluate import evaluate_model

    metrics = evaluate_model(path, ann, threads=threads)
    keep = ("AP", "PCK@0.05", "PCK@0.1", "PCK@0.1_body", "PCK@0.1_feet", "PCK@0.1_side_agnostic",
            "PCK@0.1_per_recording", "mean_px_error", "angle_mae_deg", "params", "gflops")
    out = {k: metrics[k] for k in keep if k in metrics}
    out.setdefault("angle_mae_deg", {})
    return _json_safe(out)


class EvaluateStage(RunContext):
    """Stage 9: ``evaluate``."""

    def _evaluate(self) -> dict[str, Any]:
        from gaitpose.export.latency import compare_latency

        test_json = self.work / "split" / "test.json"
        threads = self.opts.threads
        chosen = Path(self.results["int8"]["int8"] if self.results["int8"]["recommend_int8"]
                      else self.results["export"]["fp32"])
        models: dict[str, Path] = {"specialised": chosen}
        if chosen != Path(self.results["export"]["fp32"]):
            models["specialised FP32"] = Path(self.results["export"]["fp32"])
        else:
            models["specialised INT8"] = Path(self.results["int8"]["int8"])
        if self.results["export"].get("unpruned"):
            models["specialised, unpruned"] = Path(self.results["export"]["unpruned"])
        init = self.inputs.init
        if init is not None and init.suffix.lower() == ".onnx":
            models["starting network"] = init  # what the clinic's frames changed, on the same held-out frames
        general, general_label = self._general()
        if general is not None:
            models["general default"] = general
            from gaitpose.registry import default_model_dir

            shipped = default_model_dir() / "student" / "model.onnx"
            if general != shipped and shipped.is_file() and (init is None or init.resolve() != shipped.resolve()):
                models["shipped student"] = shipped
        metrics: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for name, p in models.items():
            try:
                metrics[name] = evaluate_onnx_model(p, test_json, threads)
            except Exception as exc:  # a comparison model that cannot run must not cost the clinic its model
                if name == "specialised":
                    raise
                failed[name] = f"{p}: {type(exc).__name__}: {exc}".replace("\n", " ")[:300]
                self.say(f"  warning: could not evaluate the {name} ({failed[name]})")
        lat_models = {k: v for k, v in models.items() if k in ("specialised", "general default") and k in metrics}
        lat = compare_latency(lat_models, threads=(1,), runs=self.opts.latency_runs)
        latency = {k: v["threads=1"]["median_ms"] for k, v in lat.items()}
        speedup = (latency["general default"] / latency["specialised"]) if "general default" in latency else None
        for name, m in metrics.items():
            self.say(f"  {name}: PCK@0.1 {m['PCK@0.1']:.3f}, feet {m['PCK@0.1_feet']:.3f}, "
                     f"angle MAE {_f(m['angle_mae_deg'].get('all'), 2)} deg")
        worse = _worse_than_start({"metrics": metrics})
        if worse:
            self.say(f"  warning: {worse}")
        if speedup is not None:
            self.say(f"  per crop (1 thread): specialised {latency['specialised']:.2f} ms, general default "
                     f"{latency['general default']:.2f} ms: {speedup:.2f}x")
        return {"models": {k: str(v) for k, v in models.items()}, "metrics": metrics, "latency_ms": latency,
                "speedup_vs_general": speedup, "general": str(general) if general else None,
                "general_label": general_label, "chosen": str(chosen), "failed": failed,
                "test_recordings": self.results["split"]["test_recordings"]}
