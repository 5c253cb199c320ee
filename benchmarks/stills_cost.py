"""What keeping subject crops for the report's stills costs the frame loop, side by side.

``python -m benchmarks.stills_cost VIDEO [VIDEO ...] [--model M] [--reps 3]`` runs decoding alone, then
``track_video`` with and without ``keep_frame=SubjectFrames()`` (one ORT thread, the decoder on its own
thread as in ``gaitpose analyze``), interleaved, and prints the medians in ms per frame, each loop's
share of decode-only speed, and the spread of that share over the repetitions.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from gaitpose.infer.blazepose import load_pose_estimator
from gaitpose.infer.localizer import OnnxLocalizer
from gaitpose.infer.track import default_decode_threads, track_video
from gaitpose.io import open_recording
from gaitpose.io.prefetch import prefetch
from gaitpose.registry import LOCALIZER_MODEL, STUDENT_POSE_MODEL, default_model_dir
from gaitpose.report.stillcache import SubjectFrames


def _decode_ms(video: Path) -> float:
    with open_recording(video) as rec:
        t, n = time.perf_counter(), 0
        for _ in prefetch(rec.color_images(default_decode_threads()), depth=4):
            n += 1
        return (time.perf_counter() - t) / max(n, 1) * 1000


def _loop_ms(video: Path, est, loc, keep: bool) -> float:
    with open_recording(video) as rec:
        frames = prefetch(rec.color_images(default_decode_threads()), depth=4)
        t = time.perf_counter()
        track = track_video(frames, est, loc, total_frames=rec.num_frames, keep_frame=SubjectFrames() if keep else None)
        return (time.perf_counter() - t) / max(track.n_frames, 1) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--model", type=Path, default=default_model_dir() / STUDENT_POSE_MODEL)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    est = load_pose_estimator(args.model, threads=1, spinning=False)
    loc = OnnxLocalizer(default_model_dir() / LOCALIZER_MODEL, threads=1, spinning=False)
    print("| video | decode alone ms | loop without stills ms | loop with stills ms "
          "| share of decode speed (without / with) | with stills, per repetition: median [min-max] |")
    print("|---|---|---|---|---|---|")
    for v in args.videos:
        dec, without, with_ = [], [], []
        for _ in range(args.reps):
            dec.append(_decode_ms(v))
            with_.append(_loop_ms(v, est, loc, True))
            without.append(_loop_ms(v, est, loc, False))
        d, a, b = (statistics.median(x) for x in (dec, without, with_))
        # Each repetition's decode-only and loop runs are back to back, so their ratio sees the same
        # machine state; the spread of those ratios is how far one run can be trusted on this machine.
        paired = [x / y for x, y in zip(dec, with_, strict=True)]
        print(f"| {v.name} | {d:.2f} | {a:.2f} | {b:.2f} | {d / a:.2f} / {d / b:.2f} "
              f"| {statistics.median(paired):.2f} [{min(paired):.2f}-{max(paired):.2f}] |", flush=True)


if __name__ == "__main__":
    main()
