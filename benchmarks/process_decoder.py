"""Would a decoder in its own process (no shared GIL) speed up ``analyze``'s loop? Side by side.

``python -m benchmarks.process_decoder VIDEO [VIDEO ...] [--reps 5]`` times, interleaved per
repetition: decoding alone (the decode-only figure of ``gaitpose bench``), ``track_video`` with the
student fed by the decoder thread ``analyze`` uses, and ``track_video`` fed by a decoder in a spawned
child process that writes each frame's Y, U and V planes into a ring of shared-memory slots (the
parent copies a frame out before freeing its slot: the loop keeps frames for look-back and stills).
It prints ms per frame (from the first frame on, so the child's start-up is reported apart) and each
loop's share of decode-only speed. It is a measurement, not a product path: ``analyze`` keeps the
thread (see the README, issue 16).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import statistics
import time
from collections.abc import Iterator
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.teacher_vs_analyze import time_decode
from gaitpose.infer.blazepose import load_pose_estimator
from gaitpose.infer.localizer import OnnxLocalizer
from gaitpose.infer.track import default_decode_threads, track_video
from gaitpose.io import open_recording
from gaitpose.io.base import PlanarColorFrame
from gaitpose.io.planar import YuvImage
from gaitpose.io.prefetch import prefetch
from gaitpose.registry import LOCALIZER_MODEL, STUDENT_POSE_MODEL, default_model_dir
from gaitpose.report.stillcache import SubjectFrames

SLOTS = 4


def _child(path: str, shm_name: str, slot_bytes: int, q_out: Any, q_free: Any) -> None:
    shm = shared_memory.SharedMemory(name=shm_name)
    buf = np.ndarray((SLOTS, slot_bytes), np.uint8, buffer=shm.buf)
    try:
        with open_recording(path) as rec:
            for f in rec.color_images(default_decode_threads()):
                slot, off, shapes = q_free.get(), 0, []
                for plane in (f.image.y, f.image.u, f.image.v):
                    n = plane.shape[0] * plane.shape[1]
                    np.copyto(buf[slot, off:off + n].reshape(plane.shape), plane)
                    shapes.append(plane.shape)
                    off += n
                q_out.put((slot, f.index, f.t_ms, shapes, f.image.matrix))
        q_out.put(None)
    finally:
        del buf
        shm.close()


def process_frames(path: Path) -> Iterator[PlanarColorFrame]:
    """Planar frames of ``path`` decoded in a child process (4:2:0 videos only)."""
    with open_recording(path) as rec:
        w, h = rec.size
    slot_bytes = w * h + 2 * ((w + 1) // 2) * ((h + 1) // 2)
    shm = shared_memory.SharedMemory(create=True, size=SLOTS * slot_bytes)
    buf = np.ndarray((SLOTS, slot_bytes), np.uint8, buffer=shm.buf)
    ctx = mp.get_context("spawn")
    q_out, q_free = ctx.SimpleQueue(), ctx.SimpleQueue()
    for s in range(SLOTS):
        q_free.put(s)
    child = ctx.Process(target=_child, args=(str(path), shm.name, slot_bytes, q_out, q_free), daemon=True)
    child.start()
    try:
        while (msg := q_out.get()) is not None:
            slot, index, t_ms, shapes, matrix = msg
            planes, off = [], 0
            for shape in shapes:
                n = shape[0] * shape[1]
                planes.append(buf[slot, off:off + n].reshape(shape).copy())
                off += n
            q_free.put(slot)
            yield PlanarColorFrame(index=index, t_ms=t_ms, image=YuvImage(*planes, matrix=matrix))
    finally:
        child.join(timeout=5)
        del buf
        shm.close()
        shm.unlink()


def _loop_ms(frames: Iterator[Any], est: Any, loc: Any) -> tuple[float, float, Any]:
    """(ms per frame after the first, seconds to the first frame, the track)."""
    t0 = time.perf_counter()
    first = next(frames)
    start = time.perf_counter() - t0
    t = time.perf_counter()
    track = track_video(itertools.chain([first], frames), est, loc, keep_frame=SubjectFrames())
    return (time.perf_counter() - t) / max(track.n_frames - 1, 1) * 1000, start, track


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    est = load_pose_estimator(default_model_dir() / STUDENT_POSE_MODEL, threads=1, spinning=False)
    loc = OnnxLocalizer(default_model_dir() / LOCALIZER_MODEL, threads=1, spinning=False)
    print("| video | decode alone ms | loop, decoder thread ms | loop, decoder process ms | share of decode speed "
          "(thread / process) | process start-up s |")
    print("|---|---|---|---|---|---|")
    for v in args.videos:
        dec, thread, proc, start = [], [], [], []
        for _ in range(args.reps):
            dec.append(time_decode(v).ms_per_frame)
            with open_recording(v) as rec:
                ms, _, a = _loop_ms(prefetch(rec.color_images(default_decode_threads()), depth=4), est, loc)
            thread.append(ms)
            ms, s, b = _loop_ms(prefetch(process_frames(v), depth=2), est, loc)
            proc.append(ms)
            start.append(s)
            if not np.allclose(a.keypoints, b.keypoints, equal_nan=True):
                raise SystemExit(f"{v}: the two decoders gave different keypoints")
        d, t, p = (statistics.median(x) for x in (dec, thread, proc))
        print(f"| {v.name} | {d:.2f} | {t:.2f} | {p:.2f} | {d / t:.2f} / {d / p:.2f} "
              f"| {statistics.median(start):.2f} |", flush=True)


if __name__ == "__main__":
    main()
