"""The model stages after training: prune to the per-crop budget, ONNX export with parity, INT8 verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gaitpose.specialise.context import RunContext
from gaitpose.specialise.options import MAX_EPOCHS, MAX_PRUNE_LOSS, PROTECT
from gaitpose.specialise.planning import plan_prune, steady_epoch_seconds


class CompressStages(RunContext):
    """Stages 5-7: ``prune``, ``export``, ``int8``."""

    def _prune(self) -> dict[str, Any]:
        from gaitpose.prune.pipeline import run_prune
        from gaitpose.prune.slimming import PruneConfig

        opts = self.opts
        plan = self.results["train"]["plan"]
        ckpt = Path(self.results["train"]["checkpoint"])
        target = float(plan["target_macs"])
        prune_epochs = int(plan["prune_epochs"])
        if target >= 1.0:
            self.say("  not needed: the network fits the per-crop budget")
            return {"checkpoint": str(ckpt), "pruned": False}
        if opts.epochs is None and self.clock.left < 60:
            self.say(f"  skipped: {max(self.clock.left, 0):.0f} s of the budget left")
            return {"checkpoint": str(ckpt), "pruned": False, "skipped_for_time": True}
        if opts.epochs is None and opts.prune_epochs is None:
            # Re-planned from the epochs training really took and the time really left.
            epoch_s = steady_epoch_seconds(self.work / "train")
            if epoch_s is not None:
                prune_epochs = int(max(2, min(MAX_EPOCHS, (self.clock.left - self._reserve()) // (1.4 * epoch_s))))
        pp = plan_prune(prune_epochs)
        cfg = PruneConfig(target_macs=target, scope="global", protect=PROTECT, distill=True, seed=opts.seed, **pp)
        out = self.work / "prune"
        train_json = self.work / "split" / "train.json"
        report = run_prune(ckpt, train_json, train_json, out, cfg, device=opts.device, threads=(1,),
                           latency_runs=min(opts.latency_runs, 50), eval_limit=100, keep_finetune_logs=False)
        s = report["summary"]
        self.say(f"  MACs x{s['macs_ratio']:.2f}, params x{s['params_ratio']:.2f}, "
                 f"speed-up {s['speedup_median']}")
        # The compression rule of the shipped recipe: pruning may cost at most one PCK@0.1 point. It is
        # measured on the training recordings (what the network can still fit), never on the held-out ones.
        before = (report["before"].get("accuracy") or {}).get("PCK@0.1")
        after = (report["after"].get("accuracy") or {}).get("PCK@0.1")
        result = {"checkpoint": str(out / "pruned.pt"), "pruned": True, "plan": pp, "summary": s,
                  "unpruned_checkpoint": str(ckpt), "train_pck_before": before, "train_pck_after": after}
        if before is not None and after is not None and after < before - MAX_PRUNE_LOSS:
            self.say(f"  pruning lost {100 * (before - after):.1f} PCK points on the training recordings "
                     f"({before:.3f} -> {after:.3f}): the unpruned network is kept")
            result.update(checkpoint=str(ckpt), pruned=False, rejected=True)
        return result

    def _export(self) -> dict[str, Any]:
        from gaitpose.export.onnx_export import export_checkpoint

        train_json = self.work / "split" / "train.json"
        res = self.results["prune"]
        fp32 = self.work / "model.fp32.onnx"
        _, parity = export_checkpoint(res["checkpoint"], fp32, parity_source=train_json)
        out: dict[str, Any] = {"fp32": str(fp32), "parity": parity.to_dict() if parity else None}
        if res.get("pruned"):
            unpruned = self.work / "unpruned.onnx"
            export_checkpoint(res["unpruned_checkpoint"], unpruned, parity_source=train_json)
            out["unpruned"] = str(unpruned)
        if parity is not None:
            self.say(f"  parity on {parity.num_crops} crops: max |diff| {parity.max_abs_diff:.2e}, "
                     f"max keypoint shift {parity.max_kp_dist_px:.3f} px")
        return out

    def _int8(self) -> dict[str, Any]:
        from gaitpose.export.quantize import int8_report, quantize_int8

        train_json = self.work / "split" / "train.json"
        fp32 = Path(self.results["export"]["fp32"])
        int8 = self.work / "model.int8.onnx"
        # INT8 is compared with FP32 on the training recordings: it measures what quantisation
        # moves, and the held-out recordings stay untouched until the evaluation stage.
        quantize_int8(fp32, train_json, int8, num_calib=128)
        rep = int8_report(fp32, int8, train_json, num_eval=200, threads=(1,), runs=min(self.opts.latency_runs, 50),
                          out_json=self.work / "model.int8.report.json")
        self.say(f"  {rep['verdict']}")
        return {"int8": str(int8), "recommend_int8": bool(rep["recommend_int8"]), "verdict": rep["verdict"],
                "speedup_median": rep.get("speedup_median"), "pck_drop_points": rep.get("pck_drop_points")}
