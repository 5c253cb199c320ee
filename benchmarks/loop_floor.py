"""How close any frame loop gets to decode-only speed on this machine: the floor under the student's share.

``python -m benchmarks.loop_floor VIDEO [VIDEO ...] [--model M] [--reps 9]``

The loop target (issue 16) compares ``track_video`` with the student against decoding alone. To tell
what the student costs from what merely running a second thread beside the decoder costs, each
repetition times, back to back on the same video:

- decoding alone (the decoder on its own thread, as in ``analyze``);
- ``full``: the real loop (student, stills kept);
- ``network``: the same loop, but the pose call only runs the network on a fixed tensor and returns the
  first frame's result (no crop, no heatmap decoding; the tracker, stills and bookkeeping still run);
- ``none``: as ``network`` without the network, i.e. everything in the loop except the pose model.

It also reads, in the decoder's own thread, its CPU time per frame, its wall time per frame and its
minor page faults per frame (``getrusage(RUSAGE_THREAD)``), for decoding alone and for the full loop:
CPU time that grows beside the model thread is work the decoder itself does more slowly; wall time
beyond CPU time is waiting (for the GIL or for a core).

Each share is decode-only ms / loop ms of the same repetition; printed as median [min-max].
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.infer.blazepose import load_pose_estimator
from gaitpose.infer.localizer import OnnxLocalizer
from gaitpose.infer.track import default_decode_threads, track_video
from gaitpose.io import open_recording
from gaitpose.io.prefetch import prefetch
from gaitpose.registry import LOCALIZER_MODEL, STUDENT_POSE_MODEL, default_model_dir
from gaitpose.report.stillcache import SubjectFrames

VARIANTS = ("full", "network", "none")


class _DecoderClock:
    """Wraps the frame source; runs on the decoder thread and measures that thread only."""

    def __init__(self, source: Iterable[Any]) -> None:
        self.source = source
        self.cpu = self.wall = 0.0
        self.faults = 0
        self.n = 0

    def __iter__(self) -> Iterator[Any]:
        it = iter(self.source)
        r0 = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        while True:
            w, c = time.perf_counter(), time.thread_time()
            try:
                item = next(it)
            except StopIteration:
                self.faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - r0
                return
            self.wall += time.perf_counter() - w
            self.cpu += time.thread_time() - c
            self.n += 1
            yield item

    def per_frame(self) -> tuple[float, float, float]:
        n = max(self.n, 1)
        return self.cpu / n * 1000, self.wall / n * 1000, self.faults / n


class _CachedPose:
    """The estimator's interface with a fixed answer; ``network=True`` still runs the network once a call."""

    def __init__(self, estimator: Any, network: bool) -> None:
        self._est, self._network, self._answer = estimator, network, None
        h, w = estimator.meta.input_wh[1], estimator.meta.input_wh[0]
        self._x = np.random.default_rng(0).random((1, estimator.meta.in_channels, h, w), dtype=np.float32)

    def predict(self, image: Any, boxes: Any, flip_test: bool = False) -> Any:
        if self._answer is None:
            self._answer = self._est.predict(image, boxes)
        if self._network:
            self._est.run_heatmaps(self._x)
        return self._answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._est, name)


def _run(video: Path, estimator: Any, localizer: Any) -> tuple[float, _DecoderClock]:
    with open_recording(video) as rec:
        clock = _DecoderClock(rec.color_images(default_decode_threads()))
        frames = prefetch(clock, depth=4)
        t = time.perf_counter()
        if estimator is None:
            n = sum(1 for _ in frames)
        else:
            n = track_video(frames, estimator, localizer, total_frames=rec.num_frames,
                            keep_frame=SubjectFrames()).n_frames
        return (time.perf_counter() - t) / max(n, 1) * 1000, clock


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--model", type=Path, default=default_model_dir() / STUDENT_POSE_MODEL)
    ap.add_argument("--reps", type=int, default=9)
    args = ap.parse_args()
    est = load_pose_estimator(args.model, threads=1, spinning=False)
    loc = OnnxLocalizer(default_model_dir() / LOCALIZER_MODEL, threads=1, spinning=False)
    print("| video | full | network only | no network | decoder CPU ms/frame alone / in loop "
          "| decoder waiting ms/frame alone / in loop | decoder page faults/frame alone / in loop |")
    print("|---|---|---|---|---|---|---|")
    for v in args.videos:
        shares: dict[str, list[float]] = {k: [] for k in VARIANTS}
        cpu: dict[str, list[float]] = {"alone": [], "loop": []}
        wait: dict[str, list[float]] = {"alone": [], "loop": []}
        faults: dict[str, list[float]] = {"alone": [], "loop": []}
        for _ in range(args.reps):
            for variant in VARIANTS:
                decode_ms, alone = _run(v, None, loc)
                pose = est if variant == "full" else _CachedPose(est, network=variant == "network")
                loop_ms, inloop = _run(v, pose, loc)
                shares[variant].append(decode_ms / loop_ms)
                if variant == "full":
                    for key, clock in (("alone", alone), ("loop", inloop)):
                        c, w, f = clock.per_frame()
                        cpu[key].append(c)
                        wait[key].append(w - c)
                        faults[key].append(f)
        med = {k: {s: statistics.median(x[s]) for s in x} for k, x in (("cpu", cpu), ("wait", wait), ("flt", faults))}
        print(f"| {v.name} | {_fmt(shares['full'])} | {_fmt(shares['network'])} | {_fmt(shares['none'])} "
              f"| {med['cpu']['alone']:.2f} / {med['cpu']['loop']:.2f} | {med['wait']['alone']:.2f} / "
              f"{med['wait']['loop']:.2f} | {med['flt']['alone']:.0f} / {med['flt']['loop']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
