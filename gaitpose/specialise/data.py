"""The data stages: extract frames, label them with the teacher, split by recording and subject."""

from __future__ import annotations

import json
import sys
from typing import Any

from gaitpose.errors import InputError
from gaitpose.specialise.context import RunContext


class DataStages(RunContext):
    """Stages 1-3: ``extract``, ``label``, ``split``."""

    def _extract(self) -> dict[str, Any]:
        from data_tools.extract import ExtractOptions, extract_recording
        from gaitpose.manifest import ManifestWriter, read_manifest

        opts, inp = self.opts, self.inputs
        frames_dir = self.work / "frames"
        frames_dir.mkdir(parents=True, exist_ok=True)
        eo = ExtractOptions(stride=opts.stride, max_frames=opts.max_frames, max_size=opts.max_size)
        done = {(r["recording"], int(r["frame_index"])) for r in read_manifest(frames_dir)}
        counts = {}
        with ManifestWriter(frames_dir) as writer:
            for p, rid in zip(inp.paths, inp.ids, strict=True):
                s = extract_recording(p, frames_dir, recording_id=rid, subject=inp.subjects[rid], options=eo,
                                      manifest=writer, done=done)
                self.say(f"  {s.line()}")
                counts[rid] = s.frames_written + s.frames_skipped
                if counts[rid] == 0:
                    raise InputError(p, "no frames could be extracted")
        return {"frames": counts}

    def _label(self) -> dict[str, Any]:
        from data_tools.batch import run_batch
        from data_tools.label import LabelOptions, load_frame_store

        frames_dir = self.work / "frames"
        recs = load_frame_store(frames_dir)
        recs = {r: recs[r] for r in self.inputs.ids if r in recs}
        lo = LabelOptions(roi=self.opts.roi, stride=self.label_stride)
        errors: list[str] = []
        res = run_batch(frames_dir, self.work / "labels.json", recs, lo, workers=min(self.opts.workers, len(recs)),
                        on_error=errors.append, show_progress=sys.stderr.isatty())
        for part in sorted(res.parts, key=lambda p: p["recording"]):
            s = part["stats"]
            self.say(f"  {part['recording']}: labelled {s['frames_labelled']}/{s['frames']} frames, "
                     f"teacher {s['teacher_seconds']:.1f} s")
        # A recording where the teacher finds nobody is left out with a warning; the split then says
        # whether what is left is still enough.
        for r in sorted(res.failed):
            self.say(f"  warning: {res.failed[r]} (recording left out)")
        if not res.parts:
            raise InputError(None, "labelling failed on every recording: "
                             + "; ".join(res.failed[r] for r in sorted(res.failed)))
        return {"stride": self.label_stride, "failed": dict(res.failed),
                "recordings": {p["recording"]: {k: p["stats"][k] for k in ("frames", "frames_labelled")}
                               for p in res.parts}}

    def _split(self) -> dict[str, Any]:
        from data_tools.split import split_labels

        inp = self.inputs
        split_dir = self.work / "split"
        failed = set(self.results["label"].get("failed") or {})
        held = [r for r in inp.held_out_ids if r not in failed]
        if inp.held_out_ids and not held:
            raise InputError(None, "no held-out recording could be labelled, so there is nothing to evaluate on")
        if held:
            counts = split_labels(self.work / "labels.json", split_dir, val=0.0, test=0.0, seed=self.opts.seed,
                                  test_recordings=held)
        else:
            counts = split_labels(self.work / "labels.json", split_dir, val=0.0, test=0.25, seed=self.opts.seed)
        for name in ("train", "test"):
            if not counts.get(name, {}).get("annotations"):
                raise InputError(self.work / "labels.json", f"the {name} split has no labelled frames; give recordings "
                                                            "where the teacher finds the subject")
        test_recs = json.loads((split_dir / "test.json").read_text(encoding="utf-8"))["info"]["split"]["recordings"]
        train_recs = json.loads((split_dir / "train.json").read_text(encoding="utf-8"))["info"]["split"]["recordings"]
        self.say(f"  train: {', '.join(train_recs)} ({counts['train']['annotations']} labelled frames); "
                 f"held out: {', '.join(test_recs)} ({counts['test']['annotations']})")
        return {"counts": counts, "train_recordings": train_recs, "test_recordings": test_recs}
