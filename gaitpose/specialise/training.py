"""The training stage: the per-crop latency budget, the plan from a timed probe epoch, and elastic training
that re-plans its epochs from the epoch times really measured."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from gaitpose.fsutil import write_json_atomic
from gaitpose.specialise.context import RunContext
from gaitpose.specialise.options import DEFAULT_INPUT_SIZE, MAX_EPOCHS, PROBE_RECORDS, SPEEDUP_TARGET
from gaitpose.specialise.planning import pick_target_macs, plan_training, steady_epoch_seconds
from gaitpose.specialise.starting_network import load_init


def resumable_plan(run_dir: Path, key: str) -> dict[str, Any] | None:
    """The plan an interrupted run left in ``run_dir`` for the same stage key, or None.

    A plan is kept only with the ``last.pt`` it belongs to; when either is missing or the key has
    changed, the old run's checkpoints, plan and log are removed so the new run starts clean.
    """
    try:
        plan = json.loads((run_dir / "plan.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        plan = None
    if isinstance(plan, dict) and plan.get("key") == key and (run_dir / "last.pt").exists():
        return plan
    for stale in ("last.pt", "best.pt", "plan.json", "log.json"):
        (run_dir / stale).unlink(missing_ok=True)
    return None


class _SegmentEnd(Exception):
    """Raised between two optimizer steps to end a training segment at an epoch boundary."""


class TrainStage(RunContext):
    """Stage 4: ``train``."""

    def _latency_budget(self, probe: Path, general: Path | None) -> tuple[float, float | None, float | None]:
        """(this architecture's ms per crop, the per-crop budget, the general model's ms per crop).

        The budget is ``--crop-budget-ms``, else a fifth of the general model's latency (the product's
        5x target), measured interleaved with the architecture's so that load on a shared machine hits
        both alike. The shipped student is no general model: against it there is no budget (then the
        shipped recipe's half of the MACs is used).
        """
        from gaitpose.export.latency import compare_latency

        models = {"arch": probe}
        if self.opts.crop_budget_ms is None and general is not None and general.parent.name != "student":
            models["general"] = general
        lat = compare_latency(models, threads=(1,), runs=50)
        arch = lat["arch"]["threads=1"]["median_ms"]
        if self.opts.crop_budget_ms is not None:
            return arch, float(self.opts.crop_budget_ms), None
        if "general" not in lat:
            return arch, None, None
        gen = lat["general"]["threads=1"]["median_ms"]
        return arch, gen / SPEEDUP_TARGET, gen

    def _train(self) -> dict[str, Any]:
        import copy

        from gaitpose.export.onnx_export import export_onnx
        from gaitpose.labels import load_records
        from gaitpose.nn.checkpoint import model_meta
        from gaitpose.nn.student import build_model
        from gaitpose.train.config import TrainConfig
        from gaitpose.train.loop import seed_everything, train_model

        opts, inp = self.opts, self.inputs
        split_dir = self.work / "split"
        train_json = split_dir / "train.json"
        records = load_records(train_json)
        seed_everything(opts.seed)
        if inp.init is not None:
            init_model, init_size = load_init(inp.init, train_json)
            model = copy.deepcopy(init_model)
            size = tuple(opts.input_size or init_size)
            # The student is fully convolutional: its weights fine-tune at another input size (a larger
            # crop gives a finer heatmap grid for the feet), and the starting network, run on the same
            # larger crop, still gives heatmaps of the new grid to distil from.
            if size != init_size:  # the config travels with the checkpoint: export and meta use the new size
                model.cfg.input_size = size
            resized = f", fine-tuned at {size[0]}x{size[1]}" if size != init_size else ""
            self.say(f"  starting from {inp.init} (input {init_size[0]}x{init_size[1]}{resized}), distilling "
                     f"from it with weight {opts.distill_weight:g} beside the labels")
        else:
            size = tuple(opts.input_size or DEFAULT_INPUT_SIZE)
            init_model = None
            self.say(f"  no pretrained student: training from random weights (input {size[0]}x{size[1]})")
        cfg = TrainConfig(input_size=size, device=opts.device, threads=opts.threads, seed=opts.seed,
                          workers=0 if len(records) < 64 else 2)
        if init_model is None:
            model = build_model(cfg.model_config_dict())
        else:
            cfg = cfg.updated(lr=5e-4, warmup_epochs=0.5)
        teacher = init_model if init_model is not None and opts.distill_weight > 0 else None
        run_dir = self.work / "train"
        run_dir.mkdir(parents=True, exist_ok=True)

        # Per-crop latency of this architecture against the budget decides whether to prune.
        general, _ = self._general()
        probe_onnx = run_dir / "architecture.onnx"
        export_onnx(copy.deepcopy(model).cpu().eval(), model_meta(model.cfg, cfg), probe_onnx)
        lat_ms, budget_ms, general_ms = self._latency_budget(probe_onnx, general)
        target = opts.target_macs if opts.target_macs is not None else (
            pick_target_macs(lat_ms, budget_ms) if budget_ms is not None else 0.5)

        # The plan is kept with the stage's key: an interrupted run resumes from last.pt with the same
        # epochs (the schedule depends on them); a changed configuration starts the folder afresh.
        plan_path = run_dir / "plan.json"
        plan = resumable_plan(run_dir, self._key)
        if plan is None:
            if opts.epochs is not None:
                epoch_s = None
                epochs = opts.epochs
                prune_epochs = opts.prune_epochs if opts.prune_epochs is not None else (2 if target < 1 else 0)
            else:
                # Time one epoch of a copy on at most PROBE_RECORDS crops (the real run keeps its own
                # schedule), scale it to the whole set, then fit the budget. The probe also pays for
                # decoding its images once, so it errs on the long side.
                probe = records[:: max(1, len(records) // PROBE_RECORDS)][:PROBE_RECORDS]
                t0 = time.perf_counter()
                train_model(copy.deepcopy(model), probe, [], cfg.updated(epochs=1), None, progress=False,
                            distill_from=teacher, distill_weight=opts.distill_weight)
                epoch_s = (time.perf_counter() - t0) * len(records) / len(probe)
                reserve = self._reserve()
                epochs, prune_epochs = plan_training(self.clock.left, epoch_s, target < 1.0, reserve)
                if opts.prune_epochs is not None:
                    prune_epochs = opts.prune_epochs
            plan = {"key": self._key, "epochs": int(epochs), "prune_epochs": int(prune_epochs),
                    "target_macs": float(target), "epoch_seconds": epoch_s, "crop_budget_ms": budget_ms,
                    "architecture_latency_ms": lat_ms, "general_latency_ms": general_ms, "input_size": list(size)}
            write_json_atomic(plan_path, plan, indent=1)
        self.say(f"  plan: {plan['epochs']} training epochs"
                 + (f" (one epoch took {plan['epoch_seconds']:.1f} s)" if plan.get("epoch_seconds") else "")
                 + (f"; prune to {plan['target_macs']:.2f} of the MACs in {plan['prune_epochs']} epochs"
                    if plan["target_macs"] < 1 else "; no pruning: the network already fits the per-crop budget")
                 + (f" (budget {budget_ms:.2f} ms per crop, this network {lat_ms:.2f} ms)" if budget_ms else ""))
        share = 0.6 if plan["target_macs"] < 1.0 else 1.0
        train_deadline = self.clock.elapsed + max(0.0, self.clock.left - self._reserve()) * share
        result = self._train_elastic(model, records, cfg, teacher, run_dir, plan, train_deadline,
                                     fixed=opts.epochs is not None)
        return {"checkpoint": str(run_dir / "last.pt"), "plan": plan, "init": str(inp.init) if inp.init else None,
                "device": result.get("device", opts.device), "train_samples": len(records),
                "distill_weight": opts.distill_weight if teacher is not None else None,
                "epochs_trained": result.get("epochs_trained"),
                "final_loss": (result.get("history") or [{}])[-1].get("train_loss")}

    def _train_elastic(self, model: Any, records: list, cfg: Any, teacher: Any, run_dir: Path,
                       plan: dict[str, Any], deadline: float, fixed: bool,
                       distill_weight: float | None = None) -> dict[str, Any]:
        """Train to ``plan["epochs"]``, re-planning the total every few epochs from the epoch times
        really measured and the time left until ``deadline`` (seconds on this run's clock).

        Why: the one-epoch probe cannot see how the load on a shared machine changes over the next
        quarter of an hour, and a fixed count of epochs overran or wasted the budget by minutes. The
        learning rate follows one cosine over the current total: each segment resumes from ``last.pt``
        with the new total, so the schedule stretches or shrinks smoothly and still ends at its minimum.
        A segment ends at an epoch boundary (the step after it raises, before its update, and nothing of
        it is kept). With ``fixed`` (``--epochs``) the plan is trained as given. ``distill_weight``
        overrides ``--distill-weight`` (the polish stage distils a pruned network from its parent).
        """
        from gaitpose.nn.checkpoint import read_checkpoint
        from gaitpose.train.loop import train_model

        last = run_dir / "last.pt"
        plan_path = run_dir / "plan.json"

        def epochs_done() -> int:
            return int(read_checkpoint(last).get("epoch", 0)) if last.exists() else 0

        done, total = epochs_done(), int(plan["epochs"])
        if 0 < done < total:
            self.say(f"  resuming training from {last} (epoch {done} of {total})")
        n, bs = len(records), int(cfg.batch_size)
        steps = max(1, n // bs) if n > bs else 1  # the loader drops the last partial batch
        result: dict[str, Any] = {}
        weight = self.opts.distill_weight if distill_weight is None else distill_weight
        while done < total:
            seg_end = total if fixed else min(total, done + max(3, math.ceil(total / 8)))
            budget_steps = (seg_end - done) * steps
            calls = [0]

            def stop_at_boundary(_m: Any, budget_steps: int = budget_steps, calls: list[int] = calls) -> None:
                calls[0] += 1
                if calls[0] > budget_steps:
                    raise _SegmentEnd

            with contextlib.suppress(_SegmentEnd):
                result = train_model(model, records, [], cfg.updated(epochs=total), run_dir,
                                     resume=last if last.exists() else None, progress=sys.stderr.isatty(),
                                     regularizer=None if seg_end >= total else stop_at_boundary,
                                     distill_from=teacher, distill_weight=weight)
            done = epochs_done()
            if fixed or done >= total:
                break
            epoch_s = steady_epoch_seconds(run_dir)
            if epoch_s is None:
                continue
            new_total = int(min(MAX_EPOCHS, max(done, done + (deadline - self.clock.elapsed) // epoch_s)))
            if new_total != total:
                self.say(f"  epoch {done}: {epoch_s:.1f} s per epoch now, {max(0.0, deadline - self.clock.elapsed):.0f}"
                         f" s left for training: {new_total} epochs in all (was {total})")
                total = new_total
                plan["epochs"] = total
                write_json_atomic(plan_path, plan, indent=1)
        if done >= total and total > 0 and not (run_dir / "best.pt").exists() and last.exists():
            shutil.copyfile(last, run_dir / "best.pt")
        result["epochs_trained"] = done
        return result
