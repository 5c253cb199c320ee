"""Choose the student's pruning target by what gait needs, at the cost the frame loop can carry.

``python -m benchmarks.pruning_targets --labels HELD_OUT.json --model NAME=PATH.onnx [--model ...]
--video V.mp4 [--video ...] [--reps 5]``

For each network (e.g. the same parent pruned to several MACs targets by ``gaitpose prune --sweep``),
side by side in one run:

- accuracy on the held-out labels, crops made as ``gaitpose evaluate`` makes them: PCK@0.1, feet
  PCK@0.1 and @0.05 and the sagittal hip/knee/ankle angle MAE (``benchmarks.student_precision.figures``);
- per crop: preprocessing + network + decoding (``predict``) on one ORT thread, median of calls
  interleaved across the networks so machine load hits all alike;
- the model thread of ``analyze``'s loop: ``track_video`` over frames decoded beforehand (so no
  decoder competes), ms per frame, against decoding alone per frame of the same video. The loop stays
  decode-bound only while this share is well under 1: the two run on separate cores, but the Python
  between native calls is serialised by the GIL and the decoder also waits for it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.student_precision import figures
from benchmarks.teacher_vs_analyze import time_decode
from gaitpose.eval.evaluate import predict_records, read_rgb
from gaitpose.infer.blazepose import load_pose_estimator
from gaitpose.infer.localizer import OnnxLocalizer
from gaitpose.infer.track import default_decode_threads, track_video
from gaitpose.io import open_recording
from gaitpose.labels import load_records
from gaitpose.registry import LOCALIZER_MODEL, default_model_dir


def _named(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep:
        return Path(text).stem, Path(text)
    return name, Path(path)



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, required=True, help="held-out COCO labels (never trained on)")
    ap.add_argument("--model", action="append", type=_named, required=True, help="NAME=PATH.onnx (repeatable)")
    ap.add_argument("--video", action="append", type=Path, default=[], help="video for the loop cost (repeatable)")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    for _, p in args.model:
        if not p.is_file():
            ap.error(f"{p}: model file does not exist")
    records = load_records(args.labels)
    ests = {name: load_pose_estimator(p, threads=1, spinning=False) for name, p in args.model}
    idx = np.arange(len(records))
    acc = {name: figures(predict_records(est, records)["plain"][0], records, idx) for name, est in ests.items()}

    image = read_rgb(records[0].image_path)
    box = np.asarray(records[0].bbox, np.float32)
    crop_s: dict[str, list[float]] = {n: [] for n in ests}
    for _ in range(max(20, 40 * args.reps)):
        for name, est in ests.items():
            t = time.perf_counter()
            est.predict(image, [box])
            crop_s[name].append(time.perf_counter() - t)

    loc = OnnxLocalizer(default_model_dir() / LOCALIZER_MODEL, threads=1, spinning=False)
    loop: dict[str, dict[str, float]] = {}
    for v in args.video:
        with open_recording(v) as rec:
            frames = list(rec.color_images(default_decode_threads()))
        s: dict[str, list[float]] = {"decode": [], **{n: [] for n in ests}}
        for _ in range(args.reps):
            s["decode"].append(time_decode(v).ms_per_frame)
            for name, est in ests.items():
                t = time.perf_counter()
                tr = track_video(frames, est, loc)
                s[name].append((time.perf_counter() - t) / max(tr.n_frames, 1) * 1000)
        loop[v.name] = {k: statistics.median(x) for k, x in s.items()}

    vids = list(loop)
    head = ("| network | PCK@0.1 | feet PCK@0.1 | feet PCK@0.05 | angle MAE (deg) | ms per crop |"
            + "".join(f" model thread / decode, {v} |" for v in vids))
    print(f"Held-out labels: {args.labels} ({len(records)} people); decode alone ms per frame: "
          + ", ".join(f"{v} {loop[v]['decode']:.2f}" for v in vids))
    print(head)
    print("|" + "---|" * (6 + len(vids)))
    for name in ests:
        a = acc[name]
        cells = [f"{a['pck10']:.3f}", f"{a['feet_pck10']:.3f}", f"{a['feet_pck05']:.3f}", f"{a['all_mae']:.1f}",
                 f"{statistics.median(crop_s[name]) * 1000:.2f}"]
        cells += [f"{loop[v][name]:.2f} ms = {loop[v][name] / loop[v]['decode']:.2f}" for v in vids]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
