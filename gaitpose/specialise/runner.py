"""One ``gaitpose specialise`` run: the stage sequence, each stage's configuration hash and resume."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gaitpose.specialise.compress import CompressStages
from gaitpose.specialise.data import DataStages
from gaitpose.specialise.domain_stage import DomainStage
from gaitpose.specialise.evaluation import EvaluateStage
from gaitpose.specialise.options import OUT_MARKER, STAGES, SpecialiseOptions
from gaitpose.specialise.planning import plan_label_stride
from gaitpose.specialise.preflight import preflight
from gaitpose.specialise.report import ReportStage
from gaitpose.specialise.state import _Clock, _file_id, _hash, _labels_digest, _State
from gaitpose.specialise.training import TrainStage


class Specialiser(DataStages, TrainStage, CompressStages, EvaluateStage, DomainStage, ReportStage):
    """One ``gaitpose specialise`` run; :meth:`run` does every stage that is not already done."""

    def __init__(self, opts: SpecialiseOptions, say: Callable[[str], None] | None = None) -> None:
        self.opts = opts
        self.out = Path(opts.out)
        self.work = self.out / "work"
        self.say = say or (lambda s: print(s, flush=True))
        self.clock = _Clock(opts.minutes)
        self.timings: dict[str, float] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.skipped: list[str] = []

    # -- bookkeeping --------------------------------------------------------------------------
    def _stage(self, name: str, key: str, fn: Callable[[], dict[str, Any]],
               final: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """Run stage ``name`` unless a marker with ``key`` says it is done; ``final(result)`` False leaves
        it unmarked (e.g. labelling with failed recordings is retried by the next run)."""
        i = STAGES.index(name) + 1
        done = self.state.done(name, key)
        if done is not None:
            self.results[name] = done["result"]
            self.timings[name] = float(done.get("seconds", 0.0))
            self.skipped.append(name)
            self.say(f"[{i}/{len(STAGES)}] {name}: done in an earlier run, skipped")
            return done["result"]
        self.say(f"[{i}/{len(STAGES)}] {name}: starting ({self.clock.elapsed:.0f} s in, "
                 f"{max(self.clock.left, 0):.0f} s of the budget left)")
        t0 = time.perf_counter()
        self._key = key
        result = fn()
        secs = time.perf_counter() - t0
        if final is None or final(result):
            self.state.mark(name, key, result, secs)
        self.results[name] = result
        self.timings[name] = secs
        self.say(f"[{i}/{len(STAGES)}] {name}: done in {secs:.1f} s")
        return result

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """All stages; returns the summary also written to ``meta.json``."""
        opts = self.opts
        self.inputs = preflight(opts)
        (self.out / OUT_MARKER).write_text("gaitpose specialise output folder; re-running the command resumes\n")
        self.state = _State(self.work)
        inp = self.inputs
        base = {
            "inputs": [_file_id(p) for p in inp.paths], "ids": inp.ids, "subjects": inp.subjects,
            "held_out": inp.held_out_ids, "stride": opts.stride, "max_frames": opts.max_frames,
            "max_size": opts.max_size,
        }
        k_extract = _hash("extract", base)
        self._stage("extract", k_extract, self._extract)

        total_frames = sum(
            min(math.ceil(max(inp.frames[r], 1) / opts.stride), opts.max_frames or 10**9) for r in inp.ids
        )
        stride = opts.label_stride or plan_label_stride(total_frames, self.clock.budget_s, opts.workers)
        self.label_stride = stride
        from data_tools.label import PART_VERSION

        k_label = _hash("label", k_extract, opts.roi, stride, PART_VERSION)
        self._stage("label", k_label, self._label, final=lambda r: not r.get("failed"))
        # Later stages follow the labels' content: a recording that failed and labels on a re-run
        # changes the labels, and so everything after them.
        k_split = _hash("split", k_label, _labels_digest(self.work / "labels.json"), opts.seed)
        self._stage("split", k_split, self._split)

        init_id = _file_id(inp.init) if inp.init is not None else None
        k_train = _hash("train", k_split, init_id, opts.input_size, opts.distill_weight, opts.seed, opts.epochs,
                        opts.target_macs, opts.crop_budget_ms, opts.prune_epochs, opts.general_model)
        self._stage("train", k_train, self._train)
        k_prune = _hash("prune", k_train)
        self._stage("prune", k_prune, self._prune)
        k_polish = _hash("polish", k_prune)
        self._stage("polish", k_polish, self._polish)
        k_export = _hash("export", k_polish)
        self._stage("export", k_export, self._export)
        k_int8 = _hash("int8", k_export)
        self._stage("int8", k_int8, self._int8)
        k_eval = _hash("evaluate", k_int8, str(self._general()[0]))
        self._stage("evaluate", k_eval, self._evaluate)
        k_domain = _hash("domain", k_eval)
        self._stage("domain", k_domain, self._domain)
        k_report = _hash("report", k_domain)
        self._stage("report", k_report, self._report)
        summary = json.loads((self.out / "meta.json").read_text(encoding="utf-8"))
        over = self.clock.elapsed - self.clock.budget_s
        self.say(f"done in {self.clock.elapsed:.0f} s (budget {self.clock.budget_s:.0f} s"
                 + (f", {over:.0f} s over" if over > 0 else "") + f"): {self.out / 'model.onnx'}")
        return summary


def specialise(opts: SpecialiseOptions, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) ``gaitpose specialise``; returns the summary written to ``OUT/meta.json``."""
    return Specialiser(opts, say).run()
