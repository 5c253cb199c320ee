"""The model stages after training: prune to the per-crop budget, spend the time left fine-tuning the pruned
network, ONNX export with parity, INT8 verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gaitpose.fsutil import write_json_atomic
from gaitpose.specialise.context import RunContext
from gaitpose.specialise.options import MAX_EPOCHS, MAX_PRUNE_LOSS, PROTECT
from gaitpose.specialise.planning import plan_prune, steady_epoch_seconds
from gaitpose.specialise.training import resumable_plan


class CompressStages(RunContext):
    """Stages 5-8: ``prune``, ``polish``, ``export``, ``int8``."""

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

    def _polish(self) -> dict[str, Any]:
        """Fine-tune the pruned network, distilled from the network it was cut from, for the time left.

        Why: the pruning epochs are planned before the network shrinks, from the unpruned network's
        epoch time, and a pruned network trains faster; a lab run ended 425 s (a third of its budget)
        early with a pruned network that was 6 PCK points below its unpruned parent on the held-out view.
        The time left before the reserve for export and evaluation goes to more distilled epochs of the
        pruned network, re-planned from the epoch times measured as it trains (as training is).
        """
        import copy

        from gaitpose.labels import load_records
        from gaitpose.nn.checkpoint import load_model, read_checkpoint
        from gaitpose.train.config import TrainConfig

        res = self.results["prune"]
        keep = {"checkpoint": res["checkpoint"], "polished": False}
        if not res.get("pruned"):
            self.say("  nothing to polish: the network was not pruned")
            return keep
        if self.opts.epochs is not None:
            self.say("  skipped: --epochs fixes the training, no time budget to fill")
            return keep
        run_dir = self.work / "polish"
        # An interrupted polish resumes from its last epoch; with no time left its last epoch is kept.
        plan = resumable_plan(run_dir, self._key) if run_dir.is_dir() else None
        epoch_s = steady_epoch_seconds(self.work / "train")
        usable = self.clock.left - self._reserve()
        if plan is not None and (epoch_s is None or usable < epoch_s):
            self.say("  resumed with no time left: the polished network of the interrupted run is kept")
            return {"checkpoint": str(run_dir / "last.pt"), "polished": True,
                    "epochs": int(read_checkpoint(run_dir / "last.pt").get("epoch", 0)),
                    "distill_weight": plan.get("distill_weight")}
        if plan is None and (epoch_s is None or usable < 3 * epoch_s):
            self.say(f"  skipped: {max(usable, 0):.0f} s left before the reserve for export and evaluation")
            return keep
        model, _, ckpt = load_model(res["checkpoint"])
        teacher, _, _ = load_model(res["unpruned_checkpoint"])
        raw = ckpt.get("train_cfg") if isinstance(ckpt.get("train_cfg"), dict) else {}
        cfg = (TrainConfig.from_dict(raw) if raw else TrainConfig()).updated(
            device=self.opts.device, threads=self.opts.threads, warmup_epochs=0.2)
        records = load_records(self.work / "split" / "train.json")
        run_dir.mkdir(parents=True, exist_ok=True)
        weight = float(self.opts.distill_weight) if self.opts.distill_weight > 0 else 0.5
        # The unpruned network's epoch time (the teacher runs too) is the pessimistic start; the
        # elastic loop re-plans from the pruned network's own epochs after the first segment.
        if plan is None:
            plan = {"key": self._key, "epochs": int(max(3, min(MAX_EPOCHS, usable // epoch_s))),
                    "distill_weight": weight}
            write_json_atomic(run_dir / "plan.json", plan, indent=1)
        self.say(f"  {usable:.0f} s left: about {plan['epochs']} more epochs of the pruned network, "
                 f"distilled from the unpruned one")
        deadline = self.clock.elapsed + usable
        out = self._train_elastic(copy.deepcopy(model).train(), records, cfg, teacher.eval(), run_dir, plan,
                                  deadline, fixed=False, distill_weight=weight)
        return {"checkpoint": str(run_dir / "last.pt"), "polished": True, "epochs": out.get("epochs_trained"),
                "distill_weight": weight}

    def _export(self) -> dict[str, Any]:
        from gaitpose.export.onnx_export import export_checkpoint

        train_json = self.work / "split" / "train.json"
        res = self.results["prune"]
        fp32 = self.work / "model.fp32.onnx"
        _, parity = export_checkpoint(self.results["polish"]["checkpoint"], fp32, parity_source=train_json)
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
