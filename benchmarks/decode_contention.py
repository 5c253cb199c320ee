"""What slows the decoder thread down in ``analyze``'s loop: the other core's work, or the GIL.

``python -m benchmarks.decode_contention VIDEO [--reps 3]`` decodes the video on one FFmpeg thread
(as ``analyze`` does on two cores) alone, then beside a second Python thread that keeps the other core
busy in one of three ways, interleaved, and prints the median ms per decoded frame of each:

- ``onnxruntime``: the student network in a loop (ONNX Runtime releases the GIL while it runs);
- ``numpy``: large array arithmetic (numpy releases the GIL inside each large operation);
- ``python``: a pure-Python loop that holds the GIL except when the interpreter forces a switch.

If the decoder slows down beside ``python`` but not beside ``onnxruntime``, what costs the loop is
the Python the model thread runs between native calls (the decoder thread waits for the GIL after
every packet and frame), not the second core's load.
"""

from __future__ import annotations

import argparse
import statistics
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.teacher_vs_analyze import time_decode
from gaitpose.infer.blazepose import load_pose_estimator
from gaitpose.registry import STUDENT_POSE_MODEL, default_model_dir


def _busy(kind: str, stop: threading.Event) -> Callable[[], None]:
    if kind == "onnxruntime":
        est = load_pose_estimator(default_model_dir() / STUDENT_POSE_MODEL, threads=1, spinning=False)
        inp = est.session.get_inputs()[0]
        x = np.random.default_rng(0).random((1, 3, *est.meta.input_size), dtype=np.float32)

        def work() -> None:
            while not stop.is_set():
                est.session.run(None, {inp.name: x})
    elif kind == "numpy":
        a = np.random.default_rng(0).random((256, 192, 3), dtype=np.float32)

        def work() -> None:
            while not stop.is_set():
                (a * 2.0 + 1.0).sum()
    else:
        def work() -> None:
            while not stop.is_set():
                s = 0
                for i in range(1000):
                    s += i
    return work


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    kinds = ["alone", "onnxruntime", "numpy", "python"]
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(args.reps):
        for kind in kinds:
            stop = threading.Event()
            thread = None
            if kind != "alone":
                thread = threading.Thread(target=_busy(kind, stop), daemon=True)
                thread.start()
            times[kind].append(time_decode(args.video).ms_per_frame)
            stop.set()
            if thread is not None:
                thread.join()
    alone = statistics.median(times["alone"])
    print(f"| {args.video.name}: decoding beside | ms per frame (median of {args.reps}) | vs alone |")
    print("|---|---|---|")
    for kind in kinds:
        m = statistics.median(times[kind])
        print(f"| {kind} | {m:.2f} | {m / alone:.2f}x |")


if __name__ == "__main__":
    main()
